"""``merge`` against ``pandas.merge``, up to row order: random keys of every joinable dtype
with nulls, NaN and duplicates on both sides, different but joinable dtypes on the two
sides, one and two key columns, every ``how``, SQL's null rule, streams and Arrow inputs,
small partition counts and memory limits; pairs too large for memory split again or joined
in chunks; and the errors."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.errors import JobError, MissingColumnError
from tests.helpers.memory import WATCH_PEAK_RSS

HOWS = ["inner", "left", "right", "outer"]
# kinds pandas joins with each other (pandas' own dtype for a key of two string kinds
# depends on which rows match: those are joined each with itself)
FAMILIES = {
    "number": ["int64", "float64", "Int64"],
    "str": ["str"], "object": ["object"], "string": ["string"],
    "datetime_ns": ["datetime_ns"], "datetime_us": ["datetime_us"],
}


def key_column(kind: str, codes: list[int | None]) -> pd.Series:
    """Keys from small integer codes (None: a null, where the kind has one)."""
    if kind == "int64":
        return pd.Series([-1 if c is None else c for c in codes], dtype="int64")
    if kind == "float64":
        return pd.Series([np.nan if c is None else c / 2 if c % 3 == 2 else float(c) for c in codes], dtype="float64")
    if kind == "Int64":
        return pd.Series(pd.array(codes, dtype="Int64"))
    if kind in ("str", "object", "string"):
        return pd.Series([None if c is None else f"s{c}" for c in codes], dtype=kind)
    if kind.startswith("datetime"):
        unit = kind.split("_")[1]
        t = pd.Series(pd.to_datetime([0 if c is None else c for c in codes], unit="D")).astype(f"datetime64[{unit}]")
        return t.where(pd.Series([c is not None for c in codes], dtype=bool))
    raise AssertionError(kind)


@st.composite
def sides(draw, max_rows: int = 30):
    nkeys = draw(st.integers(1, 2))
    families = [draw(st.sampled_from(sorted(FAMILIES))) for _ in range(nkeys)]
    frames = []
    for side in ("l", "r"):
        n = draw(st.integers(0, max_rows))
        codes = st.one_of(st.none(), st.integers(0, draw(st.sampled_from([1, 3, 8]))))
        df = pd.DataFrame({
            f"k{i}": key_column(draw(st.sampled_from(FAMILIES[fam])), draw(st.lists(codes, min_size=n, max_size=n)))
            for i, fam in enumerate(families)
        })
        df[f"{side}row"] = np.arange(n)  # int64: float64 where unmatched
        df["v"] = pd.Series([i % 2 == 0 for i in range(n)], dtype=bool)  # both sides: suffixed
        df[f"{side}s"] = pd.Series([f"{side}{i}" for i in range(n)], dtype="str")
        frames.append(df)
    return frames[0], frames[1], [f"k{i}" for i in range(nkeys)]


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order (sorted by every column's text), index dropped; a null of an
    object column is None (pandas itself gives None or NaN for a missing key of an object
    column, depending on whether the side it comes from had rows)."""
    df = df.copy()
    for i, dtype in enumerate(df.dtypes):
        if pd.api.types.is_object_dtype(dtype):
            column = df.iloc[:, i]
            df.isetitem(i, column.astype(object).where(column.notna(), None))
    text = df.astype(str)
    order = text.sort_values(list(text.columns)).index if len(df.columns) else df.index
    return df.loc[order].reset_index(drop=True)


