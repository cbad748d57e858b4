"""The record of how each file of the partition job was partitioned
(:mod:`shuffle_kit.io.provenance`): every Parquet and Arrow IPC file of hash partitions
names its partition, and its rows are exactly the rows whose keys ``shuffle()``'s hash puts
there; range files say range; files by value, CSV files and files of other writers carry
none, even from an input that carried one; the files still read back with the input's
types in pyarrow, polars and DuckDB."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit import Layout
from shuffle_kit.io.provenance import KEY, Provenance
from shuffle_kit.kernels.hashing import HASH_VERSION, partition_ids


def record_of(path: str) -> Provenance | None:
    if path.endswith(".arrow"):
        with pa.OSFile(path, "rb") as f:
            return Provenance.from_metadata(pa.ipc.open_file(f).schema.metadata)
    return Provenance.from_metadata(pq.read_metadata(path).metadata)


def read(path: str) -> pa.Table:
    if path.endswith(".arrow"):
        with pa.OSFile(path, "rb") as f:
            return pa.ipc.open_file(f).read_all()
    return pq.read_table(path)


def files(root) -> list[str]:
    return sorted(os.path.join(r, f) for r, _, names in os.walk(root) for f in names)


def table(seed: int, n: int = 400) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = np.array(["ant", "bee", "cat", "dog", None], dtype=object)
    return pa.table({
        "k": pa.array(rng.integers(0, 30, n)),
        "s": pa.array(words[rng.integers(0, 5, n)], pa.string()),
        "t": pa.array(pd.to_datetime(rng.integers(0, 10, n), unit="D"), pa.timestamp("us")),
        "x": pa.array(rng.random(n)),
    })


@given(st.sampled_from([["k"], ["s"], ["s", "k"], ["t", "s"]]), st.integers(1, 9),
       st.sampled_from(["parquet", "arrow"]), st.sampled_from([None, 50]), st.booleans())
@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_each_file_records_its_hash_partition_and_holds_its_rows(tmp_path_factory, on, n, fmt, max_rows,
                                                                 dictionary_pages):
    tmp = tmp_path_factory.mktemp("job")
    data = table(n)
    # dictionary pages: the job writes those columns as dictionaries, without Arrow's schema
    pq.write_table(data, tmp / "in.parquet", use_dictionary=dictionary_pages)
    sk.partition(str(tmp / "in.parquet"), on, str(tmp / "out"), npartitions=n, format=fmt, progress=False,
                 layout=Layout(max_rows_per_file=max_rows))
    rows = 0
    for path in files(tmp / "out"):
        record = record_of(path)
        assert record is not None and record.partitioner == "hash"
        assert (record.on, record.npartitions, record.hash_version, record.seed) == (tuple(on), n, HASH_VERSION, 0)
        assert os.path.basename(path).startswith(f"part-{record.partition:05d}")
        got = read(path)
        assert record.rows == (got.num_rows if fmt == "parquet" else None)  # (Arrow: its schema comes first)
        assert got.schema.equals(data.schema, check_metadata=False)  # the input's types
        # every row is in the partition the documented hash (shuffle()'s) gives its key
        assert set(partition_ids(got, on, n).tolist()) <= {record.partition}
        rows += got.num_rows
    assert rows == data.num_rows


def test_range_files_say_range_and_other_layouts_carry_no_record(tmp_path):
    pq.write_table(table(1), tmp_path / "in.parquet")
    src = str(tmp_path / "in.parquet")
    sk.partition(src, "k", str(tmp_path / "hash"), npartitions=4, progress=False)
    # inputs that carry records (the hash output): none is copied into the new files
    for name, kwargs in [("range", dict(by_range=True, npartitions=3)), ("value", dict(by_value=True)),
                         ("csv", dict(format="csv", npartitions=4)), ("again", dict(npartitions=2))]:
        sk.partition(str(tmp_path / "hash"), "k", str(tmp_path / name), progress=False, **kwargs)
    assert {record_of(p).partitioner for p in files(tmp_path / "range")} == {"range"}
    assert {record_of(p).npartitions for p in files(tmp_path / "again")} == {2}
    assert all(KEY not in (pq.read_metadata(p).metadata or {}) for p in files(tmp_path / "value"))
    assert all(p.endswith(".csv") for p in files(tmp_path / "csv"))
    joined = sk.join(str(tmp_path / "hash"), str(tmp_path / "hash"), "k", str(tmp_path / "joined"), progress=False)
    assert joined.ok and all(KEY not in (pq.read_metadata(p).metadata or {}) for p in files(tmp_path / "joined"))


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_recorded_files_read_back_in_polars_and_pyarrow_datasets(tmp_path, fmt):
    import polars as pl  # (a test dependency)
    import pyarrow.dataset as ds

    data = table(2)
    pq.write_table(data, tmp_path / "in.parquet")
    sk.partition(str(tmp_path / "in.parquet"), ["s", "k"], str(tmp_path / "out"), npartitions=3, format=fmt,
                 progress=False)
    pattern = str(tmp_path / "out" / f"*.{fmt}")
    frame = pl.read_parquet(pattern) if fmt == "parquet" else pl.read_ipc(pattern)
    assert frame.height == data.num_rows and frame.schema["t"] == pl.Datetime("us")
    read = ds.dataset(str(tmp_path / "out"), format="parquet" if fmt == "parquet" else "ipc").to_table()
    assert (read.num_rows, pa.compute.sum(read["k"]).as_py()) == (data.num_rows, pa.compute.sum(data["k"]).as_py())
