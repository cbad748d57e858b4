"""Stable orders from integer codes: key columns as unsigned integers that sort as the keys do.

A key column in its comparable form (:meth:`~shuffle_kit.kernels.ranges.KeyOrder.columns`'
values: NaN already null, ``-0.0`` already ``0.0``, a categorical as its categories'
positions) becomes one unsigned code per row (:func:`column_codes`) such that a row sorts
before another exactly when its code is smaller, the direction and the place of NAs
included:

- integers, booleans and instants: the value less the column's least value;
- floats: their IEEE-754 bits turned so that unsigned order is numeric order, less the
  least;
- strings and binaries holding few distinct values: the rank of each value among the
  column's distinct values (Arrow sorts only those); a column whose values are mostly
  distinct has no such codes, and is left to Arrow's sort;
- descending: the largest code less the code; NA: one more code, after every value or
  before every value.

The codes of several key columns are joined into one 64-bit code when their widths fit
(the first column in the highest bits), whose stable order
(:func:`~shuffle_kit.kernels.stable_sort.stable_argsort`) is then the keys' stable order:
equal codes are equal keys.

>>> import pyarrow as pa
>>> codes, count = column_codes(pa.array([3, None, 1, 3]), ascending=True, nulls_last=True)
>>> codes.tolist(), count
([2, 3, 0, 2], 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_numpy import arrow_array, bool_values, numbers
from .arrow_numpy import values as buffer_values

CODE_BITS = 64
# rows whose distinct values decide whether a string column is ranked (few distinct
# values) or left to Arrow's sort (mostly distinct: ranking would sort them all anyway)
DISTINCT_SAMPLE_ROWS = 1 << 16
DISTINCT_SAMPLE_SHARE = 0.25  # ranked when the sample's distinct values are at most this share
PARALLEL_ROWS = 1 << 20  # fewer rows of a key without codes are sorted on one thread
SAMPLE_ROWS_PER_THREAD = 1000  # keys sampled per thread to cut the key ranges sorted at once
_SIGN = np.uint64(1 << 63)


def column_codes(values: pa.Array, ascending: bool, nulls_last: bool) -> tuple[np.ndarray, int] | None:
    """(codes, count): uint64 codes in ``range(count)`` that order the rows of ``values``
    (a comparable key column, see the module docstring) in the given direction, NAs
    (nulls) last or first; None for a type without cheap codes or a string column of
    mostly distinct values.

    >>> column_codes(pa.array([0.5, -2.0, None]), ascending=False, nulls_last=False)[0].argsort().tolist()
    [2, 0, 1]
    >>> column_codes(pa.array(['b', 'a', 'b']), ascending=True, nulls_last=True)
    (array([1, 0, 1], dtype=uint64), 2)
    """
    found = _value_codes(values)
    if found is None:
        return None
    codes, count = found
    if values.null_count and count >= 1 << CODE_BITS:  # no code left for NA
        return None
    if not ascending and count:
        codes = np.uint64(count - 1) - codes
    if values.null_count:
        nulls = bool_values(values.is_null())
        if not nulls_last:
            codes = codes + np.uint64(1)
        codes[nulls] = count if nulls_last else 0
        count += 1
    return codes, count


def _value_codes(values: pa.Array) -> tuple[np.ndarray, int] | None:
    """Ascending codes of the non-null values (anything at nulls), and their count."""
    t = values.type
    if pa.types.is_null(t):
        return np.zeros(len(values), dtype=np.uint64), 0
    if pa.types.is_boolean(t):
        values, t = values.cast(pa.uint8()), pa.uint8()
    elif pa.types.is_interval(t):
        return None
    elif pa.types.is_temporal(t):
        values = values.cast(pa.int64() if t.bit_width == 64 else pa.int32())
        t = values.type
    if pa.types.is_signed_integer(t) and not values.null_count:
        return _signed_codes(numbers(values))
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return _shifted(_unsigned(values))
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _ranks(values)
    return None


def _unsigned(values: pa.Array) -> np.ndarray:
    """The values as uint64 in the same order (nulls as the least value, so that they
    widen nothing)."""
    t = values.type
    if values.null_count:
        values = values.fill_null(pc.min(values)) if values.null_count < len(values) else values.fill_null(0)
    v = numbers(values)
    if pa.types.is_floating(t):
        bits = v.astype(np.float64).view(np.uint64)  # (a copy: changed in place below)
        # negative floats: every bit flipped (larger magnitude, smaller); others: the sign set
        flip = bits >> np.uint64(63)
        flip *= np.uint64((1 << 63) - 1)
        flip |= _SIGN
        bits ^= flip
        return bits
    if pa.types.is_signed_integer(t):
        return v.astype(np.int64, copy=False).view(np.uint64) ^ _SIGN
    return v.astype(np.uint64)  # (a copy: changed in place by _shifted)


def _signed_codes(v: np.ndarray) -> tuple[np.ndarray, int]:
    """Signed integers less their least value, as uint64 (the difference wraps into place:
    it is below 2**64), found in three passes rather than four."""
    if not len(v):
        return v.astype(np.uint64), 0
    v = v.astype(np.int64, copy=False)
    lo, hi = int(v.min()), int(v.max())
    return v.view(np.uint64) - np.uint64(lo % (1 << 64)), hi - lo + 1


def _shifted(u: np.ndarray) -> tuple[np.ndarray, int]:
    """``u`` less its least value, and the count of codes up to its largest."""
    if not len(u):
        return u, 0
    lo, hi = int(u.min()), int(u.max())
    u -= np.uint64(lo)
    return u, hi - lo + 1


def _ranks(values: pa.Array) -> tuple[np.ndarray, int] | None:
    """Each string's rank among the distinct strings, if they are few."""
    n = len(values)
    if n > DISTINCT_SAMPLE_ROWS:
        step = n // DISTINCT_SAMPLE_ROWS
        sample = values.take(arrow_array(np.arange(0, step * DISTINCT_SAMPLE_ROWS, step)))
        if len(pc.unique(sample)) > DISTINCT_SAMPLE_SHARE * DISTINCT_SAMPLE_ROWS:  # (count_distinct is slower)
            return None
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    if not len(distinct):  # nulls only
        return np.zeros(n, dtype=np.uint64), 0
    rank = np.empty(len(distinct), dtype=np.uint64)
    rank[buffer_values(pc.sort_indices(distinct), np.int64)] = np.arange(len(distinct), dtype=np.uint64)
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(0)
    return rank[numbers(indices)], len(distinct)


