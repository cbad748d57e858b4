"""shuffle_kit.dask.merge against pandas' merge (the model) and dask's own merge, on dask's
local schedulers and on dask.distributed."""

from __future__ import annotations

import functools
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

import shuffle_kit.dask as skd  # noqa: E402
from shuffle_kit.errors import ArgumentTypeError, JobError  # noqa: E402
from tests.helpers.dask_cluster import shuffle_servers, two_workers  # noqa: E402
from tests.helpers.dask_faults import arm, despite_a_killed_worker, sleep  # noqa: E402

HOWS = ["inner", "left", "right", "outer"]


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order (by every column, nulls last), a fresh index: merges compared up to row order."""
    df = df.reset_index(drop=True)
    keys = [str(i) for i in range(df.shape[1])]
    order = df.set_axis(keys, axis=1).sort_values(keys, na_position="last", kind="stable").index
    return df.take(order).reset_index(drop=True)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(canonical(got), canonical(want))


def dask_merge(left, right, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask warns of key dtypes that differ (int64 with Int64)
        return dd.merge(left, right, **kwargs)


# -- the model: pandas' merge of the computed sides -----------------------------------------

KEY_DTYPES = ["int64", "Int64", "float64", "str"]


def key_column(draw, dtype: str, n: int) -> pd.Series:
    values = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n)) if dtype != "int64" else [False] * n
    if dtype == "str":
        return pd.Series([None if z else f"k{v}" for v, z in zip(values, nulls)], dtype="str")
    if dtype == "float64":
        return pd.Series([np.nan if z else float(v) for v, z in zip(values, nulls)], dtype="float64")
    if dtype == "Int64":
        return pd.Series([pd.NA if z else v for v, z in zip(values, nulls)], dtype="Int64")
    return pd.Series(values, dtype="int64")


@st.composite
def sides(draw):
    """Two frames with one or two key columns (duplicates, nulls, NaN) of joinable dtypes,
    and a value column of each side named alike (suffixed)."""
    nkeys = draw(st.integers(1, 2))
    kinds = [draw(st.sampled_from(KEY_DTYPES)) for _ in range(nkeys)]
    # a numeric key may be another numeric dtype on the right (pandas joins them)
    numeric = ["int64", "Int64", "float64"]
    right_kinds = [draw(st.sampled_from(numeric)) if k in numeric else k for k in kinds]
    frames = []
    for side, ks in (("l", kinds), ("r", right_kinds)):
        n = draw(st.integers(0, 25))
        cols = {f"k{j}": key_column(draw, dtype, n) for j, dtype in enumerate(ks)}
        cols["v"] = pd.Series(np.arange(n, dtype="int64") + (0 if side == "l" else 1000))
        cols[side] = pd.Series([f"{side}{i}" for i in range(n)], dtype="str")
        frames.append(pd.DataFrame(cols))
    return frames[0], frames[1], [f"k{j}" for j in range(nkeys)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=sides(), how=st.sampled_from(HOWS), lparts=st.integers(1, 3), rparts=st.integers(1, 3),
    nparts=st.sampled_from([None, 1, 4]),
)
def test_merge_is_pandas_merge(frames, how, lparts, rparts, nparts):
    left, right, on = frames
    L = dd.from_pandas(left, npartitions=lparts)
    R = dd.from_pandas(right, npartitions=rparts)
    out = skd.merge(L, R, on=on, how=how, npartitions=nparts)
    assert out._meta.dtypes.equals(dask_merge(L, R, on=on, how=how)._meta.dtypes)
    got = out.compute(scheduler="sync")
    want = pd.merge(L.compute(scheduler="sync"), R.compute(scheduler="sync"), on=on, how=how)
    assert_same_rows(got, want)


@pytest.mark.parametrize("how", HOWS)
def test_merge_equals_dasks_merge(how):
    rng = np.random.default_rng(0)
    left = pd.DataFrame({
        "a": rng.integers(0, 30, 500), "b": pd.array(rng.integers(0, 3, 500), dtype="Int64"),
        "s": pd.Series([f"x{i}" for i in rng.integers(0, 9, 500)], dtype="str"), "x": rng.random(500),
    })
    left.loc[::17, "b"] = pd.NA
    right = pd.DataFrame({
        "ka": rng.integers(10, 40, 300).astype("float64"), "b": rng.integers(0, 3, 300),
        "s": pd.Series([f"y{i}" for i in rng.integers(0, 9, 300)], dtype="str"),
    })
    right.loc[::11, "ka"] = np.nan
    L, R = dd.from_pandas(left, npartitions=4), dd.from_pandas(right, npartitions=3)
    kwargs = dict(left_on=["a", "b"], right_on=["ka", "b"], how=how, suffixes=("_l", "_r"))
    mine, theirs = skd.merge(L, R, **kwargs), dask_merge(L, R, shuffle_method="tasks", **kwargs)
    assert mine.npartitions == theirs.npartitions == 4
    pd.testing.assert_frame_equal(mine._meta, theirs._meta)
    got, want = dask.compute(mine, theirs, scheduler="sync")
    assert_same_rows(got, want)
    # dask's index: each partition's own RangeIndex
    assert all(isinstance(p.index, pd.RangeIndex) and p.index.start == 0
               for p in dask.compute(*mine.to_delayed(), scheduler="sync"))


def test_keys_of_other_numeric_dtypes_meet():
    """int64, Int64 and float keys of the same values land in the same pair (the hash is
    of values), so nothing is lost to a wrong partition."""
    keys = np.arange(200)
    L = dd.from_pandas(pd.DataFrame({"k": keys, "a": keys}), npartitions=3)
    R = dd.from_pandas(pd.DataFrame({"k": pd.array(keys[::-1], dtype="Int64"), "b": keys}), npartitions=2)
    F = dd.from_pandas(pd.DataFrame({"k": keys.astype("float64"), "c": keys}), npartitions=4)
    for other in (R, F):
        out = skd.merge(L, other, on="k", npartitions=7).compute(scheduler="sync")
        assert len(out) == 200


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_schedulers_and_thread_counts_give_the_same_result(scheduler):
    rng = np.random.default_rng(1)
    left = pd.DataFrame({"k": rng.integers(0, 50, 2000), "x": rng.random(2000)})
    right = pd.DataFrame({"k": rng.integers(0, 60, 700), "y": rng.random(700)})
    out = skd.merge(dd.from_pandas(left, npartitions=5), dd.from_pandas(right, npartitions=3), on="k", how="outer")
    want = out.compute(scheduler="sync")
    assert_same_rows(want, pd.merge(left, right, on="k", how="outer"))
    workers = [1, 2, 5] if scheduler == "threads" else [2]
    for n in workers:
        pd.testing.assert_frame_equal(out.compute(scheduler=scheduler, num_workers=n), want)


@pytest.mark.parametrize("how", HOWS)
def test_a_pandas_side_is_joined_whole_where_how_allows(how):
    left = pd.DataFrame({"k": [1, 2, 3, 4, 5, 6] * 5, "a": range(30)})
    right = pd.DataFrame({"k": [2, 3, 3, 9], "b": ["p", "q", "r", "s"]})
    L = dd.from_pandas(left, npartitions=3)
    seen = dd.from_pandas(right, npartitions=1).compute()  # the frame as dask converts it (its strings)
    out = skd.merge(L, right, on="k", how=how)
    flipped = skd.merge(right, L, on="k", how={"left": "right", "right": "left"}.get(how, how))
    # inner and left keep no unmatched row of the right: joined whole with each partition
    assert out.npartitions == 3 and flipped.npartitions == 3
    assert_same_rows(out.compute(scheduler="sync"), pd.merge(L.compute(), seen, on="k", how=how))
    want = pd.merge(seen, L.compute(), on="k", how={"left": "right", "right": "left"}.get(how, how))
    assert_same_rows(flipped.compute(scheduler="sync"), want)
    asked = skd.merge(L, right, on="k", how=how, npartitions=5)  # asked for: a hash join
    assert asked.npartitions == 5
    assert_same_rows(asked.compute(scheduler="sync"), pd.merge(L.compute(), seen, on="k", how=how))


def test_sql_nulls_match_nothing():
    L = dd.from_pandas(pd.DataFrame({"k": [1.0, None, None], "a": [1, 2, 3]}), npartitions=2)
    R = dd.from_pandas(pd.DataFrame({"k": [None, 1.0], "b": [5, 6]}), npartitions=2)
    got = skd.merge(L, R, on="k", how="left", nulls_equal=False).compute(scheduler="sync")
    assert sorted(got["b"].fillna(-1).tolist()) == [-1, -1, 6]
    pandas_rule = skd.merge(L, R, on="k", how="left").compute(scheduler="sync")
    assert sorted(pandas_rule["b"].tolist()) == [5, 5, 6]  # NaN matches NaN


def test_refusals_name_the_problem():
    L = dd.from_pandas(pd.DataFrame({"k": [1, 2], "a": [1, 2]}), npartitions=1)
    R = dd.from_pandas(pd.DataFrame({"k": ["1", "2"], "b": [1, 2]}), npartitions=1)
    with pytest.raises(JobError, match="left key column 'k' .*int64.* right key column 'k'"):
        skd.merge(L, R, on="k")
    with pytest.raises(KeyError, match="nope"):
        skd.merge(L, L, on="nope")
    with pytest.raises(KeyError, match="kk"):
        skd.merge(L, L, left_on="k", right_on="kk")
    with pytest.raises(JobError, match="how must be"):
        skd.merge(L, L, on="k", how="cross")
    with pytest.raises(ArgumentTypeError, match="right: .*not list"):
        skd.merge(L, [1, 2], on="k")
    with pytest.raises(ArgumentTypeError, match="two pandas"):
        skd.merge(L.compute(), L.compute(), on="k")


# -- dask.distributed ----------------------------------------------------------------------

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with two_workers(str(tmp_path_factory.mktemp("workers"))) as (_, client):
        yield client


def no_runs_left(client, timeout: float = 10.0) -> bool:
    def live(dask_scheduler):
        plugin = dask_scheduler.plugins.get("shuffle_kit")
        return [] if plugin is None else list(plugin.runs)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        servers, idle = shuffle_servers(client)  # idle ones, kept for the next run, hold nothing
        if not client.run_on_scheduler(live) and not servers and not any(held for _, held, _ in idle):
            return True
        time.sleep(0.1)
    return False


def cluster_frames() -> tuple:
    rng = np.random.default_rng(2)
    left = pd.DataFrame({
        "id": np.arange(6000), "k": rng.integers(0, 400, 6000),
        "s": pd.Series([f"s{i}" for i in rng.integers(0, 50, 6000)], dtype="str"),
    })
    right = pd.DataFrame({"k": pd.array(rng.integers(0, 500, 900), dtype="Int64"), "w": rng.random(900)})
    right.loc[::50, "k"] = pd.NA
    return dd.from_pandas(left, npartitions=6), dd.from_pandas(right, npartitions=3)


@pytest.mark.parametrize("how", ["inner", "outer"])
def test_merge_on_cluster(client, how):
    L, R = cluster_frames()
    mine = skd.merge(L, R, on="k", how=how)
    theirs = dask_merge(L, R, on="k", how=how, shuffle_method="p2p")
    got, want = client.compute([mine, theirs], sync=True)
    assert_same_rows(got, want)
    assert_same_rows(got, pd.merge(L.compute(), R.compute(), on="k", how=how))
    assert no_runs_left(client)


@pytest.mark.slow
def test_worker_killed_mid_merge(client):
    """As the hash shuffle: a killed worker process costs re-runs, not data."""
    L, R = cluster_frames()
    want = pd.merge(L.compute(), R.compute(), on="k", how="left")
    client.run(arm, functools.partial(sleep, 0.4))
    result = despite_a_killed_worker(client, skd.merge(L, R, on="k", how="left"))
    if result is not None:
        assert_same_rows(result, want)
    assert no_runs_left(client)
