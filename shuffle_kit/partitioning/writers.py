"""Output files of the partition job: one writer per file (Parquet, Arrow IPC or CSV), a
series of files of at most so many rows each, and a pool that keeps a bounded number of
series open.

Row groups of an exact size (``row_group_size``: Parquet row groups, Arrow IPC record
batches) are made by holding back the rows short of a whole group in the writer, copied
so that they pin nothing else; a file's last group is what is left at its end.

Every table written is first conformed to the output schema, so inputs whose types differ
slightly (or whose string columns were read dictionary-encoded) all land as that schema.
A table made of many small pieces (a row group gathers a piece of every input chunk) is
joined into chunks of at least :data:`WRITE_BATCH_ROWS` rows before it is encoded: the
encoders pay per chunk, and for each its dictionaries (:func:`fewer_chunks`).
Parquet files can also take string columns as Arrow dictionaries
(:func:`parquet_dictionary_schema`): their indices go into the file's dictionary pages as
they are, instead of every string being decoded and hashed again.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

from ..io.provenance import Provenance, without_record

FORMATS = {"parquet": ".parquet", "csv": ".csv", "arrow": ".arrow"}
# the join's staged sides: an Arrow IPC stream, whose dictionaries may grow (deltas) or be
# replaced from batch to batch, where a file's may not
STAGED = "arrow-stream"
EXTENSIONS = {**FORMATS, STAGED: ".arrows"}
COMPRESSIONS = ("lz4", "zstd", "none")
ROW_GROUP_ROWS = 1 << 20
ARROW_SCHEMA = "ARROW:schema"  # where a Parquet footer keeps Arrow's schema (base64 of its IPC message)
MAX_OPEN_FILES = 64
# values handed to the Parquet encoder at a time, and the most rows of a page in a file with
# a dictionary column: the encoder's statistics of one cost a hash table of each page's
# indices and a copy of the values they use, so fewer, larger pages are cheaper (they still
# end near 1 MiB); other files keep pyarrow's shorter pages, of which an open writer keeps
# less memory
WRITE_BATCH_ROWS = 1 << 16


class Writer:
    """One output file of a given format, written table by table.

    ``encode``: more columns to store with a dictionary in Parquet, whatever their type
    (partition keys whose input had one: a hash partition holds a fraction of their values);
    ``values_only``: string columns to store without one (values mostly distinct: the
    Parquet writer would hash every value into a dictionary for each row group that saves
    little room, or outgrows its page limit and is given up).
    ``stored``: the schema a Parquet file reads back as, kept in its footer as Arrow's
    schema, when it is not ``schema`` (one from :func:`parquet_dictionary_schema`, whose
    dictionary columns read back as their values).
    ``row_group_size``: rows of every row group (record batch) but the file's last; None:
    what each ``write`` brings, in groups of at most :data:`ROW_GROUP_ROWS`.
    ``record``: how the file was partitioned (:mod:`shuffle_kit.io.provenance`), kept in a
    Parquet file's key-value metadata or an Arrow IPC file's schema (a CSV file has no
    place for it); a record in ``schema``'s metadata is never written (it is the input's).
    """

    def __init__(self, path: str, schema: pa.Schema, fmt: str, compression: str, encode: Sequence[str] = (),
                 stored: pa.Schema | None = None, row_group_size: int | None = None, record: Provenance | None = None,
                 values_only: Sequence[str] = ()):
        self.path = path
        with naming(path):
            self._open(path, without_record(schema), fmt, compression, encode, stored, row_group_size, record,
                       values_only)

    def _open(self, path: str, schema: pa.Schema, fmt: str, compression: str, encode: Sequence[str],
              stored: pa.Schema | None, row_group_size: int | None, record: Provenance | None,
              values_only: Sequence[str]) -> None:
        self.rows = 0
        self.row_group_size = row_group_size
        self._held: list[pa.Table] = []  # rows short of a whole row group
        self._record: Provenance | None = None  # written into a Parquet footer at the end
        codec = None if compression == "none" else compression
        recorded = schema if record is None else schema.with_metadata({**(schema.metadata or {}), **record.metadata()})
        if fmt == "parquet":
            import pyarrow.parquet as pq

            # dictionary pages pay off for strings; for numbers that are all distinct the
            # writer builds a dictionary for nothing (it abandons it once it outgrows its
            # page limit), and the file grows
            encoded = [f.name for f in schema
                       if (stringlike(f.type) and f.name not in values_only) or f.name in encode]
            # an open file, not a path: pyarrow would look the path up as a file system URI
            # for every file, which costs more than writing a small one
            self._sink = pa.OSFile(path, "wb")
            # the record goes into the footer with the file's rows when it is closed (pyarrow
            # 17 and later); before, in the schema's metadata, which only Arrow's stored
            # schema puts in the footer (a file without it then has no record, and is never
            # taken as partitioned)
            late = record is not None and hasattr(pq.ParquetWriter, "add_key_value_metadata")
            self._w = pq.ParquetWriter(
                self._sink, recorded if stored is None and not late else schema, compression=codec or "none",
                use_dictionary=encoded, write_batch_size=WRITE_BATCH_ROWS, store_schema=stored is None,
                **(_page_rows() if any(pa.types.is_dictionary(t) for t in schema.types) else {}),
            )
            if stored is not None:  # what Arrow stores for a table of that schema
                import base64

                serialized = without_record(stored).serialize().to_pybytes()
                self._w.add_key_value_metadata({ARROW_SCHEMA: base64.b64encode(serialized).decode()})
            self._record = record if late else None
        elif fmt in ("arrow", STAGED):
            ipc_codec = None if codec is None else {"lz4": "lz4_frame"}.get(codec, codec)
            options = pa.ipc.IpcWriteOptions(compression=ipc_codec, emit_dictionary_deltas=fmt == STAGED)
            self._sink = pa.OSFile(path, "wb")
            self._w = (pa.ipc.new_stream if fmt == STAGED else pa.ipc.new_file)(self._sink, recorded, options=options)
        else:
            import pyarrow.csv as pacsv

            self._w = pacsv.CSVWriter(path, csv_schema(schema))
        self.fmt = fmt

    def write(self, table: pa.Table) -> None:
        with naming(self.path):
            self._write(table)

    def _write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.rows += table.num_rows
        size = self.row_group_size
        if size is None:
            self._encode(table, ROW_GROUP_ROWS)
            return
        if self._held:
            table = pa.concat_tables([*self._held, table])
            self._held = []
        whole = table.num_rows - table.num_rows % size
        if whole:
            self._encode(table.slice(0, whole), size)
        if whole < table.num_rows:
            # a copy: a slice would keep the whole input chunk alive
            rest = table.slice(whole)
            self._held = [rest.take(pa.array(np.arange(rest.num_rows)))]

    def _encode(self, table: pa.Table, group: int) -> None:
        if self.fmt == "parquet":
            # one dictionary first: chunks joined then are indices put end to end, where
            # joining chunks of different dictionaries would hash every one of them
            table = fewer_chunks(one_dictionary_each(table), WRITE_BATCH_ROWS)
            self._w.write_table(table, row_group_size=group)
            return
        table = fewer_chunks(table, WRITE_BATCH_ROWS)
        if self.fmt == "csv":
            self._w.write_table(csv_table(table))
        elif self.row_group_size is None:
            self._w.write_table(table, max_chunksize=group)
        else:  # record batches end at chunk ends too: one chunk, for groups of the size asked
            self._w.write_table(table.combine_chunks(), max_chunksize=group)

    def close(self) -> None:
        with naming(self.path):
            self._close()

    def _close(self) -> None:
        if self._held:
            held, self._held = pa.concat_tables(self._held), []
            self._encode(held, held.num_rows)
        if self._record is not None:
            self._w.add_key_value_metadata(self._record.with_rows(self.rows).metadata())
        self._w.close()
        if self.fmt != "csv":
            self._sink.close()


@functools.cache
def _page_rows() -> dict[str, int]:
    """The Parquet writer's option of the most rows of a page (:data:`WRITE_BATCH_ROWS`),
    where pyarrow has it: older versions end pages by their size alone."""
    import inspect

    import pyarrow.parquet as pq

    return {"max_rows_per_page": WRITE_BATCH_ROWS} if "max_rows_per_page" in inspect.signature(
        pq.ParquetWriter.__init__).parameters else {}


@contextmanager
def naming(path: str) -> Iterator[None]:
    """Put ``path`` in the ``filename`` of an ``OSError`` raised inside (Arrow's name no
    file), so that a full disk can be reported with the place that is full."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            e.filename = path
        raise


