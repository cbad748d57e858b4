"""The join job (``shuffle_kit.join``): files in, a file per partition pair out, read back
equal to pandas' ``merge`` of the inputs up to row order."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shuffle_kit
from shuffle_kit import JobError, Layout
from shuffle_kit.partitioning import engine
from shuffle_kit.partitioning.join_job import join

HOWS = ["inner", "left", "right", "outer"]


def write(path, df: pd.DataFrame, nfiles: int = 2) -> str:
    """``df`` as ``nfiles`` Parquet files in directory ``path``; the directory."""
    os.makedirs(path, exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(len(df)), nfiles)):
        df.iloc[rows].to_parquet(os.path.join(path, f"f{i}.parquet"), index=False)
    return str(path)


def sorted_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns), na_position="last", kind="stable").reset_index(drop=True)


def assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal up to row order: rows, values, column names and dtypes."""
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(sorted_frame(got), sorted_frame(expected))


def model(left: str, right: str, **kwargs) -> pd.DataFrame:
    """pandas' merge of the inputs as pandas reads them."""
    return pd.merge(pd.read_parquet(left), pd.read_parquet(right), **kwargs)


def keys(kind: str, values: list, nulls: list[bool]) -> pd.Series:
    if kind == "int64":
        return pd.Series(values, dtype="int64")
    if kind == "Int64":
        return pd.Series([None if n else v for v, n in zip(values, nulls)], dtype="Int64")
    if kind == "float64":
        return pd.Series([np.nan if n else v / 2 for v, n in zip(values, nulls)], dtype="float64")
    return pd.Series([None if n else f"k{v}" for v, n in zip(values, nulls)], dtype="str")


@st.composite
def sides(draw):
    kind = draw(st.sampled_from(["int64", "Int64", "float64", "str"]))
    frames = []
    for name in ("a", "b"):
        n = draw(st.integers(0, 40))
        values = draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))  # duplicates on both sides
        nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        frames.append(pd.DataFrame({
            "k": keys(kind, values, nulls),
            name: np.arange(n, dtype="int64"),
            "v": pd.Series([f"{name}{i}" for i in range(n)], dtype="str"),  # in both: suffixed
        }))
    return frames


@given(frames=sides(), how=st.sampled_from(HOWS), npartitions=st.integers(1, 5))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_read_back_equals_pandas_merge(tmp_path_factory, frames, how, npartitions):
    d = tmp_path_factory.mktemp("j")
    left, right = write(d / "l", frames[0]), write(d / "r", frames[1])
    s = join(left, right, "k", str(d / "out"), how=how, npartitions=npartitions, progress=False, threads=2)
    expected = model(left, right, on="k", how=how)
    assert s.ok and s.rows_out == len(expected) and s.partitions == npartitions
    got = pd.read_parquet(d / "out") if os.listdir(d / "out") else expected.iloc[:0]
    assert_same_rows(got, expected)


@pytest.mark.parametrize("how", HOWS)
def test_sql_nulls_match_nothing(tmp_path, how):
    left = write(tmp_path / "l", pd.DataFrame({"k": [1.0, np.nan, 2.0, np.nan], "a": [1, 2, 3, 4]}))
    right = write(tmp_path / "r", pd.DataFrame({"k": [np.nan, 2.0, 5.0], "b": [5, 6, 7]}))
    join(left, right, "k", str(tmp_path / "out"), how=how, nulls_equal=False, npartitions=3, progress=False)
    lf, rf = pd.read_parquet(left), pd.read_parquet(right)
    # SQL's rule: null keys join nothing; a kept side's rows with null keys come out unmatched
    expected = pd.merge(lf.dropna(), rf.dropna(), on="k", how=how)
    extra = []
    if how in ("left", "outer"):
        extra.append(pd.merge(lf[lf.k.isna()], rf.iloc[:0], on="k", how="left"))
    if how in ("right", "outer"):
        extra.append(pd.merge(lf.iloc[:0], rf[rf.k.isna()], on="k", how="right"))
    expected = pd.concat([expected, *extra], ignore_index=True).astype(expected.dtypes.to_dict() | {
        c: "float64" for c in ("a", "b") if how != "inner"})
    got = pd.read_parquet(tmp_path / "out")
    assert_same_rows(got.astype(expected.dtypes.to_dict()), expected)