def assert_same_join(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    pd.testing.assert_frame_equal(canonical(got), canonical(expected))


def pandas_or_error(left: pd.DataFrame, right: pd.DataFrame, **kwargs) -> pd.DataFrame | None:
    try:
        return pd.merge(left, right, **kwargs)
    except (ValueError, TypeError):
        return None


def sql_model(left: pd.DataFrame, right: pd.DataFrame, lkeys: list, rkeys: list, how: str, **kwargs) -> pd.DataFrame:
    """SQL's rule from pandas: rows with a null key joined with nothing."""
    lnull, rnull = left[lkeys].isna().any(axis=1), right[rkeys].isna().any(axis=1)
    parts = [pd.merge(left[~lnull], right[~rnull], how=how, **kwargs)]
    if how in ("left", "outer"):
        parts.append(pd.merge(left[lnull], right.iloc[:0], how=how, **kwargs))
    if how in ("right", "outer"):
        parts.append(pd.merge(left.iloc[:0], right[rnull], how=how, **kwargs))
    nonempty = [p for p in parts if len(p)] or parts[:1]
    return pd.concat(nonempty, ignore_index=True)


@given(sides(), st.sampled_from(HOWS), st.one_of(st.none(), st.integers(1, 7)),
       st.sampled_from(["frame", "chunks", "arrow"]),
       st.sampled_from([1, 2]))
@settings(deadline=None, max_examples=150)
def test_merge_equals_pandas(case, how, npartitions, kind, threads):
    left, right, on = case
    if kind == "arrow":  # the model: pandas' merge of the table as pandas reads it
        right = pa.Table.from_pandas(right, preserve_index=False).to_pandas()
    expected = pandas_or_error(left, right, on=on, how=how)
    if kind == "chunks":
        right_in = iter([right.iloc[: len(right) // 2], right.iloc[len(right) // 2:]])
    elif kind == "arrow":
        right_in = pa.Table.from_pandas(right, preserve_index=False)
    else:
        right_in = right
    if expected is None:
        with pytest.raises(JobError, match="cannot join left key column"):
            sk.merge(left, right_in, on=on, how=how, npartitions=npartitions, progress=False)
        return
    with sk.merge(left, right_in, on=on, how=how, npartitions=npartitions, threads=threads, progress=False) as joined:
        got = joined.to_pandas()
        assert sum(joined.sizes) == len(expected)
    assert_same_join(got, expected)


@given(sides(), st.sampled_from(HOWS), st.integers(1, 5))
@settings(deadline=None, max_examples=60)
def test_merge_left_on_right_on_keeps_both_columns(case, how, npartitions):
    left, right, on = case
    right = right.rename(columns={k: f"r{k}" for k in on})
    ron = [f"r{k}" for k in on]
    expected = pandas_or_error(left, right, left_on=on, right_on=ron, how=how)
    if expected is None:
        with pytest.raises(JobError, match="cannot join left key column"):
            sk.merge(left, right, left_on=on, right_on=ron, how=how, npartitions=npartitions, progress=False)
        return
    with sk.merge(left, right, left_on=on, right_on=ron, how=how, npartitions=npartitions, progress=False) as joined:
        assert_same_join(joined.to_pandas(), expected)


@given(sides(), st.sampled_from(HOWS), st.integers(1, 5))
@settings(deadline=None, max_examples=60)
def test_merge_sql_nulls_never_match(case, how, npartitions):
    left, right, on = case
    matching_nulls = pandas_or_error(left, right, on=on, how=how)
    if matching_nulls is None:
        return
    expected = sql_model(left, right, on, on, how, on=on)
    with sk.merge(left, right, on=on, how=how, nulls_equal=False, npartitions=npartitions, progress=False) as joined:
        got = joined.to_pandas()
    assert list(got.columns) == list(expected.columns)
    # the model's dtypes are those of its merges of filtered frames (a side left without
    # rows is not cast to the other's key type): each is the model's or pandas' own
    for c in got.columns:
        assert got[c].dtype in (expected[c].dtype, matching_nulls[c].dtype), c
    if len(expected):
        pd.testing.assert_frame_equal(canonical(got.astype(expected.dtypes.to_dict())), canonical(expected))
    else:
        assert not len(got)


def test_merge_of_joinable_dtypes_across_sides():
    left = pd.DataFrame({"k": [1, 2, 3, 2], "a": range(4)})
    right = pd.DataFrame({"k": pd.array([2, None, 3], dtype="Int64"), "b": [1.5, 2.5, 3.5]})
    for how in HOWS:
        with sk.merge(left, right, on="k", how=how, npartitions=4, progress=False) as joined:
            assert_same_join(joined.to_pandas(), pd.merge(left, right, on="k", how=how))
    # string with large_string (Arrow), read as pandas reads them
    lt = pa.table({"k": pa.array(["a", "b", None], pa.string()), "x": [1, 2, 3]})
    rt = pa.table({"k": pa.array(["b", None, "c"], pa.large_string()), "y": [4, 5, 6]})
    with sk.merge(lt, rt, on="k", how="outer", npartitions=3, progress=False) as joined:
        assert_same_join(joined.to_pandas(), pd.merge(lt.to_pandas(), rt.to_pandas(), on="k", how="outer"))


@pytest.mark.parametrize("left_keys", [[np.nan], [1.0], [1.5, np.nan]])
@pytest.mark.parametrize("how", HOWS)
def test_merge_dtypes_follow_whether_any_row_matches(left_keys, how):
    # pandas gives float keys joined with int keys the float dtype only where some row
    # matches: a join whose rows are all unmatched has the dtypes of those rows alone
    left = pd.DataFrame({"k": left_keys, "a": range(len(left_keys))})
    right = pd.DataFrame({"k": [-1, 1], "b": [0, 1]})
    expected = pd.merge(left, right, on="k", how=how)
    for data in (left, iter([left])):  # one pair, and the shuffled path
        with sk.merge(data, right, on="k", how=how, npartitions=2, progress=False) as joined:
            assert_same_join(joined.to_pandas(), expected)


def test_merge_polars_and_parquet_inputs_and_outputs(tmp_path):
    pl = pytest.importorskip("polars")
    left = pd.DataFrame({"k": [1, 2, 2, 4] * 5, "a": range(20)})
    right = pd.DataFrame({"k": [2, 4, 5], "b": ["x", "y", "z"]})
    left.to_parquet(tmp_path / "left.parquet")
    with sk.merge(str(tmp_path / "left.parquet"), pl.from_pandas(right), on="k", how="left", npartitions=3,
                  progress=False) as joined:
        expected = pd.merge(left, right, on="k", how="left")
        assert_same_join(joined.to_pandas(), expected)
        assert sorted(joined.to_polars()["a"].to_list()) == list(range(20))
        paths = joined.write_parquet(tmp_path / "out")
        back = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        assert sorted(back["a"]) == list(range(20)) and sum(joined.sizes) == 20
        assert sum(len(f) for f in joined) == 20


def test_merge_without_on_joins_the_shared_columns():
    left = pd.DataFrame({"k": [1, 2], "j": ["a", "b"], "a": [1, 2]})
    right = pd.DataFrame({"j": ["a", "b"], "k": [1, 3], "b": [3, 4]})
    with sk.merge(left, right, progress=False) as joined:
        assert_same_join(joined.to_pandas(), pd.merge(left, right))


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("nulls_equal", [True, False])
def test_skewed_pairs_split_again_and_single_keys_joined_in_chunks(how, nulls_equal):
    # a 1 MiB limit gives pairs of 1 MiB: the many distinct keys of partition 0 are split
    # again with other seeds, and the hot key (70k rows) is joined in chunks
    rng = np.random.default_rng(0)
    n = 150_000
    keys = np.where(rng.random(n) < 0.45, 7, rng.integers(0, 40_000, n)).astype(float)
    keys[rng.random(n) < 0.01] = np.nan
    left = pd.DataFrame({"k": keys, "a": np.arange(n), "s": rng.integers(0, 9, n)})
    right = pd.DataFrame({"k": np.r_[[7.0, 7.0, np.nan], np.arange(0, 60_000, 3.0)], "b": np.arange(20_003)})
    if how in ("right", "outer"):  # the hot key's cartesian side stays small
        right = right.iloc[:20_003]
    with sk.merge(left, right, on="k", how=how, nulls_equal=nulls_equal, npartitions=2, memory_limit="1MiB",
                  progress=False) as joined:
        got = joined.to_pandas()
    if nulls_equal:
        expected = pd.merge(left, right, on="k", how=how)
    else:
        expected = sql_model(left, right, ["k"], ["k"], how, on="k")
    assert len(got) == len(expected)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    cols = list(expected.columns)
    pd.testing.assert_frame_equal(
        got.sort_values(cols).reset_index(drop=True), expected.sort_values(cols).reset_index(drop=True)
    )


@pytest.mark.parametrize("how", HOWS)
def test_a_hot_key_is_named_and_pairs_split_again_spill_under_tmp(tmp_path, monkeypatch, how):
    # the system's temporary directory must stay empty: every store goes under tmp
    elsewhere, mine = tmp_path / "elsewhere", tmp_path / "mine"
    elsewhere.mkdir(), mine.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    rng = np.random.default_rng(1)
    n = 120_000
    hot = rng.random(n) < 0.8
    left = pd.DataFrame({"k": np.where(hot, "hot", rng.integers(0, 5000, n).astype(str)), "g": 1,
                         "a": np.arange(n)})
    right = pd.DataFrame({"k": ["hot", "hot", "1", "2", "x"], "g": [1, 1, 1, 1, 2], "b": np.arange(5)})
    with sk.merge(left, right, on=["k", "g"], how=how, npartitions=3, memory_limit="1MiB", progress=False,
                  tmp=str(mine)) as joined:
        frames = []
        for frame in joined:  # (a pair split again holds its stores while its frames are read)
            assert os.listdir(elsewhere) == [] and os.listdir(mine) != []
            frames.append(frame)
        skew = joined.skew
    got = pd.concat(frames, ignore_index=True)
    assert_same_join(got, pd.merge(left, right, on=["k", "g"], how=how))
    assert [(h.columns, h.key, h.left_rows, h.right_rows) for h in skew] == [(("k", "g"), ("hot", 1), hot.sum(), 2)]
    assert skew[0].warning().startswith(f"skew: key k='hot', g=1 holds {hot.sum():,} left rows and 2 right rows")
    assert os.listdir(elsewhere) == []


def test_the_hot_key_of_the_larger_right_side_with_null_keys():
    left = pd.DataFrame({"k": [np.nan, 1.0, 2.0], "a": [1, 2, 3]})
    right = pd.DataFrame({"k": np.r_[np.full(100_000, np.nan), [1.0, 3.0]], "b": np.arange(100_002)})
    with sk.merge(left, right, on="k", how="outer", npartitions=2, memory_limit="1MiB", progress=False) as joined:
        assert_same_join(joined.to_pandas(), pd.merge(left, right, on="k", how="outer"))
        [hot] = joined.skew
    assert np.isnan(hot.key[0]) and (hot.left_rows, hot.right_rows) == (1, 100_000)
    assert hot.to_dict()["key"] == "(nan,)"


def hot_on_both_sides(seed: int, width: int, hot: tuple[int, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Key 7 on ``hot`` rows of each side (their cartesian product stays small), a few
    other keys on each side, some on both, and NaN keys; rows of ``width``-byte strings."""
    rng = np.random.default_rng(seed)
    frames = []
    for name, rows, others in (("a", hot[0], np.arange(0, 60.0)), ("b", hot[1], np.arange(30, 90.0))):
        keys = np.r_[np.full(rows, 7.0), others, [np.nan, np.nan]]
        order = rng.permutation(len(keys))
        frames.append(pd.DataFrame({
            "k": keys[order], name: np.arange(len(keys)),
            f"{name}_text": pd.Series([chr(97 + i % 26) * width for i in range(len(keys))], dtype=object),
        }))
    return frames[0], frames[1]


def text_bytes(frame: pd.DataFrame) -> int:
    return int(frame[["a_text", "b_text"]].fillna("").map(len).to_numpy().sum())


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("nulls_equal", [True, False])
def test_a_key_hot_on_both_sides_is_joined_block_by_block(how, nulls_equal):
    # a 1 MiB limit: a pair's share is 1 MiB, and a step of the block join a quarter of it;
    # key 7 holds 40 x 16 KiB rows on the left and 32 on the right (neither side's rows fit
    # a step with the other's: blocks of 8 rows of the smaller side)
    left, right = hot_on_both_sides(0, 2**14, (40, 32))
    with sk.merge(left, right, on="k", how=how, nulls_equal=nulls_equal, npartitions=2, memory_limit="1MiB",
                  progress=False) as joined:
        frames = list(joined)
        skew = joined.skew
    got = pd.concat(frames, ignore_index=True)
    if nulls_equal:
        expected = pd.merge(left, right, on="k", how=how)
    else:
        expected = sql_model(left, right, ["k"], ["k"], how, on="k")
    assert_same_join(got, expected)
    step = 2**18  # bytes of a step's join: no frame of the hot key's rows is larger
    assert max(text_bytes(f) for f in frames if (f["k"] == 7).any()) <= step
    assert [(h.key, h.left_rows, h.right_rows) for h in skew] == [((7.0,), 41, 32)]  # (7 is one of the others too)


def test_every_key_too_large_for_a_pair_is_named():
    # keys 7 and 8 hold 1.6 MB of rows each, above a pair's 1 MiB share
    n = 100_000
    left = pd.DataFrame({"k": np.r_[np.full(n, 7), np.full(n, 8), np.arange(10, 110)], "a": np.arange(2 * n + 100)})
    right = pd.DataFrame({"k": [7, 8, 8, 1], "b": [1, 2, 3, 4]})
    with sk.merge(left, right, on="k", how="left", npartitions=1, memory_limit="1MiB", progress=False) as joined:
        assert_same_join(joined.to_pandas(), pd.merge(left, right, on="k", how="left"))
        skew = joined.skew
    assert sorted((h.key, h.left_rows, h.right_rows) for h in skew) == [((7,), n, 1), ((8,), n, 2)]


def test_merge_errors():
    left = pd.DataFrame({"k": [1, 2], "a": [1, 2]})
    right = pd.DataFrame({"k": ["1", "2"], "kk": [1, 2], "b": [3, 4]})
    with pytest.raises(JobError, match=r"left key column 'k' \(int64\) with right key column 'k' \(str\)"):
        sk.merge(left, right, on="k", progress=False)
    with pytest.raises(JobError, match="how must be one of"):
        sk.merge(left, right, on="k", how="cross")
    with pytest.raises(JobError, match="not a combination"):
        sk.merge(left, right, on="k", left_on="k", right_on="kk")
    with pytest.raises(JobError, match="give both left_on and right_on"):
        sk.merge(left, right, left_on="k")
    with pytest.raises(JobError, match="left_on names 1 columns and right_on 2"):
        sk.merge(left, right, left_on="k", right_on=["k", "kk"])
    with pytest.raises(MissingColumnError, match="'kk' is not in the left input"):
        sk.merge(left, right, on="kk")
    with pytest.raises(JobError, match="share no column"):
        sk.merge(left, pd.DataFrame({"z": [1]}))
    with pytest.raises(JobError, match="give the key columns"):
        sk.merge(iter([left]), right)
    with pytest.raises(TypeError, match="suffixes must be a pair"):
        sk.merge(left, right, on="kk" if False else "a", suffixes="_x")
    with pytest.raises(JobError, match="merge: .*"):
        sk.merge(left.assign(b=1), right.assign(a=1), left_on="k", right_on="kk", suffixes=(None, None),
                 progress=False)


def test_merge_result_closes_its_stores():
    left = pd.DataFrame({"k": [1, 2], "a": [1, 2]})
    joined = sk.merge(left, left, on="k", npartitions=2, progress=False)
    assert "inner on ['k']" in repr(joined)
    joined.close()
    with pytest.raises(JobError, match="closed"):
        joined.to_pandas()


def shuffled(df: pd.DataFrame, on, n: int, path: str):
    """``sk.shuffle`` of ``df`` whole in memory (``frame``) or through its store (``store``)."""
    return sk.shuffle(df if path == "frame" else iter([df]), on, n, progress=False)


@given(sides(), st.sampled_from(HOWS), st.integers(1, 5), st.sampled_from(["left", "right", "both"]),
       st.sampled_from(["frame", "store"]))
@settings(deadline=None, max_examples=100)
def test_merge_reuses_sides_shuffled_on_the_join_keys(case, how, n, given_as, path):
    left, right, on = case
    expected = pandas_or_error(left, right, on=on, how=how)
    lparts = shuffled(left, on, n, path) if given_as in ("left", "both") else None
    rparts = shuffled(right, on, n, path) if given_as in ("right", "both") else None
    lin, rin = (left if lparts is None else lparts), (right if rparts is None else rparts)
    try:
        if expected is None:
            with pytest.raises(JobError, match="cannot join left key column"):
                sk.merge(lin, rin, on=on, how=how, progress=False)
            return
        with sk.merge(lin, rin, on=on, how=how, progress=False) as joined:
            assert joined.reused == (lparts is not None, rparts is not None)
            assert joined.npartitions == n
            got = joined.to_pandas()
        assert_same_join(got, expected)
        # the join did not close the user's results: they read as before
        for parts, df in ((lparts, left), (rparts, right)):
            if parts is not None:
                assert len(parts.to_pandas()) == len(df) and "closed" not in repr(parts)
    finally:
        for parts in (lparts, rparts):
            if parts is not None:
                parts.close()


@pytest.mark.parametrize("how", HOWS)
def test_merge_shuffles_again_what_is_not_co_partitioned(how):
    rng = np.random.default_rng(1)
    left = pd.DataFrame({"k": rng.integers(0, 40, 300), "j": rng.integers(0, 3, 300), "a": np.arange(300)})
    right = pd.DataFrame({"k": rng.integers(0, 50, 200), "j": rng.integers(0, 3, 200), "b": np.arange(200)})
    cases = [  # (left input, right input, merge's arguments, which sides are reused)
        (sk.shuffle(left, "k", 4, progress=False), sk.shuffle(right, "k", 3, progress=False), {}, (True, False)),
        (sk.shuffle(left, "k", 4, progress=False), right, {"npartitions": 5}, (False, False)),
        (sk.shuffle(left, "a", 4, progress=False), right, {}, (False, False)),
        (sk.shuffle(left, ["j", "k"], 4, progress=False), right, {"on": ["k", "j"]}, (False, False)),
        (left, sk.shuffle(right, "k", 4, partitioner="range", progress=False), {}, (False, False)),
        (left, sk.shuffle(right, "k", 4, partitioner="dask", progress=False), {}, (False, False)),
        (sk.shuffle(left, ["k", "j"], 4, progress=False), sk.shuffle(right, ["k", "j"], 4, progress=False),
         {"on": ["k", "j"]}, (True, True)),
    ]
    for lin, rin, kwargs, reused in cases:
        on = kwargs.pop("on", "k")
        with sk.merge(lin, rin, on=on, how=how, progress=False, **kwargs) as joined:
            assert joined.reused == reused
            assert ("reused" in repr(joined)) == any(reused)
            assert_same_join(joined.to_pandas(), pd.merge(left, right, on=on, how=how))
        for parts in (lin, rin):
            if not isinstance(parts, pd.DataFrame):
                parts.close()


@pytest.mark.parametrize("how", HOWS)
def test_skewed_pairs_of_a_reused_side_split_again(how):
    # as test_skewed_pairs_split_again_and_single_keys_joined_in_chunks, the left given shuffled
    rng = np.random.default_rng(0)
    n = 150_000
    keys = np.where(rng.random(n) < 0.45, 7, rng.integers(0, 40_000, n)).astype(float)
    left = pd.DataFrame({"k": keys, "a": np.arange(n)})
    right = pd.DataFrame({"k": np.r_[[7.0, 7.0], np.arange(0, 60_000, 3.0)], "b": np.arange(20_002)})
    with sk.shuffle(left, "k", 2, progress=False) as parts:
        with sk.merge(parts, right, on="k", how=how, memory_limit="1MiB", progress=False) as joined:
            assert joined.reused == (True, False)
            got = joined.to_pandas()
        assert sum(parts.sizes) == n and len(parts.partition(0)) == parts.sizes[0]
    expected = pd.merge(left, right, on="k", how=how)
    cols = list(expected.columns)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    pd.testing.assert_frame_equal(
        got.sort_values(cols).reset_index(drop=True), expected.sort_values(cols).reset_index(drop=True)
    )


RSS_SCRIPT = """
import json, sys, shuffle_kit
# the libraries loaded before the baseline: what importing them costs varies by machine and
# environment (tens of MB), the join's own memory is what is measured
import pandas, pyarrow.dataset, pyarrow.parquet
""" + WATCH_PEAK_RSS + """
joined = shuffle_kit.merge(sys.argv[1], sys.argv[2], on="key", how="left", memory_limit=int(sys.argv[3]),
                           chunk_bytes=int(sys.argv[4]), progress=False)
paths = joined.write_parquet(sys.argv[5])
stop_watching()
rows = sum(joined.sizes)
joined.close()
print(json.dumps({"base": base, "peak": peak[0], "rows": rows}))
"""


@pytest.mark.slow
def test_skewed_join_of_parquet_keeps_peak_rss_bounded(tmp_path):
    # a third of the left's rows share one key: its pair is split again, then joined piece
    # by piece against the right's rows of that key, within the limit plus the allowance
    import json
    import subprocess
    import sys

    import pyarrow.parquet as pq

    mb = 2**20
    limit, chunk = 32 * mb, 8 * mb
    rng = np.random.default_rng(0)
    n, m = 4_000_000, 200_000
    keys = np.where(rng.random(n) < 0.3, 7, rng.integers(0, 2 * m, n))
    left = pa.table({"key": keys, "x": rng.random(n), "y": rng.integers(0, 10**9, n)})
    right = pa.table({"key": np.arange(m), "w": rng.random(m)})
    assert left.nbytes > 2 * limit
    pq.write_table(left, tmp_path / "left.parquet", row_group_size=100_000)
    pq.write_table(right, tmp_path / "right.parquet", row_group_size=100_000)
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(tmp_path / "left.parquet"), str(tmp_path / "right.parquet"),
         str(limit), str(chunk), str(tmp_path / "out")],
        capture_output=True, text=True, check=True, timeout=600).stdout
    r = json.loads(out)
    assert r["rows"] == n
    assert pq.read_table(tmp_path / "out")["w"].null_count == int((keys >= m).sum())
    extra = r["peak"] - r["base"]
    print(f"input {left.nbytes / mb:.0f} MB: peak RSS above baseline {extra / mb:.0f} MB")
    assert extra < limit + 300 * mb, extra / mb


HOT_RSS_SCRIPT = """
import json, sys, shuffle_kit
import pandas, pyarrow.dataset, pyarrow.parquet
""" + WATCH_PEAK_RSS + """
rows = 0
with shuffle_kit.merge(sys.argv[1], sys.argv[2], on="key", how=sys.argv[4], memory_limit=int(sys.argv[3]),
                       progress=False, tmp=sys.argv[5]) as joined:
    for frame in joined:
        rows += len(frame)
        del frame
    skew = [(h.key, h.left_rows, h.right_rows) for h in joined.skew]
stop_watching()
print(json.dumps({"base": base, "peak": peak[0], "rows": rows, "skew": skew}))
"""


def test_a_key_hot_on_both_sides_beyond_the_limit_keeps_peak_rss_bounded(tmp_path):
    # key 7 holds 24 MB of rows on each side (16 rows of 1.5 MB), more than the whole 16 MiB
    # limit: reading either side's rows of it whole breaks the limit by far (the pieces of
    # the smaller side held whole, each joined with a piece of the larger one: ~270 MB
    # above the baseline); block by block, a step holds a row of each side and their join
    import pyarrow.parquet as pq

    from tests.helpers.memory import run_watched

    mb = 2**20
    limit, hot, width = 16 * mb, 16, 3 * mb // 2
    for name, others in (("left", np.arange(0, 2000)), ("right", np.arange(1000, 3000))):
        keys = np.r_[np.full(hot, 7), others + 10]
        text = pa.array([("ab"[i % 2]) * width if k == 7 else str(k) for i, k in enumerate(keys)], pa.large_string())
        pq.write_table(pa.table({"key": keys, f"{name}_text": text}), tmp_path / f"{name}.parquet", row_group_size=1)
    assert hot * width > limit
    r = run_watched(HOT_RSS_SCRIPT, tmp_path / "left.parquet", tmp_path / "right.parquet", limit, "outer", tmp_path)
    assert r["rows"] == hot * hot + 3000
    assert r["skew"] == [[[7], hot, hot]]
    extra = r["peak"] - r["base"]
    print(f"hot key of {hot * width / mb:.0f} MB a side, limit {limit / mb:.0f} MB: "
          f"peak RSS above baseline {extra / mb:.0f} MB")
    # the shuffle of both sides takes most of the allowance (its chunks, Arrow's pools)
    assert extra < limit + 96 * mb, extra / mb
