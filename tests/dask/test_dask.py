"""shuffle_kit.dask on dask's local schedulers (threads, processes, sync)."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

import shuffle_kit.dask as skd  # noqa: E402
from shuffle_kit import TableBuffer  # noqa: E402
from tests.helpers.dask_faults import after_appends  # noqa: E402
from tests.helpers.dask_frames import check_shuffled, make_frame  # noqa: E402


@pytest.fixture
def ddf():
    return dd.from_pandas(make_frame(), npartitions=5)


@pytest.fixture
def frame(ddf) -> pd.DataFrame:
    """The input as dask sees it (dask converts strings to its own string dtype)."""
    return ddf.compute(scheduler="sync")


@pytest.fixture
def tmpdir_config(tmp_path):
    d = tmp_path / "dask-tmp"
    d.mkdir()
    with dask.config.set(temporary_directory=str(d)):
        yield d


def wait_empty(directory, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while os.listdir(directory) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(directory) == []


def partitions(collection, scheduler: str) -> list[pd.DataFrame]:
    return list(dask.compute(*collection.to_delayed(), scheduler=scheduler))


def key_values(s: pd.Series) -> set:
    return {"<null>" if pd.isna(v) else v for v in s}


@pytest.mark.parametrize("scheduler", ["threads", "processes", "sync"])
def test_shuffle_matches_dask(ddf, frame, tmpdir_config, scheduler):
    out = skd.shuffle(ddf, "k", 7)
    assert out.npartitions == 7
    parts = partitions(out, scheduler)
    check_shuffled(parts, frame, ["k"], ddf._meta)
    # the same rows per key as dask's own shuffle
    ref = ddf.shuffle("k", shuffle_method="tasks").compute(scheduler="sync")
    got = pd.concat(parts)
    for key, group in ref.groupby("k", dropna=False):
        mine = got[got["k"].isna()] if pd.isna(key) else got[got["k"] == key]
        assert sorted(mine["id"]) == sorted(group["id"])
    assert os.listdir(tmpdir_config) == []


def test_multi_column_keys(ddf, frame, tmpdir_config):
    out = skd.shuffle(ddf, ["k", "n"], 4)
    check_shuffled(partitions(out, "threads"), frame, ["k", "n"], ddf._meta)


@pytest.mark.parametrize("on", ["k", "n", ["k", "c"]])
def test_dask_partitioner_is_co_partitioned(ddf, tmpdir_config, on):
    mine = partitions(skd.shuffle(ddf, on, partitioner="dask"), "threads")
    theirs = partitions(ddf.shuffle(on, shuffle_method="tasks"), "sync")
    assert len(mine) == len(theirs) == ddf.npartitions
    for a, b in zip(mine, theirs):
        pd.testing.assert_frame_equal(a.sort_values("id"), b.sort_values("id"))


def test_compute_twice_same_rows(ddf, tmpdir_config):
    out = skd.shuffle(ddf, "k", 6)
    first = partitions(out, "threads")
    second = partitions(out, "threads")
    assert all(a.equals(b) for a, b in zip(first, second))  # same rows, same order
    assert os.listdir(tmpdir_config) == []


def test_rows_keep_input_order(ddf):
    for part in partitions(skd.shuffle(ddf, "k", 3), "threads"):
        assert part["id"].is_monotonic_increasing


def test_failure_removes_store(ddf, tmpdir_config):
    def boom(i: int) -> None:
        if i == 2:
            raise RuntimeError("injected")

    # map task 2 fails once its pieces are in the store
    with after_appends(TableBuffer, boom), pytest.raises(RuntimeError, match="injected"):
        skd.shuffle(ddf, "k", 4).compute(scheduler="threads")
    # tasks dask had already started finish on their own; the store goes right after them
    wait_empty(tmpdir_config)
    # nothing either after computing part of the result
    skd.shuffle(ddf, "k", 4).partitions[1].compute(scheduler="threads")
    assert os.listdir(tmpdir_config) == []


def test_user_store_deduplicates(ddf, frame, tmp_path):
    from shuffle_kit import File

    store = File(tmp_path / "store")
    out = skd.shuffle(ddf, "k", 3, store=store)
    first = pd.concat(partitions(out, "threads"))
    second = pd.concat(partitions(out, "processes"))  # re-run maps append nothing new
    assert len(first) == len(second) == len(frame)
    assert os.path.isdir(tmp_path / "store")  # the user's store is theirs


def test_empty_partitions_and_meta(tmpdir_config):
    df = pd.DataFrame({"k": [1, 1, 1], "s": pd.Series(["a", "b", None], dtype="str")})
    ddf = dd.from_pandas(df, npartitions=2)
    out = skd.shuffle(ddf, "k", 5)
    parts = partitions(out, "threads")
    assert sum(len(p) for p in parts) == 3
    assert all(p.dtypes.equals(ddf._meta.dtypes) for p in parts)
    assert out._meta.dtypes.equals(ddf._meta.dtypes)


def test_groupby_apply_matches_dask(ddf):
    def summary(g: pd.DataFrame) -> pd.Series:
        return pd.Series({"rows": len(g), "x": g["x"].sum()})

    meta = {"rows": "float64", "x": "float64"}
    mine = skd.groupby_apply(ddf, "k", summary, meta=meta, dropna=True).compute(scheduler="threads")
    theirs = ddf.groupby("k").apply(summary, meta=meta).compute(scheduler="sync")
    pd.testing.assert_frame_equal(mine.sort_index(), theirs.sort_index(), check_index_type=False)
    assert mine.index.is_unique


@pytest.mark.parametrize("on", ["k", ["k", "n"]])
def test_groupby_apply_keeps_null_keys_by_default_as_groupby_shuffle_does(ddf, frame, on):
    import shuffle_kit as sk

    def summary(g: pd.DataFrame) -> pd.Series:
        return pd.Series({"rows": float(len(g)), "x": g["x"].sum(), "first": float(g["id"].min())})

    meta = {"rows": "float64", "x": "float64", "first": "float64"}
    mine = skd.groupby_apply(ddf, on, summary, meta=meta).compute(scheduler="threads")
    model = frame.groupby(on, dropna=False).apply(summary)
    assert frame[on if isinstance(on, list) else [on]].isna().any(axis=None)  # null keys to keep
    by_first = lambda df: df.sort_values("first").reset_index(drop=True)  # noqa: E731 (nulls don't sort)
    pd.testing.assert_frame_equal(by_first(mine), by_first(model))
    assert len(mine) == len(model) > len(frame.groupby(on).apply(summary))
    # the same groups as the in-memory groupby_shuffle's default
    rows = sorted(len(g) for _, g in sk.groupby_shuffle(frame, on))
    assert sorted(mine["rows"].astype(int)) == rows


def test_task_names_and_progress(ddf, capsys):
    from dask.diagnostics import ProgressBar

    out = skd.shuffle(ddf, "k", 3)
    names = {k[0] if isinstance(k, tuple) else k for k in dict(out.__dask_graph__())}
    prefixes = {n.rsplit("-", 1)[0] for n in names if n.startswith("shuffle_kit")}
    assert {"shuffle_kit-setup", "shuffle_kit-map", "shuffle_kit-barrier", "shuffle_kit-read"} <= prefixes
    with ProgressBar():
        out.compute(scheduler="threads")
    assert "100%" in capsys.readouterr().out


def test_bad_arguments(ddf):
    with pytest.raises(KeyError, match="nope"):
        skd.shuffle(ddf, "nope")
    with pytest.raises(ValueError):
        skd.shuffle(ddf, "k", 0)
    with pytest.raises(TypeError):
        skd.shuffle(ddf.compute(), "k")
    with pytest.raises(ValueError):
        skd.shuffle(ddf, "k", partitioner="nope")
    with pytest.raises(ValueError, match="not a function"):  # refused, not hashed silently
        skd.shuffle(ddf, "k", partitioner=lambda df, n: df["k"] % n)


def test_a_user_codec_stack_is_taken_by_what_it_declares(ddf, frame, tmp_path):
    from shuffle_kit import LZ4, ArrowIPC, File, PandasBlocks, TableBuffer

    # any stack that stores Arrow tables (the tasks append and read tables), not only ArrowIPC itself
    for i, codec in enumerate([ArrowIPC(LZ4(File(tmp_path / "a"))), TableBuffer(File(tmp_path / "b"), memory_limit=0)]):
        got = pd.concat(partitions(skd.shuffle(ddf, "k", 3, store=codec), "threads"))
        assert len(got) == len(frame), i
    with pytest.raises(TypeError, match="PandasBlocks does not store Arrow tables \\(stores_arrow\\)"):
        skd.shuffle(ddf, "k", 3, store=PandasBlocks(File(tmp_path / "c")))
