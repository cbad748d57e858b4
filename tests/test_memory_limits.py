"""One rule for a memory limit, wherever a user gives one: the command line's
``--memory-limit``, ``partition``, ``shuffle``, ``groupby_shuffle`` and the dask integration's
server memory accept a size of at least 1 MiB and refuse anything else with the same kind of
error (a ``ShuffleKitError`` and a ``ValueError``), one line naming the argument; a store's
spill threshold (``Buffer``, ``TableBuffer``) is checked by the same function, down to 0."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shuffle_kit as sk
from shuffle_kit import cli

# (value, accepted): the limit is at least 1 MiB = 1,048,576 bytes
LIMITS = [
    ("1KB", False), (1000, False), (2**20 - 1, False), ("1MB", False), ("1023KiB", False), (0.5, False),
    ("lots", False), (-5, False), (0, False), (float("nan"), False), (True, False), ([2**20], False),
    ("1MiB", True), (2**20, True), ("1048576", True), ("1.05MB", True), (2e6, True), ("2 GiB", True),
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"k": [1, 2, 3, 1], "x": [1.0, 2.0, 3.0, 4.0]})


def _outcome(call) -> str | None:
    """None if ``call`` accepted the limit, else its error's one line (checked to be one)."""
    try:
        result = call()
    except sk.ShuffleKitError as e:
        assert isinstance(e, ValueError), type(e).__mro__
        assert "\n" not in str(e)
        return str(e)
    close = getattr(result, "close", None)
    if close is not None:
        close()
    return None


def _command_line(args: list[str], capsys) -> str | None:
    """None if the command line accepted the arguments, else its one error line (exit 2)."""
    try:
        code = cli.main(args)
    except SystemExit as e:  # argparse's refusal of a bad option
        err = capsys.readouterr().err.strip()
        assert e.code == 2 and len(err.splitlines()) == 1, err
        return err
    assert code == 0
    return None


@pytest.mark.parametrize("value, accepted", LIMITS, ids=[repr(v) for v, _ in LIMITS])
def test_every_entry_point_takes_the_same_memory_limits(tmp_path, capsys, monkeypatch, value, accepted):
    from shuffle_kit.partitioning import job

    monkeypatch.setattr(job, "use_fast_allocator", lambda: None)  # (the command line's, for its own process)
    pq.write_table(pa.Table.from_pandas(_frame()), tmp_path / "in.parquet")
    src = str(tmp_path / "in.parquet")
    outcomes = {
        "shuffle": _outcome(lambda: sk.shuffle(_frame(), "k", 2, memory_limit=value, progress=False)),
        "groupby_shuffle": _outcome(lambda: sk.groupby_shuffle(_frame(), "k", memory_limit=value, progress=False)),
        "partition": _outcome(
            lambda: sk.partition(src, "k", str(tmp_path / "out"), npartitions=2, memory_limit=value, progress=False)
        ),
    }
    for name, error in outcomes.items():
        assert (error is None) == accepted, (name, error)
        if error is not None:
            assert error.startswith("memory_limit: "), (name, error)
    if not isinstance(value, (bool, list)):  # (the command line reads text)
        text = repr(value) if isinstance(value, float) else str(value)
        error = _command_line(["-q", "partition", src, "--on", "k", "--out", str(tmp_path / "cli"), "--npartitions",
                               "2", "--memory-limit", text], capsys)
        assert (error is None) == accepted, error
        if error is not None:
            assert error.startswith("shuffle-kit: error: --memory-limit: "), error
    if not accepted:  # a refused call wrote nothing
        assert sorted(os.listdir(tmp_path)) == ["in.parquet"]


DASK_LIMITS = LIMITS[:6] + LIMITS[-4:]


@pytest.mark.parametrize("value, accepted", DASK_LIMITS, ids=[repr(v) for v, _ in DASK_LIMITS])
def test_the_dask_servers_memory_follows_the_same_rule(value, accepted):
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    import shuffle_kit.dask

    ddf = dd.from_pandas(_frame(), npartitions=2)
    with dask.config.set({"shuffle_kit.dask.server-memory": value}):
        error = _outcome(lambda: shuffle_kit.dask.shuffle(ddf, "k", 2))  # refused as the graph is built
    assert (error is None) == accepted, error
    if error is not None:
        assert error.startswith("shuffle_kit.dask.server-memory: "), error


@pytest.mark.parametrize("make, argument", [
    (lambda limit: sk.Buffer(sk.Dict(), sk.Dict(), memory_limit=limit), "memory_limit"),
    (lambda limit: sk.Buffer(sk.Dict(), sk.Dict(), available_memory=limit), "available_memory"),  # partd's name
    (lambda limit: sk.TableBuffer(sk.Dict(), memory_limit=limit), "memory_limit"),
])
def test_a_stores_spill_threshold_is_checked_by_the_same_rule_down_to_zero(make, argument):
    for bad in ("lots", -1, float("nan"), True, "-5MB"):
        error = _outcome(lambda bad=bad: make(bad))
        assert error is not None and error.startswith(f"{argument}: "), (bad, error)
    for good, size in ((0, 0), (20, 20), ("2MB", 2 * 10**6), (1e9, 10**9)):
        store = make(good)
        assert getattr(store, argument) == size
