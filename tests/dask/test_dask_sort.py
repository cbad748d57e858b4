"""shuffle_kit.dask.sort_values and set_index against dask's own and pandas' results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

import shuffle_kit.dask as skd  # noqa: E402
from shuffle_kit.errors import ShuffleKitError  # noqa: E402

KINDS = ["int", "float", "str", "datetime"]


def make_keys(kind: str, n: int, rng: np.random.Generator, nulls: bool, skew: bool, distinct: int) -> pd.Series:
    codes = rng.integers(0, distinct, n)
    if skew:
        codes[rng.random(n) < 0.7] = distinct // 2  # one key holds most rows
    if kind == "int":
        s = pd.Series(codes * 7 - 50, dtype="int64")
    elif kind == "float":
        s = pd.Series(codes / 4 - 3.0)
        if nulls:
            s[rng.random(n) < 0.1] = np.nan
    elif kind == "str":
        s = pd.Series([f"k{c:03d}" for c in codes], dtype="string[pyarrow]")
        if nulls:
            s[rng.random(n) < 0.1] = None
    else:
        s = pd.Series(pd.Timestamp("2024-03-01", tz="Europe/Paris") + pd.to_timedelta(codes, "h"))
        if nulls:
            s[rng.random(n) < 0.1] = pd.NaT
    return s


def make_frame(kind: str, n: int, seed: int, nulls: bool = True, skew: bool = False, distinct: int = 40,
               **other: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "k": make_keys(kind, n, rng, nulls, skew, distinct),
        "id": np.arange(n),
        "x": rng.random(n),
        "s": pd.Series([f"v{i % 13}" for i in range(n)], dtype="string[pyarrow]"),
    })
    for name, k in other.items():
        df[name] = make_keys(k, n, rng, nulls, False, 5)
    df.index = pd.Index(rng.permutation(n) + 1000, name="row")  # an index of its own, kept by sort_values
    return df


def parts_of(collection, scheduler: str = "threads") -> list[pd.DataFrame]:
    return list(dask.compute(*collection.to_delayed(), scheduler=scheduler))


def same_rows_and_keys(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    """Equal but for the order of rows with equal keys (dask's per-partition sort of
    set_index is not stable): the keys in the same order, the same rows."""
    assert got.dtypes.equals(want.dtypes) and got.index.dtype == want.index.dtype
    if keys:
        pd.testing.assert_frame_equal(got[keys].reset_index(drop=True), want[keys].reset_index(drop=True))
    else:
        pd.testing.assert_index_equal(got.index, want.index)
    pd.testing.assert_frame_equal(got.sort_values("id"), want.sort_values("id"))


def check_within_divisions(parts: list[pd.DataFrame], divisions: tuple) -> None:
    assert len(parts) == len(divisions) - 1
    last = len(parts) - 1
    for i, p in enumerate(parts):
        values = p.index[p.index.notna()]
        assert p.index.isna().sum() == 0 or i == last, f"nulls in partition {i} of {last + 1}"
        if len(values):
            assert values.min() >= divisions[i]
            assert values.max() < divisions[i + 1] if i < last else values.max() <= divisions[i + 1]
        assert p.index.is_monotonic_increasing or i == last
    pd.testing.assert_index_equal(parts[last].index, parts[last].index.sort_values(na_position="last"))


CASES = [
    # kind, rows, input partitions, output partitions, nulls, skew, distinct keys
    ("int", 600, 4, None, False, False, 40),
    ("int", 900, 3, 5, False, True, 40),
    ("float", 700, 5, 3, True, False, 40),
    ("float", 500, 2, 6, True, True, 3),  # fewer distinct keys than partitions
    ("str", 800, 4, 4, False, False, 200),
    ("str", 300, 1, 3, False, True, 40),
    ("datetime", 600, 3, 4, True, False, 40),
    ("datetime", 400, 6, 2, False, False, 5000),
    ("int", 7000, 3, 8, False, False, 100_000),  # partitions larger than the sample: sampled ranges
]


@pytest.mark.parametrize("kind, rows, nin, nout, nulls, skew, distinct", CASES)
def test_sort_values_equals_pandas_and_dask(kind, rows, nin, nout, nulls, skew, distinct):
    df = make_frame(kind, rows, seed=rows + nin, nulls=nulls, skew=skew, distinct=distinct)
    ddf = dd.from_pandas(df, npartitions=nin, sort=False)
    out = skd.sort_values(ddf, "k", npartitions=nout)
    assert out.npartitions == (nout or nin) and not out.known_divisions  # as dask's sort_values
    parts = parts_of(out)
    got = pd.concat(parts)
    frame = ddf.compute(scheduler="sync")
    # pandas' stable sort exactly: values, dtypes, the index kept, ties in input order
    pd.testing.assert_frame_equal(got, frame.sort_values("k", kind="stable"))
    same_rows_and_keys(got, ddf.sort_values("k").compute(scheduler="threads"), ["k"])
    # the partitions cover key ranges in order: concatenated they are sorted (checked above),
    # and equal keys never split
    owners = pd.concat([pd.Series(i, index=p["id"]) for i, p in enumerate(parts)])
    keyed = frame.assign(part=owners.reindex(frame["id"]).to_numpy())
    assert (keyed.groupby("k", dropna=False)["part"].nunique() == 1).all()
    # balanced as the keys allow: a partition holds its share, give or take one key's rows
    # (a sampled input, larger than the per-partition sample, gets some slack)
    sizes = [len(p) for p in parts]
    largest_key = int(frame["k"].value_counts(dropna=False).max())
    slack = 1.5 if rows > 5000 else 1.0
    assert max(sizes) <= slack * rows / len(parts) + largest_key


@pytest.mark.parametrize("ascending, na_position", [(False, "last"), ([True, False], "first"), ([False, True], "last")])
def test_sort_values_by_columns_in_both_directions(ascending, na_position):
    df = make_frame("float", 900, seed=3, distinct=6, j="str")
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    by = ["k"] if isinstance(ascending, bool) else ["k", "j"]
    out = skd.sort_values(ddf, by, ascending=ascending, na_position=na_position, npartitions=5)
    got = out.compute(scheduler="threads")
    want = df.sort_values(by, ascending=ascending, na_position=na_position, kind="stable")
    pd.testing.assert_frame_equal(got, want)
    dasks = ddf.sort_values(by, ascending=ascending, na_position=na_position).compute(scheduler="threads")
    same_rows_and_keys(got, dasks, by)


@pytest.mark.parametrize("kind, rows, nin, nout, nulls, skew, distinct", CASES)
def test_set_index_equals_dask_with_known_divisions(kind, rows, nin, nout, nulls, skew, distinct):
    df = make_frame(kind, rows, seed=rows * 3 + nin, nulls=nulls, skew=skew, distinct=distinct)
    ddf = dd.from_pandas(df, npartitions=nin, sort=False)
    out = skd.set_index(ddf, "k", npartitions=nout)
    assert out.known_divisions
    assert out.npartitions <= (nout or nin)
    parts = parts_of(out)
    check_within_divisions(parts, out.divisions)
    got = pd.concat(parts)
    frame = ddf.compute(scheduler="sync")
    pd.testing.assert_frame_equal(got, frame.sort_values("k", kind="stable").set_index("k"))
    mine = out._meta
    assert mine.dtypes.equals(ddf.set_index("k")._meta.dtypes)
    same_rows_and_keys(got, ddf.set_index("k").compute(scheduler="threads"), [])
    if distinct >= 40 and not skew:
        assert out.npartitions == (nout or nin)  # enough distinct keys: as many partitions as asked


@pytest.mark.parametrize("kind", ["int", "float", "datetime"])
def test_set_index_with_dask_divisions_equals_dask_partition_for_partition(kind):
    df = make_frame(kind, 800, seed=11, nulls=kind != "int", distinct=60)
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    theirs = ddf.set_index("k")
    divisions = theirs.divisions
    out = skd.set_index(ddf, "k", divisions=divisions)
    assert out.divisions == divisions
    mine, dasks = parts_of(out), parts_of(theirs)
    assert len(mine) == len(dasks)
    for m, d in zip(mine, dasks):
        same_rows_and_keys(m, d.sort_index(kind="stable"), [])
    if kind != "datetime":  # dask's divisions of tz-aware keys are off by their UTC offset
        check_within_divisions(mine, divisions)


def test_set_index_of_null_string_keys_and_of_only_nulls():
    # dask refuses string keys with nulls; shuffle_kit puts them last, in the last partition
    df = make_frame("str", 500, seed=5, nulls=True)
    ddf = dd.from_pandas(df, npartitions=3, sort=False)
    out = skd.set_index(ddf, "k", 4)
    parts = parts_of(out)
    check_within_divisions(parts, out.divisions)
    pd.testing.assert_frame_equal(pd.concat(parts), df.sort_values("k", kind="stable").set_index("k"))
    nothing = dd.from_pandas(df.assign(k=pd.Series(np.nan, index=df.index)), npartitions=3, sort=False)
    out = skd.set_index(nothing, "k")
    assert out.npartitions == 1 and not out.known_divisions
    assert out.compute(scheduler="threads")["id"].tolist() == df["id"].tolist()


def test_processes_scheduler():
    df = make_frame("datetime", 600, seed=2)
    ddf = dd.from_pandas(df, npartitions=3, sort=False)
    got = pd.concat(parts_of(skd.sort_values(ddf, "k", npartitions=4), "processes"))
    pd.testing.assert_frame_equal(got, df.sort_values("k", kind="stable"))
    out = skd.set_index(ddf, "k", 4)
    parts = parts_of(out, "processes")
    check_within_divisions(parts, out.divisions)
    pd.testing.assert_frame_equal(pd.concat(parts), df.sort_values("k", kind="stable").set_index("k"))


@pytest.mark.parametrize("ranged", [False, True], ids=["sort_values", "range shuffle"])
def test_a_sort_without_divisions_samples_in_its_own_graph_and_computes_its_input_once(ranged):
    df = make_frame("int", 400, seed=3 + ranged)  # (frames of their own: dask caches by token)
    calls: list[int] = []

    def counted(part: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(part))
        return part

    ddf = dd.from_pandas(df, npartitions=4, sort=False).map_partitions(counted, meta=df.iloc[:0])
    if ranged:
        out = skd.shuffle(ddf, "k", 3, partitioner="range")
    else:
        out = skd.sort_values(ddf, "k", npartitions=3)
    assert calls == []  # nothing computed by the call
    got = out.compute(scheduler="sync")
    assert len(calls) == 4 and sum(calls) == len(df)  # each input partition once: sample and map
    want = df.sort_values("k", kind="stable")
    if ranged:
        got = got.sort_values("k", kind="stable")  # (ranges in order, rows in input order within)
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("call, error, message", [
    (lambda ddf: skd.sort_values(ddf, "nope"), KeyError, "nope"),
    (lambda ddf: skd.sort_values(ddf, "k", na_position="middle"), ValueError, "na_position"),
    (lambda ddf: skd.sort_values(ddf, ["k", "x"], ascending=[True]), TypeError, "ascending"),
    (lambda ddf: skd.set_index(ddf, ["k", "x"]), TypeError, "one column"),
    (lambda ddf: skd.set_index(ddf, "k", divisions=[3, 1, 2]), ValueError, "sorted"),
    (lambda ddf: skd.set_index(ddf, "k", 5, divisions=[1, 2, 3]), ValueError, "npartitions"),
    (lambda ddf: skd.sort_values(ddf.compute(), "k"), TypeError, "dask DataFrame"),
])
def test_bad_arguments_are_one_line(call, error, message):
    ddf = dd.from_pandas(make_frame("int", 50, seed=1), npartitions=2)
    with pytest.raises(error, match=message) as info:
        call(ddf)
    assert isinstance(info.value, ShuffleKitError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("index", [pd.RangeIndex(15_000), pd.RangeIndex(-40, -40 + 3 * 15_000, 3)],
                         ids=["0..n", "stepped"])
def test_a_range_index_input_sorts_alike_on_any_number_of_threads(index):
    """A RangeIndex input (dask's usual) keeps its numbers through sort_values (made again
    from the rows each map task's pieces took), and the partitions, as large as a real
    job's pieces, are the same for 1, 2 and 5 threads; their columns are writable."""
    df = make_frame("int", len(index), seed=17, distinct=3000).set_axis(index, axis=0)
    ddf = dd.from_pandas(df, npartitions=3, sort=False)
    want = df.sort_values("k", kind="stable")
    outs = {}
    for workers in (1, 2, 5):
        parts = list(dask.compute(*skd.sort_values(ddf, "k", npartitions=4).to_delayed(), scheduler="threads",
                                  num_workers=workers))
        pd.testing.assert_frame_equal(pd.concat(parts), want)
        indexed = list(dask.compute(*skd.set_index(ddf, "k", npartitions=4).to_delayed(), scheduler="threads",
                                    num_workers=workers))
        pd.testing.assert_frame_equal(pd.concat(indexed), want.set_index("k"))
        outs[workers] = parts + indexed
    for workers in (2, 5):
        for mine, one in zip(outs[workers], outs[1]):
            pd.testing.assert_frame_equal(mine, one)
    part = outs[1][0]
    part.loc[part.index[0], "x"] = -1.0  # a user's frame: written in place
    part["id"] += 1
    assert part["x"].iloc[0] == -1.0 and (part["id"] == outs[2][0]["id"] + 1).all()


def test_an_index_with_a_frequency_sorts_and_shuffles():
    """A DatetimeIndex with a freq (``pd.date_range``'s): each piece records it, and the
    rows a sort or a shuffle puts together no longer follow it; pandas then has none."""
    n = 2000
    df = make_frame("int", n, seed=5).set_axis(pd.date_range("2000-01-01", periods=n, freq="D"), axis=0)
    ddf = dd.from_pandas(df, npartitions=4)
    got = skd.sort_values(ddf, "k").compute(scheduler="threads")
    pd.testing.assert_frame_equal(got, df.sort_values("k", kind="stable"), check_freq=False)
    shuffled = skd.shuffle(ddf, "k", npartitions=3).compute(scheduler="threads")
    pd.testing.assert_frame_equal(shuffled.sort_index(), df, check_freq=False)
