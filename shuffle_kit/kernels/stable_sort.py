"""The stable order of a NumPy array of numbers, fast: rows of equal value in input order.

NumPy's stable sort of 64-bit values is a merge sort (timsort), several times slower than
its unstable sort, which is vectorised. The unstable sort gives a stable order when no two
sorted items are equal: each value, mapped to an unsigned integer in the same order, is
packed above its row number into one 64-bit word, and the words are sorted. When the
values' range leaves too few bits for the row number, the values are first replaced by
their dense ranks (one unstable argsort), which always fit beside a row number of up to 32
bits. Values spanning fewer than 2**16 go to NumPy's radix sort, as 16-bit offsets from
the smallest. Larger arrays, and other dtypes, go to NumPy's stable sort.
"""

from __future__ import annotations

import numpy as np

SMALL = 1024  # below this many values NumPy's stable sort is as fast: no packing
_SIGN = np.uint64(1 << 63)
_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def stable_argsort(values: np.ndarray, descending: bool = False, *, count: int | None = None) -> np.ndarray:
    """Row positions of ``values`` in ascending (or descending) order, equal values in input
    order, as ``np.argsort(values, kind="stable")`` (int64): integers, booleans, and floats
    with no NaN (NaN has no place in the order; ``-0.0`` equals ``0.0``).

    ``count``: the values are codes, unsigned integers below ``count`` (as
    :mod:`.order_codes` gives them), so their range need not be found again.

    >>> stable_argsort(np.array([3, 1, 3, 2, 1])).tolist()
    [1, 4, 3, 0, 2]
    >>> stable_argsort(np.array([3, 1, 3, 2, 1]), descending=True).tolist()
    [0, 2, 3, 1, 4]
    >>> stable_argsort(np.array([2, 0, 2, 1], dtype=np.uint64), count=3).tolist()
    [1, 3, 0, 2]
    """
    n = len(values)
    coded = count is not None and not descending and values.dtype.kind == "u"
    words = values if coded else _ordered_words(values)
    if words is None or n < SMALL or n >= 1 << 32:
        if descending:  # stable descending: the reversed values' stable order, reversed
            return (n - 1 - np.argsort(values[::-1], kind="stable"))[::-1].astype(np.int64)
        return np.argsort(values, kind="stable").astype(np.int64, copy=False)
    if descending:
        words = ~words  # the reverse order; equal values stay equal
    shift = (n - 1).bit_length()
    if coded:
        low, span = np.uint64(0), max(int(count or 0) - 1, 0)
    else:
        low = words.min()
        span = int(words.max() - low)
    if span < 1 << 16:  # NumPy sorts 16-bit values stably by radix, in one pass
        small = words.astype(np.uint16) if coded else (words - low).astype(np.uint16)
        return np.argsort(small, kind="stable").astype(np.int64, copy=False)
    if span.bit_length() + shift <= 64:
        ranks = words if coded else words - low
    else:  # too wide to pack: the dense rank of each value (fewer than n, so it fits)
        order = np.argsort(words)
        ranked = words[order]
        dense = np.empty(n, dtype=np.uint64)
        dense[0] = 0
        np.cumsum(ranked[1:] != ranked[:-1], out=dense[1:])
        ranks = np.empty(n, dtype=np.uint64)
        ranks[order] = dense
    packed = (ranks << np.uint64(shift)) | np.arange(n, dtype=np.uint64)
    packed.sort()
    packed &= np.uint64((1 << shift) - 1)
    return packed.view(np.int64)


def _ordered_words(values: np.ndarray) -> np.ndarray | None:
    """``values`` as uint64 in the same order, or None for a dtype that has none here."""
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(np.uint64)
    if kind == "u":
        return values.astype(np.uint64)
    if kind == "i":
        return values.astype(np.int64).view(np.uint64) ^ _SIGN
    if kind == "f":
        bits = (values.astype(np.float64) + 0.0).view(np.uint64)  # -0.0 + 0.0 is 0.0
        # a negative float's bits count down as it grows: flip them all; a positive one: the sign
        return np.where(bits & _SIGN, bits ^ _ALL, bits ^ _SIGN)
    return None
