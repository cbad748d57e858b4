"""Key columns: the checks of the arguments that name them, and a chunk as an Arrow table
with the Arrow names of its keys (every entry point: ``shuffle()``, ``groupby_shuffle()``,
the partition job and the dask integration).

A pandas chunk goes through the exact conversion of :mod:`shuffle_kit.frames`, so every
dtype reads back as it was; keys may be columns or index levels.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ArgumentTypeError, JobError, missing_column
from ..frames import frame_to_table, pickled_fields, unpickle
from ..io.readers import Chunk
from .hashing import check_hashable


def normalize_on(on: Any) -> list:
    """The key columns ``on`` as a list, checked: at least one, hashable, none repeated.

    >>> normalize_on('k'), normalize_on(('a', 'b'))
    (['k'], ['a', 'b'])
    """
    if isinstance(on, (list, tuple)):
        keys = list(on)
    else:
        keys = [on]
    if not keys:
        raise JobError("on: give at least one key column")
    for k in keys:
        if not isinstance(k, Hashable) or isinstance(k, (list, dict, set)):
            raise ArgumentTypeError(f"on: column names must be hashable, not {type(k).__name__}")
    if len(set(map(repr, keys))) != len(keys):
        raise JobError(f"on: repeated column name in {keys!r}")
    return keys


def check_npartitions(npartitions: Any) -> None:
    """Refuse an ``npartitions`` that is not None or an int from 1 to 2**24.

    >>> check_npartitions(0)
    Traceback (most recent call last):
    shuffle_kit.errors.JobError: npartitions must be at least 1, not 0
    """
    if npartitions is None:
        return
    if isinstance(npartitions, bool) or not isinstance(npartitions, (int, np.integer)):
        raise ArgumentTypeError(f"npartitions must be an int, not {type(npartitions).__name__}")
    if npartitions < 1:
        raise JobError(f"npartitions must be at least 1, not {npartitions}")
    if npartitions > 1 << 24:
        raise JobError(f"npartitions={npartitions} is more than {1 << 24} partitions")


def check_partitioner(partitioner: Any, names: tuple[str, ...] = ("hash", "dask", "range")) -> None:
    """Refuse a ``partitioner`` other than one of ``names`` or a function (a caller that
    has no range partitioning gives ``names`` without 'range').

    >>> check_partitioner('range')
    >>> check_partitioner('range', names=('hash', 'dask'))
    Traceback (most recent call last):
    shuffle_kit.errors.JobError: partitioner must be 'hash', 'dask' or a function, not 'range'
    """
    if partitioner in names or callable(partitioner):
        return
    quoted = [repr(n) for n in names]
    raise JobError(f"partitioner must be {', '.join(quoted)} or a function, not {partitioner!r}")


def check_columns(on: list, columns: list | None) -> None:
    """Refuse a key of ``on`` that is not among ``columns`` (None: not known yet), naming it
    and the near names."""
    if columns is None:
        return
    known = set(map(repr, columns)) | {repr(str(c)) for c in columns}
    for k in on:
        if repr(k) not in known:
            raise missing_column(k, columns)


def keeps_index(df: pd.DataFrame, on: list, keep_index: bool | None) -> bool:
    """Whether the rows of ``df`` keyed by ``on`` keep its index when they move: as
    ``keep_index`` says, else (None) unless it is an unnamed RangeIndex; always when a
    key is an index level.

    >>> keeps_index(pd.DataFrame({'k': [1]}), ['k'], None), keeps_index(pd.DataFrame({'k': [1]}), ['k'], True)
    (False, True)
    """
    if any(k not in df.columns and k in df.index.names for k in on):
        return True
    if keep_index is not None:
        return keep_index
    # an unnamed RangeIndex carries no information after rows move: leave it out
    return not (isinstance(df.index, pd.RangeIndex) and df.index.name is None)


def to_table(chunk: Chunk, on: list, keep_index: bool | None = None) -> tuple[pa.Table, list[str], bool]:
    """(Arrow table, Arrow names of the key columns, index dropped?) for one chunk.

    DataFrames go through the codec's exact conversion (``frame_to_table``), so every
    dtype reads back as it was. A kept RangeIndex is stored as values, since its pieces
    are no longer ranges; a dropped one becomes a fresh RangeIndex per partition.
    """
    if isinstance(chunk, pa.Table):
        return chunk, field_names(chunk, on), False
    df = chunk
    columns = set(df.columns)
    keep = keeps_index(df, on, keep_index)
    if not keep:
        df = df.set_axis(pd.RangeIndex(len(df)), axis=0)
    elif isinstance(df.index, pd.RangeIndex):
        # (the values are a fresh array: the Index may own it rather than copy it)
        df = df.set_axis(pd.Index(np.asarray(df.index), name=df.index.name, copy=False), axis=0)
    table = frame_to_table(df)  # raises TypeError naming a column it cannot store
    names = table.column_names
    fields = []
    for k in on:
        if k in columns:
            loc = df.columns.get_loc(k)
            if not isinstance(loc, (int, np.integer)):
                raise JobError(f"key column {k!r} appears more than once in the input")
            fields.append(names[loc])
        elif k in df.index.names:
            fields.append(f"__index_level_{list(df.index.names).index(k)}__")
        else:
            raise missing_column(k, list(df.columns))
    return table, fields, not keep


def field_names(table: pa.Table, on: list) -> list[str]:
    """The Arrow names of the key columns ``on`` in ``table`` (pandas' non-string column
    names become strings in Arrow; an index level has a name of its own).

    >>> field_names(pa.table({'1': [0], 'k': [0]}), [1, 'k'])
    ['1', 'k']
    """
    names = table.column_names
    out = []
    for k in on:
        if isinstance(k, str) and k in names:
            out.append(k)
        elif str(k) in names:  # pandas' non-string column names become strings in Arrow
            out.append(str(k))
        else:
            meta = table.schema.pandas_metadata or {}
            field = next(
                (
                    c.get("field_name") for c in meta.get("columns", [])
                    if c.get("name") == k and c.get("field_name") in names
                ),
                None,
            )
            if field is None:
                raise missing_column(k, names)
            out.append(field)
    return out


def check_key_types(table: pa.Table, fields: list[str]) -> None:
    """Refuse key columns the hash cannot take (lists, maps, unions), naming the column."""
    for f in fields:
        check_hashable(table.schema.field(f).type, f)


def drop_null_keys(table: pa.Table, fields: list[str]) -> pa.Table:
    """``table`` without the rows whose key is null in any of ``fields`` (None, NaN, NaT,
    pd.NA, and their Python objects), as pandas' ``dropna`` sees them.

    >>> drop_null_keys(pa.table({'k': [1.0, float('nan'), None, 2.0]}), ['k'])['k'].to_pylist()
    [1.0, 2.0]
    """
    mask = None
    pickled = pickled_fields(table.schema)
    for f in fields:
        col = table.column(f)
        if f in pickled:  # objects: NA, NaT, NaN... are nulls too, as pandas sees them
            null = _null_objects(col)
        else:
            null = pc.is_null(col, nan_is_null=True) if _floating(col.type) else pc.is_null(col)
        mask = null if mask is None else pc.or_(mask, null)
    if mask is None or not pc.any(mask).as_py():
        return table
    return table.filter(pc.invert(mask))


def _null_objects(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whether each pickled object is a null (``pd.isna`` of a scalar), read once per
    distinct pickle."""
    encoded = pc.dictionary_encode(col.combine_chunks())
    distinct = [pd.api.types.is_scalar(v) and bool(pd.isna(v)) for v in unpickle(encoded.dictionary)]
    null = pa.array(distinct, pa.bool_()).take(encoded.indices)
    return pa.chunked_array([pc.fill_null(null, True)])


def _floating(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or (pa.types.is_dictionary(t) and pa.types.is_floating(t.value_type))
