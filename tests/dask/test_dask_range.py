"""shuffle_kit.dask.shuffle(..., partitioner="range") against the pandas model: the
partitions, each stable-sorted, concatenated in order are pandas' stable sort; rows within
a partition in input order; equal keys in one partition; divisions unknown."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

import shuffle_kit.dask as skd  # noqa: E402
from shuffle_kit.errors import ShuffleKitError  # noqa: E402
from tests.dask.test_dask_sort import KINDS, make_frame, parts_of  # noqa: E402


def check_ranges(parts: list[pd.DataFrame], frame: pd.DataFrame, by: list, ascending, na_position: str) -> None:
    """The model of a range shuffle of ``frame`` (whose ``id`` is its input order)."""
    how = {"ascending": ascending, "na_position": na_position, "kind": "stable"}
    for p in parts:  # input order within a partition, the frame's dtypes and index kept
        assert p["id"].is_monotonic_increasing
        assert p.dtypes.equals(frame.dtypes) and p.index.dtype == frame.index.dtype
    got = pd.concat([p.sort_values(by, **how) for p in parts])
    pd.testing.assert_frame_equal(got, frame.sort_values(by, **how))
    owners = pd.concat([pd.Series(i, index=p["id"]) for i, p in enumerate(parts)])
    keyed = frame.reset_index().assign(part=owners.reindex(frame["id"]).to_numpy())
    assert (keyed.groupby(by, dropna=False)["part"].nunique() == 1).all()  # equal keys never split


@settings(max_examples=15, deadline=None)
@given(
    kind=st.sampled_from(KINDS), other=st.sampled_from([None, *KINDS]), rows=st.integers(0, 700),
    nin=st.integers(1, 4), nout=st.integers(1, 6), seed=st.integers(0, 2**16), skew=st.booleans(),
    distinct=st.sampled_from([3, 40, 5000]), descending=st.sampled_from([(), (0,), (1,), (0, 1)]),
    na_position=st.sampled_from(["last", "first"]),
)
def test_partitions_in_key_order_equal_pandas(kind, other, rows, nin, nout, seed, skew, distinct, descending,
                                              na_position):
    df = make_frame(kind, rows, seed, skew=skew, distinct=distinct, **({"j": other} if other else {}))
    by = ["k"] if other is None else ["k", "j"]
    ascending = [i not in descending for i in range(len(by))]
    ddf = dd.from_pandas(df, npartitions=nin, sort=False)
    out = skd.shuffle(ddf, by, nout, partitioner="range", ascending=ascending, na_position=na_position)
    assert out.npartitions == nout and not out.known_divisions
    check_ranges(parts_of(out), ddf.compute(scheduler="sync"), by, ascending, na_position)


def test_sampled_ranges_are_balanced_and_a_heavy_key_fills_a_partition():
    df = make_frame("int", 20_000, seed=4, skew=True, distinct=100_000)
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    parts = parts_of(skd.shuffle(ddf, "k", 8, partitioner="range"))
    check_ranges(parts, df, ["k"], True, "last")
    heavy = df["k"].value_counts().idxmax()
    holding = [i for i, p in enumerate(parts) if (p["k"] == heavy).any()]
    assert len(holding) == 1 and (parts[holding[0]]["k"] == heavy).sum() == (df["k"] == heavy).sum()
    # the other partitions hold at most a share of the rows (from a sample: with some slack),
    # and the keys after the heavy one still spread over several
    others = [len(p) for i, p in enumerate(parts) if i != holding[0]]
    assert max(others) <= 1.5 * len(df) / len(parts)
    assert sum(1 for p in parts[holding[0] + 1:] if len(p)) >= 3


def test_by_an_index_level_and_on_the_processes_scheduler():
    df = make_frame("str", 900, seed=5)
    ddf = dd.from_pandas(df, npartitions=3, sort=False)
    check_ranges(parts_of(skd.shuffle(ddf, "row", 4, partitioner="range"), "processes"), df, ["row"], True, "last")
    check_ranges(parts_of(skd.shuffle(ddf, "k", 4, partitioner="range", ascending=False)), df, ["k"], False, "last")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"ascending": False}, ValueError, "partitioner='range' only"),
    ({"partitioner": "range", "na_position": "middle"}, ValueError, "na_position must be 'last' or 'first'"),
    ({"partitioner": "range", "ascending": [True, False]}, TypeError, "one bool per key column"),
    ({"partitioner": "ranges"}, ValueError, "'hash', 'dask', 'range'"),
])
def test_bad_arguments_are_one_line(kwargs, error, message):
    ddf = dd.from_pandas(make_frame("int", 50, seed=1), npartitions=2)
    with pytest.raises(error, match=message) as info:
        skd.shuffle(ddf, "k", 2, **kwargs)
    assert isinstance(info.value, ShuffleKitError) and "\n" not in str(info.value)


@pytest.mark.parametrize("call", [
    lambda ddf: skd.shuffle(ddf, "o", partitioner="range"),
    lambda ddf: skd.sort_values(ddf, "o"),
    lambda ddf: skd.set_index(ddf, "o"),
])
def test_keys_of_python_objects_are_refused_by_every_range_shuffle(call):
    from shuffle_kit.errors import UnorderableKeyError

    with dask.config.set({"dataframe.convert-string": False}):  # (else dask makes the lists strings)
        ddf = dd.from_pandas(pd.DataFrame({"k": [1, 2], "o": [[1], [2]]}), npartitions=1)
    with pytest.raises(UnorderableKeyError, match="key column 'o' holds Python objects"):
        call(ddf).compute(scheduler="sync")