def test_left_on_right_on_multi_column_keys_and_suffixes(tmp_path):
    rng = np.random.default_rng(1)
    lf = pd.DataFrame({"a": rng.integers(0, 5, 500), "b": rng.choice(["x", "y"], 500), "v": rng.random(500)})
    rf = pd.DataFrame({"c": rng.integers(0, 5, 60), "d": rng.choice(["x", "y", "z"], 60), "v": rng.random(60)})
    left, right = write(tmp_path / "l", lf), write(tmp_path / "r", rf)
    s = join(left, right, out=str(tmp_path / "out"), left_on=["a", "b"], right_on=["c", "d"], how="outer",
             suffixes=("_left", "_right"), npartitions=4, progress=False)
    expected = model(left, right, left_on=["a", "b"], right_on=["c", "d"], how="outer", suffixes=("_left", "_right"))
    assert s.rows_out == len(expected)
    assert_same_rows(pd.read_parquet(tmp_path / "out"), expected)


def test_the_keys_default_to_the_columns_both_sides_have(tmp_path):
    left = write(tmp_path / "l", pd.DataFrame({"k": [1, 2, 3], "a": [1, 2, 3]}))
    right = write(tmp_path / "r", pd.DataFrame({"b": [7, 8], "k": [3, 1]}))
    join(left, right, out=str(tmp_path / "out"), npartitions=2, progress=False)
    assert_same_rows(pd.read_parquet(tmp_path / "out"), model(left, right))


def test_data_in_memory_on_either_side(tmp_path):
    lf = pd.DataFrame({"k": np.arange(100) % 7, "a": np.arange(100)})
    rf = pa.table({"k": np.arange(7), "b": [str(i) for i in range(7)]})
    s = join(lf, rf, "k", str(tmp_path / "out"), how="left", npartitions=3, progress=False)
    assert s.ok and s.source == "DataFrame and Arrow Table" and (s.left_rows, s.right_rows) == (100, 7)
    assert_same_rows(pd.read_parquet(tmp_path / "out"), pd.merge(lf, rf.to_pandas(), on="k", how="left"))


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_a_file_per_pair_with_rows_and_every_pair_with_empty_files(tmp_path, fmt):
    # keys that never meet: an inner join without rows
    left = write(tmp_path / "l", pd.DataFrame({"k": np.arange(50), "a": np.arange(50)}))
    right = write(tmp_path / "r", pd.DataFrame({"k": np.arange(50) + 100, "b": np.arange(50)}))
    s = join(left, right, "k", str(tmp_path / "none"), npartitions=8, format=fmt, progress=False)
    assert s.ok and s.rows_out == 0 and s.files == 0 and os.listdir(tmp_path / "none") == []
    s = join(left, right, "k", str(tmp_path / "all"), npartitions=8, format=fmt, progress=False,
             layout=Layout(empty_files=True))
    ext = {"parquet": ".parquet", "arrow": ".arrow", "csv": ".csv"}[fmt]
    assert sorted(os.listdir(tmp_path / "all")) == [engine.part_name(i, fmt) for i in range(8)]
    assert s.files == 8 and all(f.endswith(ext) for f in os.listdir(tmp_path / "all"))
    if fmt != "csv":  # every file has the columns, typed
        t = pq.read_table(tmp_path / "all") if fmt == "parquet" else pa.ipc.open_file(
            tmp_path / "all" / "part-00000.arrow").read_all()
        assert t.column_names == ["k", "a", "b"] and t.num_rows == 0


@pytest.mark.parametrize("how", ["inner", "left"])
def test_the_files_are_the_same_for_1_2_and_5_threads(tmp_path, how):
    rng = np.random.default_rng(2)
    n = 60_000
    left = write(tmp_path / "l", pd.DataFrame({"k": rng.integers(0, 3000, n), "x": rng.random(n),
                                               "s": rng.choice(["a", "bb", None], n)}), nfiles=3)
    right = write(tmp_path / "r", pd.DataFrame({"k": rng.integers(0, 4000, 5000), "y": rng.integers(0, 9, 5000)}))
    contents = []
    for threads in (1, 2, 5):
        out = tmp_path / f"out{threads}"
        join(left, right, "k", str(out), how=how, npartitions=6, threads=threads, memory_limit="8MB", progress=False)
        contents.append({f: (out / f).read_bytes() for f in sorted(os.listdir(out))})
    assert contents[0] == contents[1] == contents[2]
    assert len(contents[0]) == 6