def joined_codes(columns: Sequence[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int] | None:
    """The codes of several key columns (first column first) as one code per row, and
    their count; None when they need more than 64 bits together.

    >>> a, b = (np.array([1, 0, 1], dtype=np.uint64), 2), (np.array([0, 2, 1], dtype=np.uint64), 3)
    >>> joined_codes([a, b])
    (array([4, 2, 5], dtype=uint64), 8)
    """
    widths = [max(count - 1, 0).bit_length() for _, count in columns]
    if sum(widths) > CODE_BITS:
        return None
    if len(columns) == 1:
        return columns[0]
    joined = np.zeros(len(columns[0][0]), dtype=np.uint64)
    shift = 0
    for (codes, _), width in zip(reversed(columns), reversed(widths)):
        if width:
            joined |= codes << np.uint64(shift)
        shift += width
    return joined, 1 << shift


def array_order(
    values: pa.Array, ascending: bool, nulls_last: bool, threads: int = 1, parallel_rows: int = PARALLEL_ROWS
) -> np.ndarray:
    """Arrow's stable sort of one comparable key column (every NA a null, placed by the
    sort), for keys without codes. With ``threads`` and at least ``parallel_rows`` rows,
    the rows are first split into ``threads`` key ranges at keys of a sample (equal keys
    in one range, in input order), and the ranges sorted at once on threads: the same
    order for any number of threads.

    >>> array_order(pa.array(['b', None, 'a', 'b']), True, True, threads=2, parallel_rows=1).tolist()
    [2, 0, 3, 1]
    """
    order = "ascending" if ascending else "descending"
    n = len(values)
    if threads == 1 or n < max(parallel_rows, 1) or values.null_count == n:
        ranked = pc.array_sort_indices(values, order=order, null_placement="at_end" if nulls_last else "at_start")
        return buffer_values(ranked, np.int64)
    nulls = bool_values(values.is_null()) if values.null_count else None
    valid = values.drop_null() if nulls is not None else values
    step = max(1, len(valid) // (SAMPLE_ROWS_PER_THREAD * threads))
    sample = valid.take(arrow_array(np.arange(0, len(valid), step)))
    sample = sample.take(pc.array_sort_indices(sample))
    cuts = [sample[len(sample) * k // threads] for k in range(1, threads)]
    ranges = np.zeros(n, dtype=np.int16)  # how many cuts each key is above
    for cut in cuts:
        ranges += bool_values(pc.fill_null(pc.greater(values, cut), False))
    if nulls is not None:
        ranges[nulls] = -1
    groups = [np.flatnonzero(ranges == r) for r in range(threads)]
    if not ascending:
        groups.reverse()

    def sort(rows: np.ndarray) -> np.ndarray:
        return rows[buffer_values(pc.array_sort_indices(values.take(arrow_array(rows)), order=order), np.int64)]

    with ThreadPoolExecutor(threads, thread_name_prefix="shuffle_kit-sort") as pool:
        parts = list(pool.map(sort, [g for g in groups if len(g)]))
    if nulls is not None:
        na = np.flatnonzero(nulls)
        parts = [*parts, na] if nulls_last else [na, *parts]
    return np.concatenate(parts).astype(np.int64, copy=False)
