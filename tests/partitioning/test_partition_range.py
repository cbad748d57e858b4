"""``partition(..., by_range=True)`` (``--by-range``) against the pandas model: the files read
back in name order, each stable-sorted by the key (unless the job sorted them), equal
pandas' ``sort_values(kind="stable")``; every key is in exactly one file; the files' key
ranges are disjoint and increasing, also in their Parquet statistics; the files are the same
bytes for any thread count; and what cannot keep the order is refused in one line."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.io.readers import open_source
from shuffle_kit.partitioning.job import JobError
from shuffle_kit.partitioning.layout import Layout
from tests.helpers.cli import assert_one_line_error, cli

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TZ = "Europe/Paris"

# per key dtype: the pool keys are drawn from (None: a null), and the pandas dtype
POOLS = {
    "int": ([3, -1, 0, 7, 2**40, None], "Int64"),
    "float": ([0.5, -2.0, 0.0, 1e9, float("nan")], "float64"),
    "str": (["b", "", "a", "é", "ab", "B", None], "object"),
    "ts": ([pd.Timestamp("2024-03-31 01:30", tz=TZ), pd.Timestamp("2020-01-01", tz=TZ),
            pd.Timestamp("2024-03-31 03:30", tz=TZ), None], f"datetime64[ns, {TZ}]"),
}


def frame(kinds: list[str], rows: int, seed: int, skew: bool = False) -> pd.DataFrame:
    """Key columns ``k0, k1, ...`` of ``kinds``, values drawn from their pools (``skew``:
    most rows take the first value), and a ``row`` column (the input order)."""
    rng = np.random.default_rng(seed)
    cols = {}
    for i, kind in enumerate(kinds):
        pool, dtype = POOLS[kind]
        picks = rng.integers(0, len(pool), rows)
        if skew:
            picks[rng.random(rows) < 0.8] = 0
        cols[f"k{i}"] = pd.Series([pool[j] for j in picks], dtype=dtype)
    cols["row"] = pd.Series(np.arange(rows), dtype="int64")
    return pd.DataFrame(cols)


def read_files(out: Path) -> list[tuple[str, pd.DataFrame]]:
    """(range partition: ``part-NNNNN``, rows) of every file, in name order."""
    return [(f.name[:10], pq.read_table(f).to_pandas()) for f in sorted(out.iterdir()) if f.name.startswith("part-")]


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Values as Python objects, every kind of missing value as None (a string column may read
    back as pandas' string dtype, whose missing value is NaN)."""
    return df.astype(object).where(df.notna(), None).reset_index(drop=True)


def check_against_pandas(df: pd.DataFrame, out: Path, on: list[str], job_sorted: bool, descending: tuple[str, ...] = (),
                         na_position: str = "last") -> list[pd.DataFrame]:
    """The model: files in name order (each stable-sorted by the key unless the job sorted
    them) are pandas' stable sort (ascending but ``descending``, NAs at ``na_position``);
    each key in exactly one range partition (one file, or with ``max_rows_per_file`` one
    series of files)."""
    files = read_files(out)
    names = [name for name, _ in files]
    how = {"ascending": [c not in descending for c in on], "kind": "stable", "na_position": na_position}
    parts = [p if job_sorted else p.sort_values(on, **how) for _, p in files]
    got = pd.concat(parts, ignore_index=True) if parts else df.iloc[:0]
    expected = df.sort_values(on, **how).reset_index(drop=True)
    pd.testing.assert_frame_equal(_plain(got[list(df.columns)]), _plain(expected))
    if parts:
        tagged = pd.concat([p.assign(_file=name) for name, p in zip(names, parts)], ignore_index=True)
        files_per_key = tagged.groupby(on, dropna=False)["_file"].nunique()
        assert (files_per_key == 1).all(), files_per_key[files_per_key > 1]
    return parts


