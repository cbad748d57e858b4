"""``shuffle_kit.partition()``, the job behind ``shuffle-kit partition``, as a Python call:
the same files for any thread count, its summary, and one-line errors."""

from __future__ import annotations

import os
import statistics
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.kernels.hashing import partition_ids
from shuffle_kit.partitioning.job import JobError


def _inputs(directory, rows: int = 40_000, files: int = 3) -> pa.Table:
    rng = np.random.default_rng(1)
    words = pa.array([f"w{i}" for i in range(300)])
    table = pa.table({
        "k": rng.integers(0, 5000, rows),
        "s": words.take(pa.array(rng.integers(0, len(words), rows))),
        "x": rng.random(rows),
        "row": np.arange(rows),
    })
    os.makedirs(directory)
    bounds = np.linspace(0, rows, files + 1).astype(int)
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        pq.write_table(table.slice(a, b - a), os.path.join(directory, f"in-{i}.parquet"), row_group_size=4000)
    return table


# 1GB: every file stays open; 2MiB: sorted runs merged into whole files
@pytest.mark.parametrize("limit", ["1GB", "2MiB"])
@pytest.mark.parametrize("n", [7, 300])
def test_files_are_identical_for_1_2_and_5_threads_and_match_the_model(tmp_path, limit, n):
    table = _inputs(tmp_path / "in")
    outputs = []
    for threads in (1, 2, 5):
        out = tmp_path / f"out{threads}"
        s = sk.partition(str(tmp_path / "in"), "k", str(out), npartitions=n, memory_limit=limit, threads=threads,
                         progress=False)
        assert s.ok and s.rows_out == table.num_rows and s.files == n
        outputs.append({f: (out / f).read_bytes() for f in sorted(os.listdir(out))})
    assert outputs[0] == outputs[1] == outputs[2]
    ids = partition_ids(table, ["k"], n)
    for p in range(n):
        got = pq.read_table(tmp_path / "out1" / f"part-{p:05d}.parquet")
        assert got.equals(table.filter(pa.array(ids == p)))  # its rows, in input order, input types


@pytest.mark.parametrize("n", [2, 300], ids=["files of more rows than words", "files of fewer rows than words"])
def test_string_columns_have_the_statistics_of_their_rows_and_a_dictionary_page(tmp_path, n):
    # the input's strings come as dictionaries; a file with fewer rows than the job's
    # dictionary has values is written from the values instead: either way the same file
    table = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    sk.partition(str(tmp_path / "in"), "k", str(out), npartitions=n, memory_limit="2MiB", progress=False)
    for name in sorted(os.listdir(out)):
        f = pq.ParquetFile(out / name)
        assert f.schema_arrow == table.schema
        rows = f.read()
        for i in range(f.metadata.num_row_groups):
            column = f.metadata.row_group(i).column(1)
            low, high = pc.min_max(f.read_row_group(i).column("s")).values()
            assert (column.statistics.min, column.statistics.max) == (low.as_py(), high.as_py())
            assert "RLE_DICTIONARY" in column.encodings and column.statistics.null_count == 0
        assert rows.num_rows < 300 if n == 300 else rows.num_rows > 300  # the case is what it says


@pytest.mark.parametrize("limit", ["1GB", "2MiB"])
def test_strings_nearly_all_distinct_are_stored_as_values_and_the_files_are_the_same_for_any_thread_count(
    tmp_path, limit
):
    # the writer would build a dictionary of such a column for every row group and give it
    # up; the column of few values keeps its dictionary; either way the statistics are right
    rng = np.random.default_rng(3)
    rows = 60_000
    table = pa.table({
        "k": rng.integers(0, 5000, rows),
        "id": pa.array([f"user-{v:016x}" for v in rng.integers(0, 2**62, rows)]),
        "w": pa.array([f"w{v}" for v in rng.integers(0, 50, rows)]),
    })
    os.makedirs(tmp_path / "in")
    pq.write_table(table, tmp_path / "in" / "in.parquet")  # (its writer gives up the dictionary of "id")
    outputs = []
    for threads in (1, 2, 5):
        out = tmp_path / f"out{threads}"
        sk.partition(str(tmp_path / "in"), "k", str(out), npartitions=5, memory_limit=limit, threads=threads,
                     progress=False)
        outputs.append({f: (out / f).read_bytes() for f in sorted(os.listdir(out))})
    assert outputs[0] == outputs[1] == outputs[2]
    assert_rows_and_statistics(tmp_path / "out1", table, 5, plain="id")


