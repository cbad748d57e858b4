"""Readers of shuffle inputs: everything becomes a stream of bounded chunks.

``open_source(data)`` accepts a pandas DataFrame, an iterable of DataFrames / Arrow
tables / record batches, a ``pyarrow.Table``, ``RecordBatch``, ``RecordBatchReader`` or
dataset, a polars DataFrame or LazyFrame (streamed, see :mod:`.polars_frames`), any object
with ``__arrow_c_stream__`` (the Arrow PyCapsule interface: read once, as a stream), or a
path, glob or list of paths of Parquet, CSV or Arrow IPC files. It checks
what it can without reading data (paths exist, formats are known, file schemas
concatenate) and returns a :class:`Source` whose ``chunks()`` yields pandas DataFrames
or Arrow tables of about ``chunk_bytes`` each: files are read in batches, never whole.

>>> import pandas as pd
>>> src = open_source(pd.DataFrame({'a': range(10)}), chunk_bytes=120)
>>> [len(c) for c in src.chunks()], src.nrows
([5, 5], 10)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import pyarrow as pa

from ..defaults import CHUNK_BYTES
from ..errors import ArgumentTypeError, InputNotFoundError, JobError, PathError
from . import polars_frames
from .discovery import InputFile, discover
from .view_types import widened_schema, widened_table

if TYPE_CHECKING:
    import pandas as pd

Chunk = Union["pd.DataFrame", pa.Table]

DEFAULT_CHUNK_BYTES = CHUNK_BYTES  # (its name here, for the readers' callers)



@dataclass
class Source:
    """A shuffle input: what is known up front, and a one-shot chunk iterator."""

    description: str
    make_chunks: Callable[[], Iterator[Chunk]]
    schema: pa.Schema | None = None  # Arrow schema, when known before reading
    columns: list | None = None  # column and index names, when known before reading
    nrows: int | None = None
    nbytes: int | None = None  # estimated in-memory size
    files: list[InputFile] = field(default_factory=list)
    file_schemas: list[pa.Schema] = field(default_factory=list)  # each file's, with its hive columns
    dictionary: list[str] = field(default_factory=list)  # plain in ``schema``, dictionaries in chunks
    parquet_metadata: list[Any] = field(default_factory=list)  # every file's footer, if all are Parquet

    def chunks(self) -> Iterator[Chunk]:
        return self.make_chunks()


def _frame_nbytes(df: pd.DataFrame) -> int:
    return int(df.memory_usage(deep=True, index=True).sum())


def _rows_per_chunk(nrows: int, nbytes: int, chunk_bytes: int) -> int:
    return max(1, int(chunk_bytes // max(1, nbytes // max(1, nrows))))


def _slices(obj: Any, n: int, step: int, take: Callable[[Any, int, int], Chunk]) -> Iterator[Chunk]:
    if n == 0:
        yield take(obj, 0, 0)
    for start in range(0, n, step):
        yield take(obj, start, min(step, n - start))


def _frame_source(df: pd.DataFrame, chunk_bytes: int) -> Source:
    nbytes = _frame_nbytes(df)
    step = _rows_per_chunk(len(df), nbytes, chunk_bytes)
    columns = list(df.columns) + [n for n in df.index.names if n is not None]
    return Source(
        "DataFrame", lambda: _slices(df, len(df), step, lambda d, s, k: d.iloc[s : s + k]),
        columns=columns, nrows=len(df), nbytes=nbytes,
    )


def frame_as_arrow(df: pd.DataFrame, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Source:
    """A pandas DataFrame as a source of Arrow tables with one schema, converted a chunk at
    a time (never copied whole): what writing files needs. Named index levels become
    columns (first, as ``reset_index`` puts them); a default index is left out.

    >>> import pandas as pd
    >>> src = frame_as_arrow(pd.DataFrame({'a': range(4)}, index=pd.Index([5, 6, 7, 8], name='i')))
    >>> src.schema.names, next(src.chunks()).num_rows
    (['i', 'a'], 4)
    """
    named = [n for n in df.index.names if n is not None]
    if named:
        df = df.reset_index(level=named)
    schema = pa.Schema.from_pandas(df, preserve_index=False)
    plain = _frame_source(df, chunk_bytes)

    def chunks() -> Iterator[Chunk]:
        for chunk in plain.chunks():
            yield pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)

    return Source("DataFrame", chunks, schema=schema, columns=list(schema.names), nrows=len(df), nbytes=plain.nbytes)


def _table_source(table: pa.Table, chunk_bytes: int, description: str = "Arrow Table") -> Source:
    step = _rows_per_chunk(table.num_rows, table.nbytes, chunk_bytes)
    return Source(
        description, lambda: _slices(table, table.num_rows, step, lambda t, s, k: t.slice(s, k)),
        schema=table.schema, columns=_arrow_columns(table.schema), nrows=table.num_rows, nbytes=table.nbytes,
    )


def _arrow_columns(schema: pa.Schema) -> list:
    """Column names as pandas will see them (index columns under their index names)."""
    names = list(schema.names)
    meta = schema.pandas_metadata or {}
    for col in meta.get("columns", []):
        field_name, name = col.get("field_name"), col.get("name")
        if field_name in names and name is not None and name not in names:
            names.append(name)
    return names


# A batch read as a chunk's worth of rows can come out a row or a bitmap byte over the chunk
# (rows per batch round up; widths are averages): slicing it would halve every chunk.
OVERSIZE = 1.02


def coalesce(batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema, chunk_bytes: int) -> Iterator[pa.Table]:
    """Regroup a stream of batches into tables of at most about ``chunk_bytes``.

    Small batches are joined into one while they fit (per-chunk costs are paid per
    partition, so tiny chunks are slow); large ones are sliced into equal parts (memory
    holds one chunk; a small last slice would cost as much per partition as a whole chunk).

    >>> import pyarrow as pa
    >>> b = pa.record_batch({'x': list(range(4))})
    >>> [t.num_rows for t in coalesce([b] * 5, b.schema, chunk_bytes=64)]
    [8, 8, 4]
    """
    pending: list = []
    size = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        nbytes = batch.nbytes
        if pending and size + nbytes > chunk_bytes:
            yield _join(pending)
            pending, size = [], 0
        if nbytes > chunk_bytes * OVERSIZE:
            table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            rows, parts = table.num_rows, math.ceil(nbytes / chunk_bytes)
            for i in range(parts):
                yield table.slice(i * rows // parts, (i + 1) * rows // parts - i * rows // parts)
            continue
        pending.append(batch)
        size += nbytes
        if size >= chunk_bytes:
            yield _join(pending)
            pending, size = [], 0
    if pending:
        yield _join(pending)


def _join(pieces: list) -> pa.Table:
    tables = [p if isinstance(p, pa.Table) else pa.Table.from_batches([p]) for p in pieces]
    if len(tables) == 1:
        return tables[0]
    # one contiguous batch (a copy): a split then takes the chunk in one pass, not one per piece
    return pa.concat_tables(tables, promote_options="permissive").combine_chunks()


def _reader_source(reader: pa.RecordBatchReader, chunk_bytes: int) -> Source:
    used: list[bool] = []

    def chunks() -> Iterator[Chunk]:
        if used:
            raise RuntimeError("a RecordBatchReader can be read only once")
        used.append(True)
        first: list = []

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                if not first:
                    first.append(batch)
                yield batch

        rows = 0
        for chunk in coalesce(batches(), reader.schema, chunk_bytes):
            rows += chunk.num_rows
            yield chunk
        if not rows and first:  # an empty batch still tells a dictionary's values
            yield pa.Table.from_batches(first)

    return Source("RecordBatchReader", chunks, schema=reader.schema, columns=_arrow_columns(reader.schema))


def _dataset_source(dataset: Any, chunk_bytes: int, description: str = "Arrow dataset") -> Source:
    schema = dataset.schema
    try:
        nrows = dataset.count_rows()  # Parquet: metadata only
    except Exception:
        nrows = None

    def chunks() -> Iterator[Chunk]:
        # batch_readahead/fragment_readahead bound what the scanner holds in memory
        options = {}
        if getattr(dataset, "format", None) is not None and dataset.format.default_extname == "parquet":
            import pyarrow.dataset as ds

            options["fragment_scan_options"] = ds.ParquetFragmentScanOptions(pre_buffer=False)
        batches = dataset.to_batches(
            batch_size=64 * 1024, batch_readahead=2, fragment_readahead=1, **options
        )
        yield from coalesce(batches, schema, chunk_bytes)

    return Source(description, chunks, schema=schema, columns=_arrow_columns(schema), nrows=nrows)


def _polars_source(df: Any, chunk_bytes: int) -> Source:
    nbytes = int(df.estimated_size())
    step = _rows_per_chunk(df.height, nbytes, chunk_bytes)
    schema = polars_frames.arrow_schema(df)
    return Source(
        "polars DataFrame", lambda: polars_frames.frame_slices(df, step),
        schema=schema, columns=list(schema.names), nrows=df.height, nbytes=nbytes,
    )


def _lazy_source(lf: Any, chunk_bytes: int) -> Source:
    empty = polars_frames.empty_table(lf)
    schema = empty.schema

    def chunks() -> Iterator[Chunk]:
        rows = 0
        for chunk in coalesce(polars_frames.lazy_batches(lf), schema, chunk_bytes):
            rows += chunk.num_rows
            yield chunk
        if not rows:  # an Enum's categories are in the empty frame, not in its schema
            yield empty

    # rows and bytes are unknown until the query has run
    return Source("polars LazyFrame", chunks, schema=schema, columns=list(schema.names))


def _stream_source(obj: Any, chunk_bytes: int) -> Source:
    try:
        reader = pa.RecordBatchReader.from_stream(obj)
    except (pa.ArrowException, TypeError, ValueError) as e:
        text = " ".join(str(e).split())
        raise ArgumentTypeError(
            f"cannot read the Arrow C stream of a {type(obj).__name__} as record batches: {text}"
        ) from None
    source = _reader_source(reader, chunk_bytes)
    source.description = f"Arrow C stream of a {type(obj).__name__}"
    return source


# -- files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadOptions:
    """How files are read: hive partition discovery (``"hive"`` or ``"none"``) and the CSV
    field delimiter (None: tabs for ``.tsv`` files, commas for the rest)."""

    partitioning: str = "hive"
    csv_delimiter: str | None = None


def _file_schema(f: InputFile, read: ReadOptions) -> tuple[pa.Schema, Any]:
    """(Arrow schema, Parquet footer or None) of one file."""
    fs, path = f.location.fs, f.location.path
    try:
        if f.format == "parquet":
            import pyarrow.parquet as pq

            with fs.open_input_file(path) as handle:
                meta = pq.read_metadata(handle)
            return widened_schema(meta.schema.to_arrow_schema()), meta
        if f.format == "arrow":
            with fs.open_input_file(path) as handle:
                return widened_schema(_open_ipc(handle).schema), None
    except (pa.ArrowException, OSError) as e:
        raise _naming(e, f"cannot read {f.location.url}") from None
    # the types inferred from the first block (1 MB): later blocks are converted to them
    return next(_csv_batches(f, 4 << 20, read), pa.record_batch([])).schema, None


def _open_ipc(handle: Any) -> Any:
    import pyarrow.ipc as ipc

    try:
        return ipc.open_file(handle)
    except pa.ArrowInvalid:
        handle.seek(0)
        return ipc.open_stream(handle)


class RowWidth:
    """Bytes a row takes in memory: first estimated, then as the batches read so far show
    (all of them: a small batch's fixed overheads would make its rows look wide)."""

    def __init__(self, estimate: float):
        self.estimate = estimate
        self.rows = self.nbytes = 0

    @property
    def bytes(self) -> float:
        return self.nbytes / self.rows if self.rows else self.estimate

    def learn(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        self.nbytes += batch.nbytes


def _row_group_batches(
    pf: Any, chunk_bytes: int, width: RowWidth, columns: Sequence[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The batches of an open Parquet file (only its ``columns``, if given): each row group
    in equal parts of at most about ``chunk_bytes`` in memory (batches never span row
    groups: their dictionaries differ), so that no small remainder makes a chunk of its own."""
    meta = pf.metadata
    for i in range(meta.num_row_groups):
        rows = meta.row_group(i).num_rows
        if not rows:
            continue
        parts = max(1, math.ceil(rows * width.bytes / chunk_bytes))
        for batch in pf.iter_batches(batch_size=math.ceil(rows / parts), row_groups=[i], columns=columns):
            width.learn(batch)
            yield batch


def _file_batches(
    f: InputFile, width: RowWidth, chunk_bytes: int, read: ReadOptions, dictionary: Sequence[str] = (),
    schema: pa.Schema | None = None, columns: Sequence[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The record batches of one file; an error while decoding it names the file (and, for
    a CSV row with the wrong number of fields, its line). ``schema``: the file's, as found
    when it was opened (CSV blocks are then converted to it, not inferred again);
    ``columns``: only these of its columns (Parquet reads no others)."""
    if f.format == "csv":
        yield from _csv_batches(f, chunk_bytes, read, schema, columns)
        return
    try:
        with f.location.fs.open_input_file(f.location.path) as handle:
            if f.format == "parquet":
                import pyarrow.parquet as pq

                # pre_buffer (the default) caches every column chunk of the file as it goes:
                # memory would grow with the file, not the batch
                with pq.ParquetFile(handle, pre_buffer=False, read_dictionary=list(dictionary) or None) as pf:
                    yield from _row_group_batches(pf, chunk_bytes, width, columns)
            else:
                import pyarrow.ipc as ipc

                reader = _open_ipc(handle)
                batches = (
                    (reader.get_batch(i) for i in range(reader.num_record_batches))
                    if isinstance(reader, ipc.RecordBatchFileReader) else reader
                )
                for batch in batches:
                    yield batch if columns is None else batch.select(list(columns))
    except (pa.ArrowException, OSError) as e:
        raise _naming(e, f.location.url) from None


def _csv_batches(
    f: InputFile, chunk_bytes: int, read: ReadOptions, schema: pa.Schema | None = None,
    columns: Sequence[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pacsv

    block = int(min(max(chunk_bytes // 4, 1 << 20), 64 << 20))
    convert = pacsv.ConvertOptions(column_types={c.name: c.type for c in schema} if schema is not None else None,
                                   include_columns=list(columns) if columns is not None else None)
    parse = pacsv.ParseOptions(delimiter=_delimiter(f, read))
    rows = 0
    try:
        # open_input_stream decompresses .gz and .bz2 files, as open_csv does for local paths
        with f.location.fs.open_input_stream(f.location.path) as stream:
            for batch in pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=block), parse_options=parse,
                                        convert_options=convert):
                rows += batch.num_rows
                yield batch
    except (pa.ArrowException, OSError) as e:
        line = _bad_line(f, block, convert, parse)
        where = f"line {line}" if line is not None else f"after its first {rows:,} rows" if rows else ""
        raise _naming(e, f"{f.location.url}, {where}" if where else f.location.url) from None


def _bad_line(f: InputFile, block: int, convert: Any, parse: Any) -> int | None:
    """The line of the first row of a CSV file with the wrong number of fields, if any.
    (Arrow tells row numbers only when it reads on one thread: only worth it for an error.)"""
    import pyarrow.csv as pacsv

    bad: list[Any] = []

    def invalid(row: Any) -> str:
        bad.append(row)
        return "error"

    try:
        with f.location.fs.open_input_stream(f.location.path) as stream:
            read_options = pacsv.ReadOptions(block_size=block, use_threads=False)
            parse_options = pacsv.ParseOptions(delimiter=parse.delimiter, invalid_row_handler=invalid)
            for _ in pacsv.open_csv(stream, read_options=read_options, parse_options=parse_options,
                                    convert_options=convert):
                pass
    except (pa.ArrowException, OSError):
        pass
    number = getattr(bad[0], "number", None) if bad else None
    return number if number is not None and number >= 0 else None


def _delimiter(f: InputFile, read: ReadOptions) -> str:
    """The delimiter asked for; else tabs for ``.tsv`` files, commas for the rest."""
    if read.csv_delimiter is not None:
        return read.csv_delimiter
    return "\t" if ".tsv" in f.location.name.lower() else ","


def _naming(e: BaseException, where: str) -> BaseException:
    """A :class:`~shuffle_kit.errors.JobError` for ``e``, an input that cannot be read: its
    message prefixed with where it happened; an ``OSError`` stays one (with its errno)."""
    text = " ".join(str(e).split())
    if isinstance(e, FileNotFoundError):
        return InputNotFoundError(f"{where}: {text}", where, e.errno)
    if isinstance(e, OSError):
        return PathError(f"{where}: {text}", where, e.errno)
    return JobError(f"{where}: {text}")


def dictionary_encoded(meta: Any, name: str) -> bool:
    """Whether Parquet column ``name`` is dictionary-encoded in every row group of a file.

    Its data pages then hold only indices (RLE / bit-packed, at most 4 bytes a value); a
    writer that gave up on the dictionary (too many distinct values) wrote the values
    themselves into the pages after the dictionary page.
    """
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        col = next((rg.column(j) for j in range(rg.num_columns) if rg.column(j).path_in_schema == name), None)
        if col is None or not col.has_dictionary_page:
            return False
        start, data = col.dictionary_page_offset, col.data_page_offset
        if not start or data <= start:
            return False
        if col.total_compressed_size - (data - start) > 4 * col.num_values + 4096:
            return False
    return True


def stored_with_dictionary(metas: list[Any], names: Sequence[str]) -> list[str]:
    """Those of columns ``names`` dictionary-encoded in every file (Parquet footers ``metas``)."""
    return [c for c in names if metas and all(dictionary_encoded(m, c) for m in metas)]


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


def _dictionary_columns(metas: list[Any], schema: pa.Schema, exclude: Sequence[str]) -> list[str]:
    """String and binary columns, other than ``exclude``, dictionary-encoded in every file."""
    candidates = [f.name for f in schema if f.name not in exclude and _is_text(f.type)]
    return stored_with_dictionary(metas, candidates)


def _unify(files: list[InputFile], schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for every file, or a ValueError naming the file and column that do not fit."""
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    seen: dict[str, tuple[pa.DataType, str]] = {}
    for f, schema in zip(files, schemas):
        for col in schema:
            first = seen.setdefault(col.name, (col.type, f.location.url))
            try:
                pa.unify_schemas([pa.schema([pa.field(col.name, first[0])]), pa.schema([col])],
                                 promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise JobError(
                    f"the input file {f.location.url!r} does not fit the others: its column {col.name!r} is "
                    f"{col.type}, but {first[0]} in {first[1]!r}"
                ) from None
    raise JobError("the input files' schemas cannot be concatenated")


def _with_partition(batches: Iterator[pa.RecordBatch], f: InputFile, fields: list[pa.Field],
                    dictionary: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """The batches of ``f`` with its hive partition values as columns (dictionary arrays for
    the columns in ``dictionary``: one value repeated)."""
    values = dict(f.partition)
    for batch in batches:
        n = batch.num_rows
        arrays, names = list(batch.columns), list(batch.schema.names)
        for key_field in fields:
            value = pa.scalar(values.get(key_field.name), key_field.type)
            if key_field.name in dictionary and value.is_valid:
                column = pa.DictionaryArray.from_arrays(
                    pa.repeat(pa.scalar(0, pa.int32()), n), pa.array([value], key_field.type)
                )
            elif key_field.name in dictionary:  # (null indices: Arrow cannot unify dictionaries holding a null)
                column = pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], key_field.type))
            else:
                column = pa.repeat(value, n)
            arrays.append(column)
            names.append(key_field.name)
        yield pa.RecordBatch.from_arrays(arrays, names=names)


def _paths_source(data: Any, chunk_bytes: int, dictionary_except: Sequence[str] | None = None,
                  read: ReadOptions = ReadOptions(), columns: Sequence[str] | None = None) -> Source:
    found = discover([data] if isinstance(data, (str, os.PathLike)) else list(data), read.partitioning)
    files = found.files
    if not files:
        raise InputNotFoundError(f"no input files in {data!r}", str(data))
    opened = [_file_schema(f, read) for f in files]
    schemas = [schema for schema, _ in opened]
    schema = _unify(files, schemas)
    # hive columns follow the files' own; a file that holds the column itself keeps its values
    added = [field for field in found.partition_schema if field.name not in schema.names]
    schema = pa.schema(list(schema) + added, metadata=schema.metadata)
    nrows = None
    metas: list[Any] = [meta for _, meta in opened]
    if all(f.format == "parquet" for f in files):
        nrows = sum(m.num_rows for m in metas)
        nbytes = sum(m.row_group(i).total_byte_size for m in metas for i in range(m.num_row_groups))
    else:
        metas = []
        nbytes = sum(f.size for f in files)
    row_bytes = max(1, nbytes // max(1, nrows or 1)) if nrows else 100

    dictionary = [] if dictionary_except is None else _dictionary_columns(metas, schema, dictionary_except)
    if dictionary_except is not None:  # one value per file: a dictionary costs nothing to build
        dictionary += [f.name for f in added if f.name not in dictionary_except and _is_text(f.type)]

    if columns is not None:  # only these columns are read (in this order), a file's own and hive's
        row_bytes = max(1, row_bytes * len(columns) // max(1, len(schema)))
        schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)

    def file_batches(f: InputFile, file_schema: pa.Schema, width: RowWidth) -> Iterator[pa.RecordBatch]:
        stored = [c for c in dictionary if c in file_schema.names]
        own = None if columns is None else [c for c in columns if c in file_schema.names]
        batches = _file_batches(f, width, chunk_bytes, read, stored, file_schema, own)
        fields = [field for field in added if field.name not in file_schema.names and field.name in schema.names]
        batches = _with_partition(batches, f, fields, dictionary) if fields else batches
        return batches if columns is None else (b.select(list(columns)) for b in batches)

    def chunks() -> Iterator[Chunk]:
        width = RowWidth(row_bytes)  # until a batch is read: the stored size, a guess
        batches = itertools.chain.from_iterable(file_batches(f, s, width) for f, s in zip(files, schemas))
        yield from coalesce(batches, schema, chunk_bytes)

    kinds = sorted({f.format for f in files})
    desc = f"{len(files)} {'/'.join(kinds)} file{'s' if len(files) > 1 else ''}"
    return Source(desc, chunks, schema=schema, columns=_arrow_columns(schema), nrows=nrows, nbytes=nbytes,
                  files=files, dictionary=dictionary, parquet_metadata=metas,
                  file_schemas=[pa.schema(list(s) + [a for a in added if a.name not in s.names]) for s in schemas])


# -- iterables -----------------------------------------------------------------------------

def _is_frame(obj: Any) -> bool:
    # pandas is imported only by callers that have frames: without it, nothing is one
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame)


def _iterable_source(data: Iterable, chunk_bytes: int) -> Source:
    it = iter(data)
    try:
        first = next(it)
    except StopIteration:
        raise JobError("the input iterable is empty: nothing to shuffle (and no columns to check)") from None
    if not (_is_frame(first) or isinstance(first, (pa.Table, pa.RecordBatch))):
        raise ArgumentTypeError(
            f"an iterable input must yield pandas DataFrames, pyarrow Tables or RecordBatches, "
            f"not {type(first).__name__}"
        )
    try:
        n = len(data)  # type: ignore[arg-type]
    except TypeError:
        n = None
    first_bytes = _frame_nbytes(first) if _is_frame(first) else first.nbytes
    if _is_frame(first):
        columns = list(first.columns) + [c for c in first.index.names if c is not None]
        schema = None
    else:
        schema = first.schema
        columns = _arrow_columns(schema)

    def chunks() -> Iterator[Chunk]:
        for i, chunk in enumerate(itertools.chain([first], it)):
            if isinstance(chunk, pa.RecordBatch):
                chunk = pa.Table.from_batches([chunk])
            elif not (isinstance(chunk, pa.Table) or _is_frame(chunk)):
                raise ArgumentTypeError(
                    f"chunk {i} of the input is a {type(chunk).__name__}, not a DataFrame or Arrow table"
                )
            yield chunk

    return Source(
        "iterable of frames" if n is None else f"{n} frames", chunks,
        schema=schema, columns=columns,
        nrows=None, nbytes=None if n is None else first_bytes * n,
    )


def open_source(data: Any, chunk_bytes: int = DEFAULT_CHUNK_BYTES, dictionary_except: Sequence[str] | None = None,
                read: ReadOptions = ReadOptions(), columns: Sequence[str] | None = None) -> Source:
    """Recognise ``data`` and return its :class:`Source` (raise TypeError if unsupported).

    ``dictionary_except``: if given, string and binary columns of Parquet inputs that are
    dictionary-encoded in every file are read as Arrow dictionary arrays (4-byte indices
    instead of decoded strings, so splitting moves far fewer bytes), except the columns it
    names. ``Source.schema`` still gives their plain types: the caller casts back.
    ``columns``: for files, read only these columns (Parquet's column projection: the
    others are never decoded, nor fetched); other inputs ignore it. View columns
    (``string_view``, ``binary_view``) are read as their large types (:mod:`.view_types`).
    """
    return _without_views(_open(data, chunk_bytes, dictionary_except, read, columns))


def _without_views(source: Source) -> Source:
    """``source`` with its view columns read as their large types (:mod:`.view_types`)."""
    chunks = source.make_chunks

    def widened() -> Iterator[Chunk]:
        for chunk in chunks():
            yield widened_table(chunk) if isinstance(chunk, pa.Table) else chunk

    schema = None if source.schema is None else widened_schema(source.schema)
    return dataclasses.replace(source, make_chunks=widened, schema=schema)


def _open(data: Any, chunk_bytes: int, dictionary_except: Sequence[str] | None, read: ReadOptions,
          columns: Sequence[str] | None) -> Source:
    if _is_frame(data):
        return _frame_source(data, chunk_bytes)
    if isinstance(data, pa.Table):
        return _table_source(data, chunk_bytes)
    if isinstance(data, pa.RecordBatch):
        return _table_source(pa.Table.from_batches([data]), chunk_bytes, "RecordBatch")
    if isinstance(data, pa.RecordBatchReader):
        return _reader_source(data, chunk_bytes)
    if isinstance(data, (str, os.PathLike)):
        return _paths_source(data, chunk_bytes, dictionary_except, read, columns)
    ds = sys.modules.get("pyarrow.dataset")  # not imported (it imports pandas): then no Dataset exists
    if ds is not None and isinstance(data, ds.Dataset):
        return _dataset_source(data, chunk_bytes)
    if polars_frames.is_polars_frame(data):
        return _polars_source(data, chunk_bytes)
    if polars_frames.is_lazy_frame(data):
        return _lazy_source(data, chunk_bytes)
    pd = sys.modules.get("pandas")
    series = (pd.Series,) if pd is not None else ()
    refused = isinstance(data, (*series, dict, bytes, bytearray, memoryview))
    # the Arrow PyCapsule protocol's own declaration (a pandas Series has one too: a column)
    if not refused and hasattr(type(data), "__arrow_c_stream__"):
        return _stream_source(data, chunk_bytes)
    if refused or not isinstance(data, Iterable):
        raise ArgumentTypeError(
            f"cannot shuffle a {type(data).__name__}: expected a pandas DataFrame, an iterable of "
            "DataFrames, a pyarrow Table, RecordBatchReader or dataset, a polars DataFrame or LazyFrame, "
            "an object with __arrow_c_stream__, or Parquet/CSV/Arrow paths"
        )
    paths = path_list(data)
    if paths:
        return _paths_source(paths, chunk_bytes, dictionary_except, read, columns)
    return _iterable_source(data, chunk_bytes)


def path_list(data: Any) -> list[str] | None:
    """``data`` as a list of paths or URLs, or None if it is data rather than file names.

    >>> path_list('a.parquet'), path_list(['a', 'b']), path_list([b'x']) is None
    (['a.parquet'], ['a', 'b'], True)
    """
    if isinstance(data, (str, os.PathLike)):
        return [os.fspath(data)]
    if isinstance(data, (list, tuple)) and all(isinstance(x, (str, os.PathLike)) for x in data):
        return [os.fspath(x) for x in data]
    return None
