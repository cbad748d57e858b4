"""Hive-style partition paths (``col=value/``) that no value can escape.

A key value becomes one path segment ``name=encoded``: the column name and the value are
percent-encoded (RFC 3986: everything but ``A-Z a-z 0-9 - _ . ~`` becomes ``%XX`` of its
UTF-8 bytes), so ``/``, ``\\``, ``%``, ``=``, NUL and every control character are escaped;
and the segment always starts with ``name=``, so it can never be ``.`` or ``..``. Nulls
(None, NaN, NaT) are ``__HIVE_DEFAULT_PARTITION__``, as in Hive, Spark and pyarrow; a
string that is literally ``__HIVE_DEFAULT_PARTITION__`` is escaped (``%5F_HIVE...``) so its
rows get their own directory, although hive readers, which decode before comparing, read
it back as null.
The empty string is ``name=`` (pyarrow reads it back as ``''``).

Readers that decode percent-encoding (pyarrow's ``partitioning="hive"``, polars, DuckDB,
Spark) read the values back.

>>> segment('city', '../x'), segment('city', 'a/b'), segment('city', ''), segment('n', None)
('city=..%2Fx', 'city=a%2Fb', 'city=', 'n=__HIVE_DEFAULT_PARTITION__')
>>> segment('k', 3), segment('f', 0.5), segment('b', True), segment('f', float('nan'))
('k=3', 'f=0.5', 'b=true', 'f=__HIVE_DEFAULT_PARTITION__')
>>> value_path(['a', 'b'], ('x y', 2))
'a=x%20y/b=2'
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

NULL = "__HIVE_DEFAULT_PARTITION__"
MAX_SEGMENT = 255  # bytes in a file name on the usual file systems


def encode_name(name: Any) -> str:
    """A column name as a path-safe string (percent-encoded)."""
    text = str(name)
    if not text:
        raise ValueError("a key column with an empty name cannot be a hive partition directory")
    return quote(text, safe="")


def encode_value(value: Any) -> str:
    """A key value as it appears after ``name=`` (see the module docstring)."""
    if value is None:
        return NULL
    if isinstance(value, float) and math.isnan(value):
        return NULL
    try:
        import pandas as pd

        if value is pd.NaT or value is pd.NA:
            return NULL
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, bytes):
        return quote(value, safe="")
    elif isinstance(value, _dt.datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, (_dt.date, _dt.time)):
        text = value.isoformat()
    else:
        text = str(value)
    if text == NULL:  # a string equal to the null marker: escape one character
        return "%5F" + quote(text[1:], safe="")
    return quote(text, safe="")


def segment(name: Any, value: Any) -> str:
    """One directory name, ``name=value``, safe to join under any directory."""
    seg = f"{encode_name(name)}={encode_value(value)}"
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