def test_a_hot_key_larger_than_memory_is_split_named_and_still_equals_pandas(tmp_path, monkeypatch):
    # one key with 300k rows on the left: far more than a pair's share of 8MB, joined in chunks
    rng = np.random.default_rng(3)
    n = 300_000
    # (strings on both sides: staged as dictionaries, read back as values in the pieces)
    lf = pd.DataFrame({"k": np.where(rng.random(n) < 0.9, 7, rng.integers(0, 1000, n)), "x": rng.random(n),
                       "s": pd.Series(rng.choice(["ab", "cd", None], n), dtype="str")})
    rf = pd.DataFrame({"k": np.arange(1000), "y": rng.random(1000), "t": [f"t{i % 9}" for i in range(1000)]})
    left, right = write(tmp_path / "l", lf, nfiles=4), write(tmp_path / "r", rf)
    # nothing goes to the system's temporary directory, pairs split again included: all under
    # tmp (a temporary directory that is a file makes anything written there fail)
    (tmp_path / "not-a-directory").write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "not-a-directory"))
    mine = tmp_path / "mine"
    mine.mkdir()
    s = join(left, right, "k", str(tmp_path / "out"), how="left", npartitions=4, memory_limit="8MB",
             progress=False, tmp=str(mine))
    assert s.ok and s.rows_out == n
    assert_same_rows(pd.read_parquet(tmp_path / "out"), model(left, right, on="k", how="left"))
    hot = (lf["k"] == 7).sum()
    assert [(h.columns, h.key, h.left_rows, h.right_rows) for h in s.hot_keys] == [(("k",), (7,), hot, 1)]
    assert f"skew: key k=7 holds {hot:,} left rows and 1 right row" in s.warnings()[-1]
    assert s.to_dict()["hot_keys"][0]["key"] == [7] and "hot key     k=7" in str(s)
    assert "k=7" in s._repr_html_()
    assert os.listdir(mine) == []


def test_max_rows_per_file_gives_a_series_per_pair(tmp_path):
    left = write(tmp_path / "l", pd.DataFrame({"k": np.arange(1000) % 10, "a": np.arange(1000)}))
    right = write(tmp_path / "r", pd.DataFrame({"k": np.arange(10), "b": np.arange(10)}))
    s = join(left, right, "k", str(tmp_path / "out"), npartitions=2, layout=Layout(max_rows_per_file=300),
             progress=False)
    names = sorted(os.listdir(tmp_path / "out"))
    assert all(pq.read_metadata(tmp_path / "out" / f).num_rows <= 300 for f in names)
    assert {f.split("-")[1] for f in names} <= {"00000", "00001"} and len(names) == s.files
    assert_same_rows(pd.read_parquet(tmp_path / "out"), model(left, right, on="k"))


def test_exists_error_overwrite_and_append(tmp_path):
    left = write(tmp_path / "l", pd.DataFrame({"k": [1, 2, 3], "a": [1, 2, 3]}))
    right = write(tmp_path / "r", pd.DataFrame({"k": [1, 2], "b": [5.0, 6.0]}))
    out = str(tmp_path / "out")
    join(left, right, "k", out, npartitions=2, progress=False)
    first = sorted(os.listdir(out))
    with pytest.raises(JobError, match="--out .* is not empty"):
        join(left, right, "k", out, npartitions=2, progress=False)
    assert sorted(os.listdir(out)) == first
    join(left, right, "k", out, npartitions=2, progress=False, exists="overwrite")
    assert sorted(os.listdir(out)) == first
    join(left, right, "k", out, npartitions=2, progress=False, exists="append")
    names = sorted(os.listdir(out))
    assert len(names) == 2 * len(first) and set(first) < set(names)
    assert len(pd.read_parquet(out)) == 4
    # other columns than the files there: refused, nothing added
    other = write(tmp_path / "o", pd.DataFrame({"k": [1], "c": ["x"]}))
    with pytest.raises(JobError, match="--exists append: column"):
        join(left, other, "k", out, npartitions=2, progress=False, exists="append")
    assert sorted(os.listdir(out)) == names
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


