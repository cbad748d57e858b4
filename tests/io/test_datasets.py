"""Inputs are datasets: hive directories (ours and pyarrow's) keep their partition columns,
CSV delimiters, schema checks that name the file, fsspec filesystems, and URLs that nothing
can open."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuffle_kit import partition, shuffle
from shuffle_kit.io.readers import ReadOptions, open_source
from shuffle_kit.partitioning.job import JobError
from tests.helpers.cli import assert_one_line_error, cli


def rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    """The rows of ``table`` as a sorted list (a multiset), in the given column order."""
    d = table.select(columns).to_pydict()
    return sorted(zip(*(d[c] for c in columns)), key=repr)


def read_back(out) -> pa.Table:
    return ds.dataset(str(out), format="parquet", partitioning="hive").to_table()


KEYS = st.one_of(
    st.integers(-5, 5),
    st.sampled_from(["DE", "a b", "x/y", "ü", "50%", "a=b"]),
)


@settings(max_examples=15)
@given(keys=st.lists(st.one_of(KEYS, st.none()), min_size=1, max_size=40), data=st.data())
def test_our_by_value_output_read_back_keeps_its_key_column(tmp_path_factory, keys, data):
    kinds = {type(k) for k in keys if k is not None}
    if len(kinds) > 1:  # one type per column
        keys = [k if k is None or isinstance(k, str) else str(k) for k in keys]
    d = tmp_path_factory.mktemp("hive")
    table = pa.table({"k": keys, "row": list(range(len(keys)))})
    pq.write_table(table, d / "in.parquet")
    partition(str(d / "in.parquet"), "k", str(d / "byvalue"), by_value=True, progress=False)
    n = data.draw(st.integers(1, 4))
    partition(str(d / "byvalue"), "row", str(d / "again"), npartitions=n, progress=False)
    again = pq.read_table(d / "again")  # plain files: the key is a column inside them
    assert "k" in again.column_names
    expected = [(None if k is None else str(k), r) for k, r in zip(keys, range(len(keys)))]
    got = [(None if k is None else str(k), r) for k, r in zip(again["k"].to_pylist(), again["row"].to_pylist())]
    assert sorted(got, key=repr) == sorted(expected, key=repr)


def test_a_pyarrow_hive_dataset_round_trips_with_every_column(tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    table = pa.table({
        "country": rng.choice(["DE", "FR", "a b"], n),
        "year": rng.integers(2020, 2024, n),
        "x": rng.random(n),
        "row": np.arange(n),
    })
    ds.write_dataset(table, tmp_path / "src", format="parquet", partitioning=["country", "year"],
                     partitioning_flavor="hive")
    expected = ds.dataset(tmp_path / "src", format="parquet", partitioning="hive").to_table()
    assert expected.schema.field("year").type == pa.int32()  # as pyarrow infers it
    summary = partition(str(tmp_path / "src"), "row", str(tmp_path / "out"), npartitions=3, progress=False)
    assert summary.rows_in == summary.rows_out == n
    out = pq.read_table(tmp_path / "out")
    assert out.schema.field("year").type == pa.int32() and out.schema.field("country").type == pa.string()
    cols = ["country", "year", "x", "row"]
    assert rows(out, cols) == rows(expected, cols)
    # and the same through shuffle(): partitions concatenate to the dataset
    got = pd.concat(list(shuffle(str(tmp_path / "src"), "row", 4))).sort_values("row").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[cols], expected.to_pandas().sort_values("row").reset_index(drop=True)[cols])


def test_partitioning_none_leaves_directory_names_alone(tmp_path):
    os.makedirs(tmp_path / "src" / "k=1")
    pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / "src" / "k=1" / "p.parquet")
    assert open_source(str(tmp_path / "src")).schema.names == ["x", "k"]
    assert open_source(str(tmp_path / "src"), read=ReadOptions(partitioning="none")).schema.names == ["x"]
    r = cli("partition", tmp_path / "src", "--on", "x", "--out", tmp_path / "out", "--partitioning", "none")
    assert r.returncode == 0, r.stderr
    assert pq.read_table(tmp_path / "out").column_names == ["x"]


def test_a_file_that_holds_a_partition_column_keeps_its_values(tmp_path):
    # (what --keep-keys style outputs look like: the column is in the file and the path)
    os.makedirs(tmp_path / "src" / "k=1")
    pq.write_table(pa.table({"k": [7, 7], "x": [1.0, 2.0]}), tmp_path / "src" / "k=1" / "p.parquet")
    t = pa.concat_tables(open_source(str(tmp_path / "src")).chunks())
    assert t["k"].to_pylist() == [7, 7]


def test_the_key_may_be_a_partition_column_and_travels_as_a_dictionary(tmp_path):
    for country in ["DE", "FR"]:
        os.makedirs(tmp_path / "src" / f"country={country}")
        pq.write_table(pa.table({"x": [1.0, 2.0, 3.0]}), tmp_path / "src" / f"country={country}" / "p.parquet")
    source = open_source(str(tmp_path / "src"), dictionary_except=["x"])
    assert source.dictionary == ["country"] and source.schema.field("country").type == pa.string()
    chunk = next(iter(source.chunks()))
    assert pa.types.is_dictionary(chunk.schema.field("country").type)
    partition(str(tmp_path / "src"), "country", str(tmp_path / "out"), by_value=True, progress=False)
    assert sorted(os.listdir(tmp_path / "out")) == ["country=DE", "country=FR"]


def test_partition_columns_of_different_types_are_named(tmp_path):
    os.makedirs(tmp_path / "a" / "k=1")
    os.makedirs(tmp_path / "b" / "k=x")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "a" / "k=1" / "p.parquet")
    pq.write_table(pa.table({"x": [2]}), tmp_path / "b" / "k=x" / "p.parquet")
    with pytest.raises(JobError, match=r"partition column 'k' is int32 in '.*a' but string in '.*b'"):
        partition([str(tmp_path / "a"), str(tmp_path / "b")], "x", str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists()


def test_a_file_that_does_not_fit_the_others_is_named(tmp_path):
    pq.write_table(pa.table({"k": [1], "x": [1.0]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"k": [2], "x": ["one"]}), tmp_path / "b.parquet")
    r = cli("partition", tmp_path / "a.parquet", tmp_path / "b.parquet", "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "b.parquet", "'x'", "string", "double", "a.parquet")


@pytest.mark.parametrize("delimiter,arg", [(";", ";"), ("\t", "\\t"), ("|", "|")])
def test_csv_delimiter(tmp_path, delimiter, arg):
    df = pd.DataFrame({"k": [1, 2, 3, 1], "s": ["a,b", "c", "d", "e"]})
    (tmp_path / "in.csv").write_text(df.to_csv(index=False, sep=delimiter))
    r = cli("partition", tmp_path / "in.csv", "--on", "k", "--out", tmp_path / "out", "--csv-delimiter", arg)
    assert r.returncode == 0, r.stderr
    got = pq.read_table(tmp_path / "out").to_pandas().sort_values(["k", "s"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, df.sort_values(["k", "s"]).reset_index(drop=True))
    r = cli("partition", tmp_path / "in.csv", "--on", "k", "--out", tmp_path / "o2", "--csv-delimiter", ";;")
    assert r.returncode == 2 and "one character" in r.stderr


def test_hidden_and_underscore_entries_are_skipped(tmp_path):
    src = tmp_path / "src"
    os.makedirs(src / "_temporary" / "0")
    os.makedirs(src / ".hidden")
    pq.write_table(pa.table({"k": [1]}), src / "part-0.parquet")
    pq.write_table(pa.table({"k": [2]}), src / "_temporary" / "0" / "part-0.parquet")
    pq.write_table(pa.table({"k": [3]}), src / ".hidden" / "part-0.parquet")
    (src / "_SUCCESS").write_bytes(b"")
    assert pa.concat_tables(open_source(str(src)).chunks())["k"].to_pylist() == [1]


def test_an_fsspec_filesystem_is_read(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    table = pa.table({"k": [1, 2, 3, 1], "x": [0.5, 1.5, 2.5, 3.5]})
    with memory.open("/sk-test/in/k2=a/p.parquet", "wb") as f:
        pq.write_table(table, f)
    try:
        partition("memory://sk-test/in", "k", str(tmp_path / "out"), npartitions=2, progress=False)
        got = pq.read_table(tmp_path / "out")
        assert rows(got, ["k", "x", "k2"]) == rows(table.append_column("k2", pa.array(["a"] * 4)), ["k", "x", "k2"])
    finally:
        memory.rm("/sk-test", recursive=True)


def test_a_url_nothing_can_open_is_an_error_not_a_folder(tmp_path):
    pq.write_table(pa.table({"k": [1]}), tmp_path / "in.parquet")
    here = {"cwd": tmp_path, "env": {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}}
    r = cli("partition", tmp_path / "in.parquet", "--on", "k", "--out", "nosuch://bucket/out", **here)
    assert_one_line_error(r, "--out", "nosuch://bucket/out", "no filesystem")
    r = cli("partition", "nosuch://bucket/in.parquet", "--on", "k", "--out", tmp_path / "out", **here)
    assert_one_line_error(r, "nosuch://bucket/in.parquet", "no filesystem")
    assert sorted(os.listdir(tmp_path)) == ["in.parquet"]


def test_globs_match_as_the_shell_does(tmp_path):
    for rel in ["a.parquet", "sub/b.parquet", "sub/deep/c.parquet", ".hidden.parquet", ".h/d.parquet"]:
        os.makedirs((tmp_path / rel).parent, exist_ok=True)
        pq.write_table(pa.table({"k": [1]}), tmp_path / rel)

    def names(pattern):
        return sorted(os.path.relpath(f.location.path, tmp_path) for f in open_source(str(tmp_path / pattern)).files)

    assert names("*.parquet") == ["a.parquet"]
    assert names("**/*.parquet") == ["a.parquet", "sub/b.parquet", "sub/deep/c.parquet"]
    assert names("sub/*/*.parquet") == ["sub/deep/c.parquet"]
    assert names(".*.parquet") == [".hidden.parquet"]


def test_shuffle_takes_the_read_options_partition_takes(tmp_path):
    os.makedirs(tmp_path / "src" / "k=1")
    pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / "src" / "k=1" / "p.parquet")
    with shuffle(str(tmp_path / "src"), "x", 2, progress=False) as parts:
        assert list(pd.concat(list(parts)).columns) == ["x", "k"]
    with shuffle(str(tmp_path / "src"), "x", 2, progress=False, read=ReadOptions(partitioning="none")) as parts:
        assert list(pd.concat(list(parts)).columns) == ["x"]
    (tmp_path / "semi.csv").write_text("a;b\n1;x\n2;y\n")
    with shuffle(str(tmp_path / "semi.csv"), "a", 2, progress=False, read=ReadOptions(csv_delimiter=";")) as parts:
        assert sorted(pd.concat(list(parts))["b"]) == ["x", "y"]
