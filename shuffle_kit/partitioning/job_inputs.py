"""Opening a partition job's input: files (each checked: given once, holding the key
columns) or data in memory or in a stream, and checks of the columns the job sorts by."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import pyarrow as pa

from ..errors import JobError, missing_column, one_line, prefixed
from ..io.readers import Source
from .options import Options


def open_inputs(opts: Options, chunk_bytes: int) -> Source:
    source = _open_data(opts, chunk_bytes) if opts.data is not None else _open_files(opts, chunk_bytes)
    columns = source.columns or []
    if opts.by_value and len(opts.on) == len(columns):
        raise JobError("--by-value: every column is a key column, so the files would hold no data")
    if opts.by_range and opts.data is not None and not _rereadable(opts.data):
        raise JobError(
            f"--by-range reads the input twice (its keys first, for the boundaries of the ranges), and a "
            f"{source.description} can be read only once: give a DataFrame, an Arrow Table or files"
        )
    return source


def _rereadable(data: object) -> bool:
    """Whether ``data`` (an input that is not files) can be read again: held in memory, or a
    dataset of files, rather than a stream or a query that would run again."""
    from ..io.polars_frames import is_polars_frame

    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        return True
    ds = sys.modules.get("pyarrow.dataset")
    return (isinstance(data, (pa.Table, pa.RecordBatch)) or is_polars_frame(data)
            or (ds is not None and isinstance(data, ds.Dataset)))


def open_keys(opts: Options, source: Source, chunk_bytes: int) -> Source:
    """The input's key columns alone, for a first pass over them (``by_range``'s sample):
    for files, only those columns are read; for data in memory, only they are converted.
    ``source``: the input as :func:`open_inputs` opened it."""
    from ..io.polars_frames import is_polars_frame
    from ..io.readers import frame_as_arrow, open_source

    on = list(opts.on)
    data = opts.data
    try:
        if data is None:
            return open_source(list(opts.inputs), chunk_bytes, read=opts.read, columns=on)
        pd = sys.modules.get("pandas")
        if pd is not None and isinstance(data, pd.DataFrame):
            named = [n for n in data.index.names if n is not None]
            return frame_as_arrow((data.reset_index(level=named) if named else data)[on], chunk_bytes)
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if isinstance(data, pa.Table) and all(k in data.column_names for k in on):
            return open_source(data.select(on), chunk_bytes)
        if is_polars_frame(data):
            return open_source(data.select(on), chunk_bytes)
    except JobError:
        raise
    except Exception as e:
        raise JobError(f"cannot read the input's key columns: {one_line(e)}") from None
    return source  # (read whole again; the first pass takes its key columns)


def _open_files(opts: Options, chunk_bytes: int) -> Source:
    from ..io.readers import open_source

    on = list(opts.on)
    try:
        # (hash partitions: string columns stay dictionary-encoded from the files to the files)
        source = open_source(list(opts.inputs), chunk_bytes, dictionary_except=None if opts.by_value else on,
                             read=opts.read)
    except JobError:
        raise
    except Exception as e:
        raise JobError(one_line(e)) from None
    first: dict[tuple[str, str], str] = {}
    for f in source.files:
        where = os.path.realpath(f.location.path) if f.location.local else f.location.path
        twice = first.get((f.location.fs.type_name, where))
        if twice is not None:
            also = f" (also as {f.location.url!r})" if twice != f.location.url else ""
            raise JobError(f"the input file {twice!r} is given twice{also}: its rows would be read twice")
        first[(f.location.fs.type_name, where)] = f.location.url
    for f, schema in zip(source.files, source.file_schemas):  # a file without a key: null keys
        absent = [k for k in on if k not in schema.names]
        if absent:
            raise missing_column(absent[0], schema.names, f"the input file {f.location.url!r}", show=str)
    return source


def _open_data(opts: Options, chunk_bytes: int) -> Source:
    """The source of an input that is not files (read once, so opened once)."""
    from ..io.readers import frame_as_arrow, open_source

    pd = sys.modules.get("pandas")  # (without pandas loaded, nothing is a pandas frame)
    try:
        if pd is not None and isinstance(opts.data, pd.DataFrame):
            source = frame_as_arrow(opts.data, chunk_bytes)
        else:
            source = open_source(opts.data, chunk_bytes)
    except JobError as e:
        raise prefixed(e, "cannot read the input: ") from None
    except Exception as e:
        raise JobError(f"cannot read the input: {one_line(e)}") from None
    if source.schema is None:  # an iterable of pandas frames: no Arrow schema up front
        raise JobError(
            f"partition() takes files, a DataFrame or Arrow data (a polars frame, a pyarrow Table or "
            f"dataset, an Arrow C stream), not a {source.description}: concatenate it, or give a pyarrow "
            f"RecordBatchReader"
        )
    columns = source.columns or []
    missing = [k for k in opts.on if k not in columns]
    if missing:
        raise missing_column(missing[0], columns, show=str)
    return source


def check_sort_by(columns: Sequence[str], schema: pa.Schema, option: str = "--sort-by") -> None:
    from .sorting import sortable

    for c in columns:
        if c not in schema.names:
            raise missing_column(c, schema.names, what=f"{option} column", show=str)
        if not sortable(schema.field(c).type):
            raise JobError(f"{option} column {c!r} holds {schema.field(c).type}, which has no order")


def dictionary_keys(source: Source, on: list[str]) -> list[str]:
    """Key columns to store with a dictionary: those the Parquet inputs store with one (their
    values repeat; a hash partition then holds a fraction of them). Keys that are all
    distinct would make the writer build a dictionary, give up and write a larger file."""
    from ..io.readers import stored_with_dictionary

    return stored_with_dictionary(source.parquet_metadata, on)


# a string column is stored without a dictionary when at least this share of its values
# among the input's first DISTINCT_SAMPLE_ROWS rows (at least MIN_DISTINCT_SAMPLE_ROWS of them)
# differ: a row group of that many rows would then hold a dictionary of most of its values,
# which saves little room for hashing every value (and past the writer's page limit it is
# given up)
DISTINCT_SHARE = 0.5
DISTINCT_SAMPLE_ROWS = 1 << 16
MIN_DISTINCT_SAMPLE_ROWS = 1 << 12


def distinct_strings(first: pa.Table | None, exclude: Sequence[str] = ()) -> list[str]:
    """String and binary columns of ``first`` (the input's first chunk), other than
    ``exclude``, whose first values are mostly distinct (:data:`DISTINCT_SHARE`):
    columns to write as values. A Parquet writer asked to store them with a dictionary
    hashes every value into a dictionary for each row group, one that holds most of the
    group's values and so saves little room (past its page limit, the writer gives it up
    and starts again from the values, the work lost).

    What is looked at is the input's first rows, whatever the thread count; a column with
    too few values there to tell (:data:`MIN_DISTINCT_SAMPLE_ROWS`, nulls aside) is left as
    it is.

    >>> t = pa.table({'id': [f'u{i}' for i in range(5000)], 'w': [f'w{i % 50}' for i in range(5000)],
    ...               'half': [f'h{i // 2}' for i in range(5000)], 'none': pa.nulls(5000, pa.string())})
    >>> distinct_strings(t), distinct_strings(t.slice(0, 100))
    (['id', 'half'], [])
    """
    import pyarrow.compute as pc

    if not isinstance(first, pa.Table) or first.num_rows < MIN_DISTINCT_SAMPLE_ROWS:
        return []
    sample = first.slice(0, DISTINCT_SAMPLE_ROWS)
    names = []
    for f in sample.schema:
        t = f.type
        text = (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
                or pa.types.is_binary(t) or pa.types.is_large_binary(t))
        if not text or f.name in exclude:
            continue
        column = sample.column(f.name)
        values = len(column) - column.null_count
        if values >= MIN_DISTINCT_SAMPLE_ROWS and pc.count_distinct(column).as_py() >= DISTINCT_SHARE * values:
            names.append(f.name)
    return names