@pytest.mark.parametrize("call, words", [
    (dict(on="nope"), ["nope", "f0.parquet"]),
    (dict(on="k", left_on="k", right_on="k"), ["--on", "--left-on"]),
    (dict(left_on=["k", "a"], right_on=["k"]), ["--left-on", "2", "--right-on"]),
    (dict(on="k", how="cross"), ["--how", "cross"]),
    (dict(on="k", format="orc"), ["--format"]),
    (dict(on="k", layout=Layout(sort_by=("k",))), ["--sort-by"]),
])
def test_bad_arguments_are_one_line_naming_them(tmp_path, call, words):
    left = write(tmp_path / "l", pd.DataFrame({"k": [1, 2], "a": [1, 2]}))
    right = write(tmp_path / "r", pd.DataFrame({"k": [1, 2], "b": [1, 2]}))
    with pytest.raises(JobError) as e:
        join(left, right, out=str(tmp_path / "out"), progress=False, **call)
    assert len(str(e.value).splitlines()) == 1
    for w in words:
        assert w in str(e.value)
    assert not os.path.exists(tmp_path / "out")


def test_keys_pandas_would_not_join_are_refused_naming_both(tmp_path):
    left = write(tmp_path / "l", pd.DataFrame({"k": [1, 2], "a": [1, 2]}))
    right = write(tmp_path / "r", pd.DataFrame({"id": ["1", "2"], "b": [1, 2]}))
    with pytest.raises(JobError, match="left key column 'k' .*right key column 'id'"):
        join(left, right, out=str(tmp_path / "out"), left_on="k", right_on="id", progress=False)
    assert sorted(os.listdir(tmp_path)) == ["l", "r"]


@pytest.mark.parametrize("right_keys", [np.arange(1000), np.arange(1000) // 2], ids=["distinct", "repeated"])
def test_a_failure_mid_join_leaves_nothing(tmp_path, monkeypatch, right_keys):
    """A write failing mid-job (staging a side or writing a pair) leaves nothing: no output,
    no staging, nothing under tmp."""
    from shuffle_kit.partitioning import writers

    left = write(tmp_path / "l", pd.DataFrame({"k": np.arange(1000), "a": np.arange(1000)}))
    right = write(tmp_path / "r", pd.DataFrame({"k": right_keys, "b": np.arange(1000)}))
    spill = tmp_path / "spill"
    spill.mkdir()
    calls = []

    def fail_third(self, table):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(5, "disk gone")
        return real(self, table)

    real = writers.Writer.write
    monkeypatch.setattr(writers.Writer, "write", fail_third)
    with pytest.raises(OSError, match="disk gone"):
        join(left, right, "k", str(tmp_path / "out"), npartitions=8, tmp=str(spill), progress=False)
    assert sorted(os.listdir(tmp_path)) == ["l", "r", "spill"] and os.listdir(spill) == []


def test_the_top_level_name_is_the_job():
    assert shuffle_kit.join is join


@pytest.mark.parametrize("how", HOWS)
def test_inputs_the_partition_job_hashed_on_the_keys_are_joined_as_they_are(tmp_path, caplog, how):
    rng = np.random.default_rng(4)
    lf = pd.DataFrame({"k": rng.integers(0, 30, 300), "a": np.arange(300)})
    rf = pd.DataFrame({"key": pd.array(np.where(np.arange(90) % 9 == 0, None, rng.integers(0, 40, 90)), "Int64"),
                       "b": np.arange(90)})
    lraw, rraw = write(tmp_path / "l", lf), write(tmp_path / "r", rf)
    for name, src, on, n in (("L", lraw, "k", 4), ("R", rraw, "key", 4), ("R3", rraw, "key", 3)):
        shuffle_kit.partition(src, on, str(tmp_path / name), npartitions=n, progress=False)
    cases = [  # (left, right, npartitions, the sides joined as they are)
        ("L", "r", None, ["left"]), ("L", "R", None, ["left", "right"]), ("L", "R3", None, ["left"]),
        ("L", "R3", 3, ["right"]), ("L", "R", 5, []),
    ]
    for i, (left, right, n, taken) in enumerate(cases):
        caplog.clear()
        with caplog.at_level("INFO", logger="shuffle_kit.partitioning.join_job"):
            s = join(str(tmp_path / left), str(tmp_path / right), out=str(tmp_path / f"out{i}"), left_on="k",
                     right_on="key", how=how, npartitions=n, progress=False)
        said = [side for side in ("left", "right") if f"the {side} input is hash-partitioned" in caplog.text]
        assert said == taken, (left, right, n)
        assert s.ok and s.partitions == (n or 4) and (s.left_rows, s.right_rows) == (300, 90)
        expected = pd.merge(lf, rf, left_on="k", right_on="key", how=how)
        assert_same_rows(pd.read_parquet(tmp_path / f"out{i}"), expected)


