"""Two jobs that both find ``--out`` absent (or empty) and reach the publish step at once:
real processes, the race forced by a barrier at the publish_local, so the second one to publish
always finds the first one's output there. Nothing may be lost: both sets of rows are
there exactly once (``--exists append``) or the second job fails in one line, changing
nothing (``--exists error``, or an append whose columns differ)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.helpers.cli import assert_one_line_error

# Both jobs stop at the publish (whichever function puts a new output in place) until both
# are there; then the "first" publishes, and the "second" waits until the first one's files
# are at --out before it publishes its own.
RACER = """
import os, sys, time
from shuffle_kit.partitioning import publish_local
sync, me, out = sys.argv[1], sys.argv[2], sys.argv[3]

def wait(what):
    deadline = time.monotonic() + 120
    while not what():
        if time.monotonic() > deadline:
            sys.exit("the other job never came")
        time.sleep(0.01)

def barrier(real):
    def put(staging, target):
        open(os.path.join(sync, me), "w").close()
        wait(lambda: len(os.listdir(sync)) == 2)
        if me == "second":
            wait(lambda: os.path.isdir(out) and any(files for _, _, files in os.walk(out)))
        return real(staging, target)
    return put

for name in ("publish", "publish_fresh"):
    if hasattr(publish_local, name):
        setattr(publish_local, name, barrier(getattr(publish_local, name)))
from shuffle_kit.cli import console
sys.argv = ["shuffle-kit", *sys.argv[4:]]
raise SystemExit(console())
"""


def _table(seed: int, rows: int, offset: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"k": rng.integers(0, 20, rows), "x": rng.random(rows), "row": np.arange(rows) + offset})


def _race(tmp_path, out, first: list[str], second: list[str]) -> tuple[subprocess.CompletedProcess, ...]:
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", RACER, str(sync), me, str(out), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for me, args in (("first", first), ("second", second))
    ]
    done = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return tuple(done)


def _files(root) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(r, f), root): open(os.path.join(r, f), "rb").read()
            for r, _, fs in os.walk(root) for f in fs}


@pytest.mark.parametrize("by_value", [False, True], ids=["hash", "by-value"])
@pytest.mark.parametrize("empty", [False, True], ids=["absent", "empty"])
def test_two_appends_into_a_new_output_keep_both_jobs_rows(tmp_path, empty, by_value):
    a, b = _table(1, 3000, 0), _table(2, 2000, 10**6)
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    out = tmp_path / "out"
    if empty:
        out.mkdir()
    how = ["--by-value"] if by_value else ["--npartitions", "3"]
    common = ["--on", "k", "--out", str(out), "--exists", "append", "-q", *how]
    first, second = _race(tmp_path, out, ["partition", str(tmp_path / "a.parquet"), *common],
                          ["partition", str(tmp_path / "b.parquet"), *common])
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    back = ds.dataset(out, partitioning="hive" if by_value else None).to_table()
    # every row of both jobs, exactly once
    assert sorted(back.column("row").to_pylist()) == sorted(a.column("row").to_pylist() + b.column("row").to_pylist())
    assert sorted(os.listdir(tmp_path)) == ["a.parquet", "b.parquet", "out", "sync"]


def test_a_racing_append_whose_columns_differ_fails_in_one_line_and_changes_nothing(tmp_path):
    a = _table(1, 3000, 0)
    b = _table(2, 2000, 10**6).cast(pa.schema([("k", pa.int64()), ("x", pa.float64()), ("row", pa.string())]))
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    out = tmp_path / "out"
    common = ["--on", "k", "--out", str(out), "--exists", "append", "--npartitions", "3", "-q"]
    first, second = _race(tmp_path, out, ["partition", str(tmp_path / "a.parquet"), *common],
                          ["partition", str(tmp_path / "b.parquet"), *common])
    assert first.returncode == 0, first.stderr
    assert_one_line_error(second, "column 'row' is string in the new rows but int64")
    assert sorted(ds.dataset(out).to_table().column("row").to_pylist()) == a.column("row").to_pylist()
    assert sorted(os.listdir(tmp_path)) == ["a.parquet", "b.parquet", "out", "sync"]


def test_two_jobs_into_a_new_output_never_replace_each_other(tmp_path):
    a, b = _table(1, 3000, 0), _table(2, 2000, 10**6)
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    out = tmp_path / "out"
    common = ["--on", "k", "--out", str(out), "--npartitions", "3", "-q"]  # --exists error
    first, second = _race(tmp_path, out, ["partition", str(tmp_path / "a.parquet"), *common],
                          ["partition", str(tmp_path / "b.parquet"), *common])
    assert first.returncode == 0, first.stderr
    before = _files(out)
    assert_one_line_error(second, str(out), "not empty", "another job")
    assert _files(out) == before
    assert sorted(ds.dataset(out).to_table().column("row").to_pylist()) == a.column("row").to_pylist()
    assert sorted(os.listdir(tmp_path)) == ["a.parquet", "b.parquet", "out", "sync"]
