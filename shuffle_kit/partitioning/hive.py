"""Hive-style partition paths (``col=value/``) that no value can escape, named as
``pyarrow.dataset`` names them.

A key value is written as Arrow writes it as a string (``pyarrow.compute.cast(value,
pa.string())``): ``1``, ``0.5`` and ``1`` for the float ``1.0``, ``1e+20``, ``true``,
``2024-05-01``, ``2024-01-02 03:04:05.000000`` for a microsecond timestamp (the digits its
unit has), and a timestamp with a time zone in UTC with a ``Z``, as pyarrow's hive
partitioning does; so appending to a dataset pyarrow wrote puts equal values in the same
directory. The one difference: -0.0 is ``0``, as 0.0 (pyarrow names it ``-0``, a directory
apart from its equal 0.0). That text and the column name are then percent-encoded (RFC 3986: everything but
``A-Z a-z 0-9 - _ . ~`` becomes ``%XX`` of its UTF-8 bytes, as pyarrow's ``segment_encoding
="uri"``), so ``/``, ``\\``, ``%``, ``=``, NUL and every control character are escaped; and
the segment always starts with ``name=``, so it can never be ``.`` or ``..``. Binary values
are percent-encoded bytes.

Nulls (None, NaN, NaT) are ``__HIVE_DEFAULT_PARTITION__``, as in Hive, Spark and pyarrow
(pyarrow gives NaN a directory ``nan`` of its own; here NaN and null are one key, as in
pandas' groupby); a string that is literally ``__HIVE_DEFAULT_PARTITION__`` is escaped
(``%5F_HIVE...``) so its rows get their own directory, although hive readers, which decode
before comparing, read it back as null. The empty string is ``name=`` (pyarrow reads it
back as ``''``). Column names are escaped too (pyarrow leaves them as they are).

Readers that decode percent-encoding (pyarrow's ``partitioning="hive"``, polars, DuckDB,
Spark) read the values back.

>>> segment('city', '../x'), segment('city', 'a/b'), segment('city', ''), segment('n', None)
('city=..%2Fx', 'city=a%2Fb', 'city=', 'n=__HIVE_DEFAULT_PARTITION__')
>>> segment('k', 3), segment('f', 0.5), segment('f', 1.0), segment('b', True), segment('f', float('nan'))
('k=3', 'f=0.5', 'f=1', 'b=true', 'f=__HIVE_DEFAULT_PARTITION__')
>>> segment('f', -0.0), value_paths(['k'], pa.table({'k': pa.array([2**64 - 1], pa.uint64())}))
('f=0', ['k=18446744073709551615'])
>>> value_path(['a', 'b'], ('x y', 2))
'a=x%20y/b=2'
>>> import datetime as dt
>>> value_paths(['t'], pa.table({'t': pa.array([dt.datetime(2024, 1, 2, 3, 4)], pa.timestamp('s', 'Europe/Paris'))}))
['t=2024-01-02%2003%3A04%3A00Z']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import pyarrow as pa

NULL = "__HIVE_DEFAULT_PARTITION__"
MAX_SEGMENT = 255  # bytes in a file name on the usual file systems


def encode_name(name: Any) -> str:
    """A column name as a path-safe string (percent-encoded)."""
    text = str(name)
    if not text:
        raise ValueError("a key column with an empty name cannot be a hive partition directory")
    return quote(text, safe="")


def value_texts(values: pa.Array | pa.ChunkedArray) -> list[str | bytes | None]:
    """Each value as Arrow writes it as a string (see the module), None for nulls and NaN,
    bytes for binary values."""

    t = values.type
    if pa.types.is_dictionary(t):
        return value_texts(values.cast(t.value_type))
    if pa.types.is_null(t):
        return [None] * len(values)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return values.to_pylist()
    if pa.types.is_floating(t):
        values = float_key(values)
    elif pa.types.is_timestamp(t) and t.tz is not None:
        values = values.cast(pa.timestamp(t.unit, "UTC"))
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)):
        try:
            values = values.cast(pa.string())
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            return [None if v is None else str(v) for v in values.to_pylist()]
    return values.to_pylist()


def float_key(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A float column as a key: NaN as null, ``-0.0`` as ``0.0`` (equal values, one key
    and one name); any other column as it is.

    >>> float_key(pa.array([-0.0, float('nan'), 1.5])).to_pylist()
    [0.0, None, 1.5]
    """
    import pyarrow.compute as pc

    t = column.type
    if pa.types.is_float16(t):  # Arrow compares no half floats: through float32, which holds each exactly
        return float_key(column.cast(pa.float32())).cast(t)
    if not pa.types.is_floating(t):
        return column
    zero = pa.scalar(0, t)
    column = pc.if_else(pc.equal(column, zero), zero, column)
    return pc.if_else(pc.is_nan(column), pa.scalar(None, t), column)


def encode_text(text: str | bytes | None) -> str:
    """A value's text (from :func:`value_texts`) as it appears after ``name=``."""
    if text is None:
        return NULL
    if isinstance(text, bytes):
        return quote(text, safe="")
    if text == NULL:  # a string equal to the null marker: escape one character
        return "%5F" + quote(text[1:], safe="")
    return quote(text, safe="")


def encode_value(value: Any) -> str:
    """A Python key value as it appears after ``name=`` (its Arrow type inferred)."""
    try:
        import pandas as pd

        if value is pd.NaT or value is pd.NA:
            return NULL
    except ImportError:  # pragma: no cover
        pass
    return encode_text(value_texts(pa.array([value]))[0])


def segment(name: Any, value: Any, encoded: str | None = None) -> str:
    """One directory name, ``name=value``, safe to join under any directory (``encoded``:
    the value already encoded)."""
    seg = f"{encode_name(name)}={encode_value(value) if encoded is None else encoded}"
    if len(seg.encode()) > MAX_SEGMENT:
        shown = str(value)[:40]
        raise ValueError(
            f"the value {shown!r}... of key column {name!r} is too long for a directory name "
            f"({len(seg.encode())} bytes encoded, at most {MAX_SEGMENT}); partition by hash instead"
        )
    return seg


def value_path(names: Sequence[Any], values: Sequence[Any]) -> str:
    """The relative directory of one key value (one segment per key column)."""
    return "/".join(segment(n, v) for n, v in zip(names, values))


def value_paths(names: Sequence[Any], keys: pa.Table) -> list[str]:
    """The relative directory of each row of ``keys`` (the key columns ``names``)."""
    columns = []
    for name in names:
        texts = value_texts(keys.column(name))
        columns.append([segment(name, t, encode_text(t)) for t in texts])
    return ["/".join(parts) for parts in zip(*columns)] if columns else []