def fewer_chunks(table: pa.Table, min_rows: int) -> pa.Table:
    """``table`` with its chunks joined into chunks of at least ``min_rows`` rows (but the
    last), unless they are that long already: a copy of the short ones, never a split.

    >>> t = pa.concat_tables([pa.table({'x': [i] * n}) for i, n in enumerate([1, 2, 5, 1])])
    >>> [len(c) for c in fewer_chunks(t, 3).column('x').chunks]
    [3, 5, 1]
    """
    batches = table.to_batches()
    if len(batches) <= 1 or all(b.num_rows >= min_rows for b in batches):
        return table
    out: list[pa.RecordBatch] = []
    group: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        group.append(batch)
        rows += batch.num_rows
        if rows >= min_rows:
            out += _joined(group)
            group, rows = [], 0
    out += _joined(group)
    return pa.Table.from_batches(out, schema=table.schema)


def _joined(batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    if len(batches) <= 1:
        return batches
    return pa.Table.from_batches(batches).combine_chunks().to_batches()


def parquet_dictionary_schema(schema: pa.Schema, names: Sequence[str]) -> pa.Schema | None:
    """``schema`` with columns ``names`` as dictionaries (None if there are none), for
    Parquet files that read back as ``schema``: their writer is given ``schema`` to store
    as Arrow's (``Writer(stored=...)``), which would otherwise be this one, and make
    readers return those columns as dictionaries.

    >>> parquet_dictionary_schema(pa.schema({'s': pa.large_string(), 'x': pa.int64()}), ['s'])
    s: dictionary<values=large_string, indices=int32, ordered=0>
    x: int64
    """
    if not names:
        return None
    fields = [f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in names else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def one_dictionary_each(table: pa.Table) -> pa.Table:
    """``table`` with one dictionary per dictionary column, shared by all its chunks and
    holding only the values its rows use.

    A Parquet column chunk has one dictionary page: a writer given chunks with different
    dictionaries falls back to plain values. Unused entries would be written into the page
    of every file, and into its statistics.

    The work is never more than the larger of the rows and the dictionaries' values:
    chunks with different dictionaries of more values than there are rows (a file's pieces
    of many inputs, each carrying its input's whole dictionary) are decoded and encoded
    again, hashing each row once, instead of every dictionary being hashed into one.

    >>> d = lambda i, v: pa.DictionaryArray.from_arrays(pa.array(i, pa.int32()), pa.array(v))
    >>> t = pa.table({'s': pa.chunked_array([d([2, 2], ['a', 'b', 'c']), d([0], ['x', 'y', 'c'])])})
    >>> s = one_dictionary_each(t).column('s')
    >>> s.to_pylist(), {c.dictionary.to_pylist() == ['c', 'x'] for c in s.chunks}
    (['c', 'c', 'x'], {True})
    """
    if not any(pa.types.is_dictionary(t) for t in table.schema.types):
        return table
    columns = [_one_dictionary(c) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _one_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if column.num_chunks == 0:
        return column
    chunks = column.chunks
    dictionaries = [c.dictionary for c in chunks]
    longest = max(dictionaries, key=len)
    # pieces of one job's dictionary (see dictionaries.py) hold it, or an earlier state of
    # it, which is a start of it: their indices hold in it as they are (most share its
    # very buffers, which settles it without comparing a value)
    held = _buffer_spans(longest)  # (once: compared with every chunk's)
    others = [d for d in dictionaries
              if not ((len(d) == len(longest) and d.offset == longest.offset and _buffer_spans(d) == held)
                      or longest.slice(0, len(d)).equals(d))]
    if not others:
        # one chunk of indices first: finding the used entries then costs a pass over the
        # rows, not a few NumPy and Arrow calls for each of a file's many small pieces
        indices = chunks[0].indices if len(chunks) == 1 else pa.concat_arrays([c.indices for c in chunks])
        # (its indices hold in the longer dictionary: Arrow need not check them again)
        joined = pa.DictionaryArray.from_arrays(indices, longest, ordered=column.type.ordered, safe=False)
        return _used_only(pa.chunked_array([joined], column.type))
    # pieces of one input row group share its dictionary: count each once
    values = len(longest) + sum(len(d) for d, before in zip(others, [None, *others]) if before is None or
                                not d.equals(before))
    if values > len(column):
        return _encoded_again(column)
    return _used_only(column.unify_dictionaries())


def _encoded_again(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``column`` decoded and encoded again: one dictionary of the values used, in the
    order of their first row."""
    import pyarrow.compute as pc

    t = column.type
    decoded = pa.chunked_array([c.dictionary.take(c.indices) for c in column.chunks], t.value_type)
    encoded = pc.dictionary_encode(decoded.combine_chunks())
    return pa.chunked_array([encoded if encoded.type == t else encoded.cast(t)], t)


def _used_only(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``column``, whose chunks share one dictionary, with the entries no row uses dropped.

    (Called for every row group of every file: a file's many small writes make its cost
    per call, and so its NumPy and Arrow calls, count.)

    >>> d = pa.array(['a', 'b', 'c'])
    >>> c = pa.chunked_array([pa.DictionaryArray.from_arrays(pa.array(i, pa.int32()), d) for i in ([2, None], [2])])
    >>> [(x.dictionary.to_pylist(), x.indices.to_pylist()) for x in _used_only(c).chunks]
    [(['c'], [0, None]), (['c'], [0])]
    """
    import pyarrow.compute as pc

    from ..kernels.arrow_numpy import arrow_array, valid_mask, values

    dictionary = column.chunk(0).dictionary
    index_type: np.dtype = _INDEX_TYPES.get(column.type.index_type) or np.dtype(str(column.type.index_type))
    used = np.zeros(len(dictionary), dtype=bool)
    indices = [c.indices for c in column.chunks]
    # one scatter, of the chunks' valid indices end to end, as NumPy's own index type
    # (narrower indices would be converted in small buffered steps)
    valid = [values(i, index_type) if not i.null_count else values(i, index_type)[valid_mask(i)] for i in indices]
    used[(valid[0] if len(valid) == 1 else np.concatenate(valid)).astype(np.intp)] = True
    keep = np.flatnonzero(used)
    if len(keep) == len(dictionary):
        return column
    lookup = np.zeros(len(dictionary), dtype=index_type)
    lookup[keep] = np.arange(len(keep), dtype=index_type)
    lookup_array, compact = arrow_array(lookup), dictionary.take(arrow_array(keep))
    return pa.chunked_array(
        # a take keeps the nulls of the indices; every index holds in the lookup, and every
        # entry of the lookup in the compact dictionary (Arrow need not check them again)
        [pa.DictionaryArray.from_arrays(pc.take(lookup_array, i, boundscheck=False), compact,
                                        ordered=column.type.ordered, safe=False)
         for i in indices], column.type,
    )


_INDEX_TYPES: dict[pa.DataType, np.dtype] = {
    t: np.dtype(t.to_pandas_dtype()) for t in (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(),
                                                pa.uint32(), pa.uint64())
}


def _buffer_spans(a: pa.Array) -> list[tuple[int, int] | None]:
    """Where each of ``a``'s buffers lies (address, size): arrays of equal length and
    offset whose buffers lie at the same places are views of the same memory (then equal,
    whatever their values).

    >>> x = pa.array(['a', 'b'])
    >>> _buffer_spans(x.slice(0)) == _buffer_spans(x), _buffer_spans(pa.array(['a', 'b'])) == _buffer_spans(x)
    (True, False)
    """
    return [None if b is None else (b.address, b.size) for b in a.buffers()]


def stringlike(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
        or pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_dictionary(t)
    )


def plain(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def stored_type(t: pa.DataType) -> pa.DataType:
    """A type as a file stores it, whatever way Arrow holds it in memory (dictionaries as
    their values, large and view strings as strings).

    >>> stored_type(pa.dictionary(pa.int32(), pa.large_string()))
    DataType(string)
    """
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    return t


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
    from ..io.readers import coalesce

    yield from coalesce((conform(p, schema) for p in pieces), schema, target_bytes)


def file_name(fmt: str, *parts: int | str | None) -> str:
    """``part-`` and the ``parts`` that are not None, joined by ``-``: the partition's
    number, the job's token (appends), the file's number within its series.

    >>> file_name('parquet', 3), file_name('csv', 3, 'a1b2', 0), file_name('arrow', None, 2)
    ('part-00003.parquet', 'part-00003-a1b2-00000.csv', 'part-00002.arrow')
    """
    text = "-".join(f"{p:05d}" if isinstance(p, int) else p for p in parts if p is not None)
    return f"part-{text}{EXTENSIONS[fmt]}"


class FileSeries:
    """Files written one after the other, each of at most ``max_rows`` rows (None: one
    file): ``create(i)`` makes the i-th writer, when its first row comes (the first file
    at once if ``eager``, so that even an empty series has one file)."""

    def __init__(self, create: Callable[[int], Writer], max_rows: int | None = None, eager: bool = False):
        self.create, self.max_rows = create, max_rows
        self.files = 0
        self.rows = 0
        self._writer: Writer | None = None
        if eager:
            self._next()

    def _next(self) -> Writer:
        if self._writer is not None:
            self._writer.close()
        self._writer = self.create(self.files)
        self.files += 1
        return self._writer

    def write(self, table: pa.Table) -> None:
        at = 0
        while at < table.num_rows:
            w = self._writer
            if w is None or (self.max_rows is not None and w.rows >= self.max_rows):
                w = self._next()
            room = table.num_rows - at if self.max_rows is None else self.max_rows - w.rows
            piece = table.slice(at, room)
            w.write(piece)
            at += piece.num_rows
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class WriterPool:
    """Files per key value under ``root``: ``<rel>/part-NNNNN`` (``part-TOKEN-NNNNN`` with
    a ``token``), numbered per directory, each of at most ``max_rows`` rows.

    ``write`` keeps at most ``max_open`` writers open (the least recently used is closed;
    a value seen again gets its next file).
    """

    def __init__(self, root: str, schema: pa.Schema, fmt: str, compression: str, max_open: int,
                 max_rows: int | None = None, row_group_size: int | None = None, token: str | None = None):
        self.root, self.schema, self.fmt, self.compression = root, schema, fmt, compression
        self.max_open, self.max_rows, self.row_group_size, self.token = max_open, max_rows, row_group_size, token
        self.open: OrderedDict[str, FileSeries] = OrderedDict()
        self.dirs: set[str] = set()
        self.numbers: dict[str, int] = {}  # directory -> files started in it
        self.files = 0
        self.rows = 0

    def _next_path(self, rel: str) -> str:
        number = self.numbers.get(rel, 0)
        self.numbers[rel] = number + 1
        self.dirs.add(rel)
        self.files += 1
        return os.path.join(self.root, rel, file_name(self.fmt, self.token, number))

    def _create(self, rel: str) -> Writer:
        path = self._next_path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return Writer(path, self.schema, self.fmt, self.compression, row_group_size=self.row_group_size)

    def write(self, rel: str, table: pa.Table) -> None:
        w = self.open.get(rel)
        if w is None:
            while len(self.open) >= self.max_open:
                self._close(next(iter(self.open)))
            w = self.open[rel] = FileSeries(lambda i: self._create(rel), self.max_rows)
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