def assert_rows_and_statistics(out, table: pa.Table, n: int, plain: str) -> None:
    """Each of the ``n`` files holds its partition's rows of ``table`` in input order, with
    its input types; every row group has true min/max statistics of the string columns
    ``plain`` and ``w``, and a dictionary page for ``w`` only."""
    ids = partition_ids(table, ["k"], n)
    for p in range(n):
        f = pq.ParquetFile(out / f"part-{p:05d}.parquet")
        assert f.read().equals(table.filter(pa.array(ids == p)))
        for i in range(f.metadata.num_row_groups):
            group = f.read_row_group(i)
            for name in (plain, "w"):
                column = f.metadata.row_group(i).column(table.schema.get_field_index(name))
                low, high = pc.min_max(group.column(name)).values()
                assert (column.statistics.min, column.statistics.max) == (low.as_py(), high.as_py())
                assert column.has_dictionary_page == (name == "w")


def test_strings_mostly_distinct_are_stored_as_values(tmp_path):
    # three of four values distinct among the first rows: a row group's dictionary would
    # hold most of its values, so the column is written as values; a column of few values
    # keeps its dictionary
    rng = np.random.default_rng(4)
    rows = 60_000
    table = pa.table({
        "k": rng.integers(0, 5000, rows),
        "m": pa.array([f"m{v}" for v in rng.integers(0, 100_000, rows)]),
        "w": pa.array([f"w{v}" for v in rng.integers(0, 50, rows)]),
    })
    os.makedirs(tmp_path / "in")
    # "m" stored as values, as a writer that gave up its dictionary would: read as strings
    pq.write_table(table, tmp_path / "in" / "in.parquet", use_dictionary=["w"])
    sk.partition(str(tmp_path / "in"), "k", str(tmp_path / "out"), npartitions=3, progress=False)
    assert_rows_and_statistics(tmp_path / "out", table, 3, plain="m")


def test_summary_has_the_figures_and_an_html_repr(tmp_path):
    _inputs(tmp_path / "in", rows=1000, files=1)
    s = sk.partition([str(tmp_path / "in")], ["k"], str(tmp_path / "out"), npartitions=4, progress=False)
    assert (s.rows_in, s.rows_out, s.partitions, s.inputs) == (1000, 1000, 4, 1)
    assert s.bytes_out == sum(os.path.getsize(tmp_path / "out" / f) for f in os.listdir(tmp_path / "out"))
    assert s.peak_rss > 0 and s.seconds > 0
    page = s._repr_html_()
    assert "<table>" in page and "1,000" in page and str(tmp_path / "out") in page


@pytest.mark.parametrize("kwargs, words", [
    ({"threads": 0}, "threads"),
    ({"memory_limit": "lots"}, "memory_limit"),
    ({"memory_limit": "100kB"}, "memory_limit: '100kB' is below the smallest memory limit, 1 MiB"),
    ({"format": "xls"}, "--format"),
])
def test_bad_arguments_are_one_clear_line_and_write_nothing(tmp_path, kwargs, words):
    _inputs(tmp_path / "in", rows=100, files=1)
    with pytest.raises(JobError, match=words) as e:
        sk.partition(str(tmp_path / "in"), "k", str(tmp_path / "out"), progress=False, **kwargs)
    assert "\n" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == ["in"]


@pytest.mark.parametrize("limit", ["1GB", "2MiB"])
def test_files_by_value_are_identical_for_1_2_and_5_threads_and_match_the_model(tmp_path, limit):
    import pyarrow.dataset as ds

    table = _inputs(tmp_path / "in", rows=30_000)
    table = table.set_column(0, "k", pc.modulo(table.column("k"), 40))  # 40 values
    os.makedirs(tmp_path / "in2")
    pq.write_table(table, tmp_path / "in2" / "all.parquet", row_group_size=3000)
    outputs = []
    for threads in (1, 2, 5):
        out = tmp_path / f"out{threads}"
        s = sk.partition(str(tmp_path / "in2"), "k", str(out), by_value=True, memory_limit=limit, threads=threads,
                         progress=False)
        assert s.ok and s.partitions == 40
        outputs.append({os.path.relpath(os.path.join(r, f), out): open(os.path.join(r, f), "rb").read()
                        for r, _, fs in os.walk(out) for f in fs})
    assert outputs[0] == outputs[1] == outputs[2]
    for value in range(40):
        files = sorted((tmp_path / "out1" / f"k={value}").iterdir())
        got = pa.concat_tables([pq.read_table(f) for f in files])
        want = table.filter(pc.equal(table.column("k"), value)).drop_columns(["k"])
        assert got.equals(want)  # that value's rows, in input order, without the key
    back = ds.dataset(tmp_path / "out1", partitioning="hive").to_table()
    assert back.num_rows == table.num_rows


