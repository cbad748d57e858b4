"""The rows an inner join pairs, as row positions of each side, in pandas' order.

Both sides' key values are coded together (Arrow's ``dictionary_encode`` of each key
column over the left's values then the right's: equal values, equal codes; the codes of
several columns combined into one; an integer column spanning few values is its own code),
and each left row is paired with the right rows of its code: found by a table of one row
per code when no code has two, else by the right's rows ordered by code (a stable sort). The pairs come in pandas'
``merge(how="inner", sort=False)`` order: the left's rows in order, each with its matches
in the right's order. Only NumPy and Arrow work is done, which releases the GIL, and no
value is converted to Python or pandas.

Keys holding nulls are not coded here (None): pandas matches a null with a null (and a
float NaN with a null), which a caller keeps by joining such a pair with pandas.

>>> import pyarrow as pa
>>> left, right = [pa.array([3, 1, 3, 2])], [pa.array([3, 3, 9, 1])]
>>> [p.tolist() for p in inner_positions(left, right)]
[[0, 0, 1, 2, 2], [0, 1, 3, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import arrow_numpy
from .stable_sort import stable_argsort

_WIDEST = 1 << 62  # combined codes stay below this; beyond, they are renumbered densely

Column: TypeAlias = "pa.Array | pa.ChunkedArray"


def inner_positions(left: Sequence[Column], right: Sequence[Column]) -> tuple[np.ndarray, np.ndarray] | None:
    """(left positions, right positions) of the rows an inner join of the key columns
    ``left`` and ``right`` (one per key, each the same type on both sides) pairs, in
    pandas' order; None if a key holds a null."""
    nleft = len(left[0])
    if not nleft or not len(right[0]):
        if any(c.null_count for c in (*left, *right)):
            return None
        return np.empty(0, np.int64), np.empty(0, np.int64)
    coded = _codes(left, right)
    if coded is None:
        return None
    codes, ncodes = coded
    lcodes, rcodes = codes[:nleft], codes[nleft:]
    counts = np.bincount(rcodes, minlength=ncodes)
    if counts.max(initial=0) <= 1:  # many-to-one (or one-to-one): each code's right row, no sort
        row_of = np.full(ncodes, -1, dtype=np.int64)
        row_of[rcodes] = np.arange(len(rcodes), dtype=np.int64)
        found = row_of[lcodes]
        lpos = np.flatnonzero(found >= 0)
        return lpos, found[lpos]
    starts = np.cumsum(counts) - counts
    by_code = stable_argsort(rcodes)  # right rows by code, in their order within one
    matches = counts[lcodes]
    lpos = np.repeat(np.arange(nleft, dtype=np.int64), matches)
    first_out = np.cumsum(matches) - matches
    within = np.arange(len(lpos), dtype=np.int64) - np.repeat(first_out, matches)
    return lpos, by_code[np.repeat(starts[lcodes], matches) + within]


def _codes(left: Sequence[Column], right: Sequence[Column]) -> tuple[np.ndarray, int] | None:
    """One int64 code per row (the left's rows, then the right's) such that rows with
    equal keys have equal codes, and the number of codes; None if a key holds a null."""
    combined: np.ndarray | None = None
    ncodes = 1
    for lcol, rcol in zip(left, right):
        if lcol.null_count or rcol.null_count:
            return None
        codes, width = _column_codes(pa.concat_arrays([*_chunks(lcol), *_chunks(rcol)]))
        if combined is None:
            combined, ncodes = codes, width
            continue
        if ncodes * width >= _WIDEST:  # renumber densely first: codes then fit again
            combined, ncodes = _dense(combined)
        combined = combined * width + codes
        ncodes *= width
    assert combined is not None
    if ncodes > 2 * len(combined):  # sparse combinations: dense codes keep the counts small
        combined, ncodes = _dense(combined)
    return combined, max(ncodes, 1)


def _column_codes(values: pa.Array) -> tuple[np.ndarray, int]:
    """Codes of one key column's values (no nulls), and how many there may be: an integer
    column whose values span no more than a few times its length is its own code (offset
    from its smallest value: no hashing); any other is dictionary-encoded."""
    if pa.types.is_integer(values.type) and len(values):
        numbers = arrow_numpy.values(values, values.type.to_pandas_dtype())
        low, high = int(numbers.min()), int(numbers.max())
        if high - low <= 4 * len(values):
            return numbers.astype(np.int64) - low, high - low + 1
    encoded = pc.dictionary_encode(values)
    indices = encoded.indices
    return arrow_numpy.values(indices, indices.type.to_pandas_dtype()).astype(np.int64), len(encoded.dictionary)


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    dense, uniques = pd.factorize(codes)
    return dense.astype(np.int64, copy=False), len(uniques)


def _chunks(column: Column) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]
