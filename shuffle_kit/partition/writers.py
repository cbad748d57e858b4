"""Output files of the partition job: one writer per file (Parquet, Arrow IPC or CSV), and a
pool that keeps a bounded number of them open.

Every table written is first conformed to the output schema, so inputs whose types differ
slightly (or whose string columns were read dictionary-encoded) all land as that schema.
Parquet files can also take string columns as Arrow dictionaries
(:func:`parquet_dictionary_schema`): their indices go into the file's dictionary pages as
they are, instead of every string being decoded and hashed again.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa

FORMATS = {"parquet": ".parquet", "csv": ".csv", "arrow": ".arrow"}
COMPRESSIONS = ("lz4", "zstd", "none")
ROW_GROUP_ROWS = 1 << 20
MAX_OPEN_FILES = 64
# values handed to the Parquet encoder at a time: its statistics of dictionary columns cost
# a hash table per call, so fewer, larger calls are cheaper (pages still end near 1 MiB)
WRITE_BATCH_ROWS = 1 << 16


class Writer:
    """One output file of a given format, written table by table.

    ``encode``: more columns to store with a dictionary in Parquet, whatever their type
    (partition keys whose input had one: a hash partition holds a fraction of their values).
    ``store_schema=False`` leaves Arrow's schema out of a Parquet file's metadata, for
    schemas from :func:`parquet_dictionary_schema`, whose files read back without it.
    """

    def __init__(self, path: str, schema: pa.Schema, fmt: str, compression: str, encode: Sequence[str] = (),
                 store_schema: bool = True):
        self.path = path
        self.rows = 0
        codec = None if compression == "none" else compression
        if fmt == "parquet":
            import pyarrow.parquet as pq

            # dictionary pages pay off for strings; for numbers that are all distinct they
            # cost ~30% of the write time, are abandoned anyway, and the file grows
            encoded = [f.name for f in schema if stringlike(f.type) or f.name in encode]
            # an open file, not a path: pyarrow would look the path up as a file system URI
            # for every file, which costs more than writing a small one
            self._sink = pa.OSFile(path, "wb")
            self._w = pq.ParquetWriter(
                self._sink, schema, compression=codec or "none", use_dictionary=encoded,
                write_batch_size=WRITE_BATCH_ROWS, store_schema=store_schema,
            )
        elif fmt == "arrow":
            ipc_codec = None if codec is None else {"lz4": "lz4_frame"}.get(codec, codec)
            options = pa.ipc.IpcWriteOptions(compression=ipc_codec)
            self._sink = pa.OSFile(path, "wb")
            self._w = pa.ipc.new_file(self._sink, schema, options=options)
        else:
            import pyarrow.csv as pacsv

            self._w = pacsv.CSVWriter(path, csv_schema(schema))
        self.fmt = fmt

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self.fmt == "parquet":
            self._w.write_table(one_dictionary_each(table), row_group_size=ROW_GROUP_ROWS)
        elif self.fmt == "csv":
            self._w.write_table(csv_table(table))
        else:
            self._w.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self._w.close()
        if self.fmt != "csv":
            self._sink.close()


def parquet_dictionary_schema(schema: pa.Schema, names: Sequence[str]) -> pa.Schema | None:
    """``schema`` with columns ``names`` as dictionaries, if a Parquet file written with it
    and without Arrow's stored schema reads back as ``schema``; else None.

    Arrow's stored schema would make readers return those columns as dictionaries; without
    it they read Parquet's own types, which is only right when they say everything.

    >>> parquet_dictionary_schema(pa.schema({'s': pa.string(), 'x': pa.int64()}), ['s'])
    s: dictionary<values=string, indices=int32, ordered=0>
    x: int64
    >>> parquet_dictionary_schema(pa.schema({'s': pa.large_string()}), ['s']) is None
    True
    """
    import pyarrow.parquet as pq

    if not names:
        return None
    fields = [f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in names else f for f in schema]
    encoded = pa.schema(fields, metadata=schema.metadata)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_batches([], schema=encoded), sink, store_schema=False)  # not empty_table(): it imports pandas
    back = pq.read_schema(pa.BufferReader(sink.getvalue()))
    return encoded if back.equals(schema, check_metadata=False) else None


def one_dictionary_each(table: pa.Table) -> pa.Table:
    """``table`` with one dictionary per dictionary column, shared by all its chunks and
    holding only the values its rows use.

    A Parquet column chunk has one dictionary page: a writer given chunks with different
    dictionaries falls back to plain values. Unused entries would bloat the file, and the
    writer takes a dictionary column's min/max statistics from its dictionary, so they
    would also make the statistics wrong.
    """
    if not any(pa.types.is_dictionary(t) for t in table.schema.types):
        return table
    columns = [_one_dictionary(c) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _one_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    from ..shuffle.arrow_numpy import arrow_array, valid_mask, values

    if column.num_chunks == 0:
        return column
    dictionary = column.chunk(0).dictionary
    # pieces of one input row group share its dictionary: unifying would hash it again
    same = all(c.dictionary.equals(dictionary) for c in column.chunks[1:])
    unified = column if same else column.unify_dictionaries()
    dictionary = unified.chunk(0).dictionary
    index_type = np.dtype(str(column.type.index_type))
    used = np.zeros(len(dictionary), dtype=bool)
    for chunk in unified.chunks:
        indices, valid = values(chunk.indices, index_type), valid_mask(chunk.indices)
        used[indices if valid is None else indices[valid]] = True
    keep = np.flatnonzero(used)
    if len(keep) == len(dictionary):
        return unified
    lookup = np.zeros(len(dictionary), dtype=index_type)
    lookup[keep] = np.arange(len(keep), dtype=index_type)
    lookup_array, compact = arrow_array(lookup), dictionary.take(arrow_array(keep))
    return pa.chunked_array(
        # a take keeps the nulls of the indices
        [pa.DictionaryArray.from_arrays(lookup_array.take(c.indices), compact, ordered=column.type.ordered)
         for c in unified.chunks], column.type,
    )


def stringlike(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
        or pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_dictionary(t)
    )


def plain(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def csv_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_type(plain(f.type)) for f in schema], metadata=schema.metadata)


def csv_table(table: pa.Table) -> pa.Table:
    if not any(pa.types.is_dictionary(f.type) for f in table.schema):
        return table
    return table.cast(csv_schema(table.schema))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns and types (inputs may differ slightly)."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    cols = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def conformed_batches(pieces: Iterable[pa.Table], schema: pa.Schema, target_bytes: int) -> Iterator[pa.Table]:
    from ..shuffle.inputs import coalesce

    yield from coalesce((conform(p, schema) for p in pieces), schema, target_bytes)


class WriterPool:
    """Files per key value under ``root``: ``<rel>/part-NNNNN``, numbered per directory.

    ``write`` keeps at most ``max_open`` writers open (the least recently used is closed;
    a value seen again gets its next file).
    """

    def __init__(self, root: str, schema: pa.Schema, fmt: str, compression: str, max_open: int):
        self.root, self.schema, self.fmt, self.compression = root, schema, fmt, compression
        self.max_open = max_open
        self.open: OrderedDict[str, Writer] = OrderedDict()
        self.dirs: set[str] = set()
        self.numbers: dict[str, int] = {}  # directory -> files started in it
        self.files = 0
        self.rows = 0

    def _next_path(self, rel: str) -> str:
        number = self.numbers.get(rel, 0)
        self.numbers[rel] = number + 1
        self.dirs.add(rel)
        self.files += 1
        return os.path.join(self.root, rel, f"part-{number:05d}{FORMATS[self.fmt]}")

    def _create(self, path: str) -> Writer:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return Writer(path, self.schema, self.fmt, self.compression)

    def write(self, rel: str, table: pa.Table) -> None:
        w = self.open.get(rel)
        if w is None:
            while len(self.open) >= self.max_open:
                self._close(next(iter(self.open)))
            w = self.open[rel] = self._create(self._next_path(rel))
        else:
            self.open.move_to_end(rel)
        w.write(table)

    def _close(self, rel: str) -> None:
        w = self.open.pop(rel)
        w.close()
        self.rows += w.rows

    def close_all(self) -> None:
        while self.open:
            self._close(next(iter(self.open)))