def test_arrows_thread_pool_is_sized_for_the_job_and_restored(tmp_path, monkeypatch):
    from shuffle_kit.partitioning import engine

    _inputs(tmp_path / "in", rows=2000, files=1)
    before = pa.cpu_count()
    seen = []
    real = engine.partition_ids
    monkeypatch.setattr(engine, "partition_ids", lambda *a: (seen.append(pa.cpu_count()), real(*a))[1])
    sk.partition(str(tmp_path / "in"), "k", str(tmp_path / "out"), npartitions=3, threads=1, progress=False)
    assert seen and set(seen) == {1}
    assert pa.cpu_count() == before


# -- rows per file, to see skew ---------------------------------------------------------------


def _skewed_keys(draw_keys: list[int], heavy: int) -> np.ndarray:
    return np.array(draw_keys + [7] * heavy, dtype=np.int64)


@settings(max_examples=25, deadline=None)
@given(
    keys=st.lists(st.integers(0, 30), max_size=300),
    heavy=st.sampled_from([0, 5, 2000]),  # rows of one key: none, a few, most
    n=st.integers(1, 9),
    limit=st.sampled_from(["1GB", "2MiB"]),
    empty_files=st.booleans(),
)
def test_summary_sizes_are_the_rows_of_the_files_written(keys, heavy, n, limit, empty_files):
    k = _skewed_keys(keys, heavy)
    table = pa.table({"k": k, "row": np.arange(len(k))})
    model = np.bincount(partition_ids(table, ["k"], n), minlength=n).tolist()  # the hash, as the model
    # a file for each partition with rows; for every partition with empty_files
    names = [f"part-{p:05d}.parquet" if model[p] or empty_files else None for p in range(n)]
    with tempfile.TemporaryDirectory() as d:
        pq.write_table(table, f"{d}/in.parquet")
        s = sk.partition(f"{d}/in.parquet", "k", f"{d}/out", npartitions=n, memory_limit=limit, progress=False,
                         layout=sk.Layout(empty_files=empty_files))
        assert sorted(os.listdir(f"{d}/out")) == sorted(name for name in names if name)
        read_back = [pq.read_table(f"{d}/out/{name}").num_rows if name else 0 for name in names]
    assert read_back == model == s.sizes.rows.tolist()
    assert (s.partitions, s.files) == (n, sum(1 for name in names if name))
    assert list(s.sizes.paths) == names  # an empty partition without a file has no path
    lo, mid, hi = min(model), statistics.median(model), max(model)
    mid_text = f"{int(mid):,}" if float(mid).is_integer() else f"{mid:,.1f}"
    assert f"min {lo:,}, median {mid_text}, max {hi:,}" in s._repr_html_()
    assert f"min {lo:,}, median {mid_text}, max {hi:,}" in "\n".join(s.lines())
    assert bool(s.warnings()) == (hi > 10 * max(mid, 1))
    if s.warnings():
        p = model.index(hi)
        assert f"part-{p:05d}.parquet (partition {p}) holds {hi:,} rows" in s.warnings()[0]


@settings(max_examples=15, deadline=None)
@given(keys=st.lists(st.sampled_from(["a", "b", "<i>", None, "x/y"]), min_size=1, max_size=200),
       heavy=st.sampled_from([0, 3000]))
def test_by_value_sizes_are_the_rows_of_each_value(keys, heavy):
    values = keys + ["b"] * heavy
    table = pa.table({"k": pa.array(values, pa.string()), "row": np.arange(len(values))})
    with tempfile.TemporaryDirectory() as d:
        pq.write_table(table, f"{d}/in.parquet")
        s = sk.partition(f"{d}/in.parquet", "k", f"{d}/out", by_value=True, progress=False)
        read_back = {rel: sum(pq.read_table(os.path.join(d, "out", rel, f)).num_rows
                              for f in os.listdir(os.path.join(d, "out", rel)))
                     for rel in os.listdir(f"{d}/out")}
    model = pd.Series(values, dtype=object).groupby(pd.Series(values, dtype=object), dropna=False).size()
    by_key = {key[0]: rows for key, rows in zip(s.sizes.keys, s.sizes.rows.tolist())}
    assert by_key == {(None if pd.isna(v) else v): int(c) for v, c in model.items()}
    assert dict(zip(s.sizes.paths, s.sizes.rows.tolist())) == read_back
    assert list(s.sizes.paths) == sorted(read_back)  # the same order for any thread count
    page = s._repr_html_()
    assert s.sizes.describe() in page and "<i>" not in page
    big = s.sizes.largest(1)[0]
    assert big.rows == max(read_back.values()) and f"(largest: {big.path})" in s.lines()[-1]