@SETTINGS
@given(
    kinds=st.lists(st.sampled_from(sorted(POOLS)), min_size=1, max_size=2),
    rows=st.integers(0, 300),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    skew=st.booleans(),
    job_sorted=st.booleans(),
    from_files=st.booleans(),
    descending=st.sampled_from([(), ("k0",), ("k1",), ("k0", "k1")]),
    na_position=st.sampled_from(["last", "first"]),
)
def test_files_in_name_order_are_pandas_stable_sort(tmp_path_factory, kinds, rows, n, seed, skew, job_sorted,
                                                    from_files, descending, na_position):
    d = tmp_path_factory.mktemp("r")
    df = frame(kinds, rows, seed, skew)
    on = [f"k{i}" for i in range(len(kinds))]
    if from_files:  # two files, so the key pass reads more than one
        df.iloc[: rows // 2].to_parquet(d / "a.parquet")
        df.iloc[rows // 2:].to_parquet(d / "b.parquet")
        data: object = [str(d / "a.parquet"), str(d / "b.parquet")]
    else:
        data = df
    layout = Layout(sort_by=tuple(on)) if job_sorted else None
    descending = tuple(c for c in descending if c in on)
    s = sk.partition(data, on, str(d / "out"), npartitions=n, by_range=True, progress=False, layout=layout,
                     descending=descending, na_position=na_position)
    assert s.rows_in == s.rows_out == rows
    check_against_pandas(df, d / "out", on, job_sorted, descending, na_position)


def _stats(path: Path, column: str) -> tuple[object, object, int]:
    """(min, max, nulls) of ``column`` over the row groups of a Parquet file, from its footer."""
    meta = pq.read_metadata(path)
    j = meta.schema.to_arrow_schema().get_field_index(column)
    stats = [meta.row_group(i).column(j).statistics for i in range(meta.num_row_groups)]
    valued = [s for s in stats if s.has_min_max]
    return (min(s.min for s in valued) if valued else None, max(s.max for s in valued) if valued else None,
            sum(s.null_count for s in stats))


def big_input(d: Path, rows: int = 60_000, files: int = 3) -> pa.Table:
    rng = np.random.default_rng(5)
    t = pa.table({
        "k": pa.array(rng.integers(0, 5_000, rows), mask=rng.random(rows) < 0.02),
        "s": pa.array([f"w{i % 97}" for i in range(rows)]),
        "x": rng.random(rows),
        "row": np.arange(rows),
    })
    for i in range(files):
        pq.write_table(t.slice(i * rows // files, rows // files), d / f"in{i}.parquet", row_group_size=7_000)
    return t


def test_parquet_statistics_are_disjoint_and_increasing_and_the_dataset_is_sorted(tmp_path):
    t = big_input(tmp_path)
    s = sk.partition(str(tmp_path / "in*.parquet"), "k", str(tmp_path / "out"), npartitions=8, by_range=True,
                     progress=False, layout=Layout(sort_by="k", max_rows_per_file=3_000, row_group_size=1_000))
    assert s.rows_out == t.num_rows
    names = sorted(f for f in os.listdir(tmp_path / "out") if f.startswith("part-"))
    stats = [_stats(tmp_path / "out" / f, "k") for f in names]
    # across range partitions (not within one partition's series of files) the ranges are disjoint
    per_part: dict[str, tuple[object, object]] = {}
    for name, (lo, hi, _) in zip(names, stats):
        if lo is not None:
            a, b = per_part.get(name[:10], (lo, hi))
            per_part[name[:10]] = (min(a, lo), max(b, hi))
    ranges = [per_part[p] for p in sorted(per_part)]
    assert all(hi < lo for (_, hi), (lo, _) in zip(ranges, ranges[1:])), ranges
    # nulls last: only the files after every valued key hold them
    first_null = next(i for i, (_, _, nulls) in enumerate(stats) if nulls)
    assert all(lo is None or i < first_null or nulls for i, (lo, _, nulls) in enumerate(stats))
    # globally sorted: the files read in name order are pandas' stable sort
    for name in names:
        meta = pq.read_metadata(tmp_path / "out" / name)
        assert meta.num_rows <= 3_000 and all(meta.row_group(i).num_rows <= 1_000 for i in range(meta.num_row_groups))
    check_against_pandas(t.to_pandas(), tmp_path / "out", ["k"], job_sorted=True)


@pytest.mark.parametrize("memory", ["1GB", "1MiB"])
def test_descending_with_nulls_first_statistics_are_disjoint_and_decreasing(tmp_path, memory):
    t = big_input(tmp_path)
    sk.partition(str(tmp_path / "in*.parquet"), "k", str(tmp_path / "out"), npartitions=8, by_range=True,
                 progress=False, memory_limit=memory, descending="k", na_position="first",
                 layout=Layout(sort_by="k", row_group_size=1_000))
    names = sorted(f for f in os.listdir(tmp_path / "out") if f.startswith("part-"))
    stats = [_stats(tmp_path / "out" / f, "k") for f in names]
    # nulls first: the first file holds every null (and, here, no other key than the nulls' share)
    assert stats[0][2] == pc.sum(t["k"].is_null()).as_py() and all(nulls == 0 for _, _, nulls in stats[1:])
    ranges = [(lo, hi) for lo, hi, _ in stats if lo is not None]
    assert len(ranges) >= 7 and all(lo > hi for (lo, _), (_, hi) in zip(ranges, ranges[1:])), ranges
    check_against_pandas(t.to_pandas(), tmp_path / "out", ["k"], True, ("k",), "first")


def test_a_descending_string_key_then_an_ascending_one(tmp_path):
    df = frame(["str", "float"], 3_000, seed=9)
    df.to_parquet(tmp_path / "in.parquet", row_group_size=500)
    sk.partition(str(tmp_path / "in.parquet"), ["k0", "k1"], str(tmp_path / "out"), npartitions=4, by_range=True,
                 progress=False, descending=["k0"], layout=Layout(sort_by=("k0", "k1")))
    check_against_pandas(df, tmp_path / "out", ["k0", "k1"], True, ("k0",))
    firsts = [p["k0"].dropna() for _, p in read_files(tmp_path / "out")]
    assert [f.iloc[0] for f in firsts if len(f)] == sorted({f.iloc[0] for f in firsts if len(f)}, reverse=True)


@pytest.mark.parametrize("memory", ["1GB", "1MiB"])
def test_the_same_bytes_for_1_2_and_5_threads(tmp_path, memory, caplog):
    big_input(tmp_path, rows=40_000)
    outputs = []
    for threads in (1, 2, 5):
        out = tmp_path / f"out{threads}"
        with caplog.at_level(logging.INFO, logger="shuffle_kit"):
            sk.partition(str(tmp_path / "in*.parquet"), "k", str(out), npartitions=6, by_range=True, progress=False,
                         threads=threads, memory_limit=memory, layout=Layout(row_group_size=2_000))
        outputs.append({f: (out / f).read_bytes() for f in sorted(os.listdir(out))})
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0]) == 6
    # the small limit takes sorted runs and spills; the large one keeps every file open
    assert ("spilling run" in caplog.text) == (memory == "1MiB")


def test_a_small_memory_limit_spills_sorted_runs_and_keeps_the_order(tmp_path, caplog):
    df = frame(["str", "int"], 30_000, seed=3, skew=True)
    df["pad"] = "x" * 40  # more than half the 1 MiB budget: runs are written and merged
    df.to_parquet(tmp_path / "in.parquet", row_group_size=4_000)
    with caplog.at_level(logging.INFO, logger="shuffle_kit"):
        sk.partition(str(tmp_path / "in.parquet"), ["k0", "k1"], str(tmp_path / "out"), npartitions=5,
                     by_range=True, progress=False, memory_limit="1MiB", threads=2,
                     layout=Layout(sort_by=("k0", "k1")))
    assert "spilling run" in caplog.text
    check_against_pandas(df, tmp_path / "out", ["k0", "k1"], job_sorted=True)


def test_a_skewed_key_fills_one_file_and_the_rest_spread(tmp_path):
    rng = np.random.default_rng(1)
    keys = np.where(rng.random(20_000) < 0.7, 500, rng.integers(0, 1_000, 20_000))
    df = pd.DataFrame({"k": keys, "row": np.arange(20_000)})
    sk.partition(df, "k", str(tmp_path / "out"), npartitions=8, by_range=True, progress=False)
    parts = check_against_pandas(df, tmp_path / "out", ["k"], job_sorted=False)
    heavy = [p for p in parts if (p["k"] == 500).any()]
    assert len(heavy) == 1 and (heavy[0]["k"] == 500).sum() == (keys == 500).sum()
    assert len(parts) >= 6  # the other keys still spread over the other files


def test_the_key_pass_reads_only_the_key_columns(tmp_path):
    t = pa.table({"k": [2, 1], "v": ["a", "b"], "w": [1.0, 2.0]})
    (tmp_path / "part=x").mkdir()
    pq.write_table(t, tmp_path / "part=x" / "a.parquet")
    for columns in (["k"], ["part", "k"]):  # a file's column, and a hive directory's
        src = open_source(str(tmp_path), columns=columns)
        chunks = list(src.chunks())
        assert src.schema.names == columns and all(c.column_names == columns for c in chunks)
        assert sum(c.num_rows for c in chunks) == 2


def test_arrow_and_csv_inputs_and_the_boundaries_at_debug(tmp_path, caplog):
    import pyarrow.csv as pacsv
    import pyarrow.feather as feather

    t = pa.table({"k": [5, 1, 4, 2, 3, 3], "v": list("abcdef")})
    pacsv.write_csv(t, tmp_path / "a.csv")
    feather.write_feather(t, tmp_path / "b.arrow")
    for name in ("a.csv", "b.arrow"):
        with caplog.at_level(logging.DEBUG, logger="shuffle_kit"):
            sk.partition(str(tmp_path / name), "k", str(tmp_path / f"out-{name}"), npartitions=3, by_range=True,
                         progress=False)
        check_against_pandas(t.to_pandas(), tmp_path / f"out-{name}", ["k"], job_sorted=False)
    assert "range boundaries (the last key of each partition but the last): [(2,), (3,)]" in caplog.text


@pytest.mark.parametrize("data", [
    lambda t: pa.RecordBatchReader.from_batches(t.schema, t.to_batches()),
    lambda t: iter([t]),
])
def test_an_input_read_only_once_is_refused(tmp_path, data):
    t = pa.table({"k": [1, 2]})
    with pytest.raises(JobError, match="--by-range reads the input twice.*can be read only once"):
        sk.partition(data(t), "k", str(tmp_path / "out"), by_range=True, progress=False)
    assert not (tmp_path / "out").exists()


def test_arrow_tables_and_polars_frames_are_read_twice(tmp_path):
    pl = pytest.importorskip("polars")
    df = frame(["str"], 500, seed=2)
    for name, data in [("arrow", pa.Table.from_pandas(df, preserve_index=False)), ("polars", pl.from_pandas(df))]:
        sk.partition(data, "k0", str(tmp_path / name), npartitions=4, by_range=True, progress=False)
        check_against_pandas(df, tmp_path / name, ["k0"], job_sorted=False)


def test_refusals_are_one_line(tmp_path):
    pq.write_table(pa.table({"k": [1, 2], "l": pa.array([[1], [2]])}), tmp_path / "in.parquet")
    src = tmp_path / "in.parquet"
    with pytest.raises(JobError, match="--by-range and --by-value exclude each other"):
        sk.partition(str(src), "k", str(tmp_path / "o1"), by_range=True, by_value=True, progress=False)
    with pytest.raises(JobError, match="cannot --exists append.*overlap the old files'"):
        sk.partition(str(src), "k", str(tmp_path / "o2"), by_range=True, exists="append", progress=False)
    with pytest.raises(JobError, match="'l'.*no order"):
        sk.partition(str(src), "l", str(tmp_path / "o3"), by_range=True, progress=False)
    with pytest.raises(JobError, match="--descending names 'x', which the job does not order by"):
        sk.partition(str(src), "k", str(tmp_path / "o4"), by_range=True, descending="x", progress=False)
    with pytest.raises(JobError, match="--na-position must be last or first, not 'middle'"):
        sk.partition(str(src), "k", str(tmp_path / "o5"), by_range=True, na_position="middle", progress=False)
    with pytest.raises(JobError, match="--descending orders the key ranges of --by-range and the rows of --sort-by"):
        sk.partition(str(src), "k", str(tmp_path / "o6"), npartitions=2, descending="k", progress=False)
    assert not any((tmp_path / o).exists() for o in ("o1", "o2", "o3", "o4", "o5", "o6"))


def test_command_line(tmp_path):
    t = pa.table({"ts": pa.array([dt.datetime(2024, 1, d) for d in (5, 1, 3, 2, 4, 1)], pa.timestamp("us", "UTC")),
                  "v": list("abcdef")})
    pq.write_table(t, tmp_path / "in.parquet")
    r = cli("partition", tmp_path / "in.parquet", "--on", "ts", "--out", tmp_path / "out", "--by-range",
            "--npartitions", "3", "--sort-by", "ts", "--threads", "2", "--json")
    assert r.returncode == 0, r.stderr
    check_against_pandas(t.to_pandas(), tmp_path / "out", ["ts"], job_sorted=True)
    r = cli("partition", tmp_path / "in.parquet", "--on", "ts", "--out", tmp_path / "down", "--by-range",
            "--npartitions", "3", "--sort-by", "ts", "--descending", "ts", "--na-position", "first")
    assert r.returncode == 0, r.stderr
    check_against_pandas(t.to_pandas(), tmp_path / "down", ["ts"], True, ("ts",), "first")
    for args, words in [
        (["--by-range", "--by-value"], ["--by-range and --by-value exclude each other"]),
        (["--by-range", "--exists", "append"], ["--by-range cannot --exists append", "overlap"]),
        (["--by-range", "--descending", "v"], ["--descending names 'v'", "--sort-by columns or key columns (--on)"]),
        (["--na-position", "first"], ["--na-position orders the key ranges of --by-range"]),
    ]:
        r = cli("partition", tmp_path / "in.parquet", "--on", "ts", "--out", tmp_path / "o", *args)
        assert_one_line_error(r, *words)


def test_categorical_keys_are_ordered_by_value_as_sort_by_and_the_statistics_order_them(tmp_path):
    words = ["pear", "apple", "fig", "kiwi", "date", "lime"]
    df = pd.DataFrame({"k": pd.Categorical(np.resize(words, 600), categories=words[::-1], ordered=True),
                       "row": np.arange(600)})
    df.to_parquet(tmp_path / "in.parquet")
    sk.partition(str(tmp_path / "in.parquet"), "k", str(tmp_path / "out"), npartitions=3, by_range=True,
                 progress=False, layout=Layout(sort_by="k"))
    names = sorted(os.listdir(tmp_path / "out"))
    ranges = [_stats(tmp_path / "out" / n, "k")[:2] for n in names]
    assert len(ranges) == 3 and all(hi < lo for (_, hi), (lo, _) in zip(ranges, ranges[1:])), ranges
    got = pd.concat([pd.read_parquet(tmp_path / "out" / n) for n in names])["k"].astype(str).tolist()
    assert got == sorted(df["k"].astype(str))