@settings(max_examples=15)
@given(
    keys=st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=0, max_size=60),
    by_value=st.booleans(),
)
def test_a_pandas_frame_is_partitioned_like_its_arrow_table(keys, by_value):
    df = pd.DataFrame({"k": pd.array(keys, dtype="Int64"), "s": [f"v{i % 7}" for i in range(len(keys))]},
                      index=pd.Index(range(100, 100 + len(keys)), name="row"))
    with tempfile.TemporaryDirectory() as d:
        how = {"by_value": True} if by_value else {"npartitions": 3}
        s = sk.partition(df, "k", f"{d}/frame", progress=False, **how)
        sk.partition(pa.Table.from_pandas(df.reset_index(), preserve_index=False), "k", f"{d}/table",
                     progress=False, **how)
        assert s.rows_in == s.rows_out == len(df)
        for root, _, files in os.walk(f"{d}/table"):
            for f in files:  # the same files, byte for byte, as from the Arrow table
                other = os.path.join(f"{d}/frame", os.path.relpath(os.path.join(root, f), f"{d}/table"))
                assert open(os.path.join(root, f), "rb").read() == open(other, "rb").read()
        rows = [r for root, _, files in os.walk(f"{d}/frame") for f in files
                for r in pq.read_table(os.path.join(root, f), columns=["row"])["row"].to_pylist()]
        assert sorted(rows) == list(df.index)


@pytest.mark.parametrize("limit", ["1GB", "2MiB"], ids=["open files", "sorted runs"])
@pytest.mark.parametrize("max_rows", [None, 40])
def test_empty_partitions_write_no_file_unless_asked_also_when_appending(tmp_path, limit, max_rows):
    # more partitions than keys: most partitions get no row (as 4,096 partitions of 1,000 keys)
    rng = np.random.default_rng(3)
    table = pa.table({"k": rng.integers(0, 30, 2000), "s": rng.choice(["a", "b"], 2000), "row": np.arange(2000)})
    pq.write_table(table, tmp_path / "in.parquet")
    n = 256
    model = np.bincount(partition_ids(table, ["k"], n), minlength=n)
    full = set(np.flatnonzero(model).tolist())
    assert 0 < len(full) < n

    def partitions_with_files(out) -> list[int]:
        return sorted({int(name.split("-")[1][:5]) for name in os.listdir(out)})

    for empty_files in (False, True):
        out = tmp_path / f"out-{empty_files}"
        layout = sk.Layout(max_rows_per_file=max_rows, empty_files=empty_files)
        files_before = 0
        for exists in ("error", "append"):  # a new output, then the same rows appended to it
            s = sk.partition(str(tmp_path / "in.parquet"), "k", str(out), npartitions=n, memory_limit=limit,
                             exists=exists, layout=layout, progress=False)
            names = os.listdir(out)
            assert s.ok and s.partitions == n and s.files == len(names) - files_before
            assert s.sizes.rows.tolist() == model.tolist()  # every partition counted, the empty ones as 0
            assert partitions_with_files(out) == (list(range(n)) if empty_files else sorted(full))
            if max_rows is None:  # one file per partition (with rows, or each, with empty_files)
                assert s.files == (n if empty_files else len(full))
            files_before = len(names)
        for name in names:  # every file reads back with the input's columns
            assert pq.read_schema(out / name).equals(table.schema, check_metadata=False)
        back = pq.read_table(out)
        assert back.num_rows == 2 * table.num_rows
        assert sorted(back.column("row").to_pylist()) == sorted(table.column("row").to_pylist() * 2)


def test_empty_files_is_refused_for_files_by_value(tmp_path):
    _inputs(tmp_path / "in", rows=100, files=1)
    with pytest.raises(JobError, match="--empty-files is for hash partitions"):
        sk.partition(str(tmp_path / "in"), "k", str(tmp_path / "out"), by_value=True, progress=False,
                     layout=sk.Layout(empty_files=True))
    with pytest.raises(JobError, match="--empty-files must be True or False"):
        sk.partition(str(tmp_path / "in"), "k", str(tmp_path / "out"), progress=False,
                     layout=sk.Layout(empty_files="yes"))  # type: ignore[arg-type]
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_a_summary_prints_as_the_command_line_does_and_its_repr_is_one_short_line(tmp_path, capsys):
    _inputs(tmp_path / "in", rows=2000, files=1)
    s = sk.partition(str(tmp_path / "in"), "k", str(tmp_path / "out"), npartitions=4096, progress=False)
    print(s)
    printed = capsys.readouterr().out
    assert printed == "\n".join(s.lines()) + "\n"  # what `shuffle-kit partition` prints
    assert f"partitions  4,096 ({s.files:,} files" in printed and "rows out    2,000\n" in printed
    text = repr(s)  # one line, whatever the number of files: not the sizes of every partition
    assert "\n" not in text and len(text) < 150 + len(str(tmp_path)), text
    assert text.startswith(f"Summary(out={str(tmp_path / 'out')!r}, ok=True, rows_in=2_000, rows_out=2_000, ")
    assert f"partitions=4_096, files={s.files:_}" in text
