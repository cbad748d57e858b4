"""The rows of distinct integers spread over a span some tens of times their number, found
by rank: a bitmap of the span and the rows in the order of their values.

A join's partition of an integer key holds one hash partition of the key's values: a
range some tens of times longer than its rows, too long for a table of one row per value
(:class:`~.join_indices.KeyLookup`'s), and a hash table of them
(:class:`~.hash_index.HashIndex`) costs a sort of the values' hashes and probes that wander
a table of twice their number. This index holds a bit per value of the span (set for the
values present), the count of bits set before each 64-bit word, and the rows sorted by
value (one sort of the values and rows packed into one word each, no argsort). A value
is found by its word: present if its bit is set, and its rank among the values present is
the count before its word plus the bits set below it in the word, which is its row's
place in the sorted rows. Every step is a pass over the values probed, reading a bitmap
of an eighth of the span's bytes.

Offsets from the smallest value go in and come out (the caller keeps values outside the
span away). Two equal values are found while building (:attr:`RankIndex.distinct` is
then False): the index answers only for distinct values.

>>> import numpy as np
>>> index = RankIndex(np.array([300, 10, 129], dtype=np.int64), 301)
>>> index.distinct, index.find(np.array([129, 5, 300, 10], dtype=np.int64)).tolist()
(True, [2, -1, 0, 1])
>>> RankIndex(np.array([7, 7], dtype=np.int64), 8).distinct
False
"""

from __future__ import annotations

import numpy as np

_WORD = np.uint64(63)


def fits(rows: int, span: int) -> bool:
    """Whether :class:`RankIndex` can hold ``rows`` values of a ``span`` (their offsets and
    row numbers packed into 64 bits).

    >>> fits(1000, 10**6), fits(2**40, 2**40)
    (True, False)
    """
    return 0 < rows and 0 < span and span.bit_length() + max(1, (rows - 1).bit_length()) <= 64


class RankIndex:
    """The row of each of ``offsets`` (int64, each in ``[0, span)``), found by value;
    :attr:`distinct` tells whether no offset repeats."""

    def __init__(self, offsets: np.ndarray, span: int):
        n = len(offsets)
        assert fits(n, span)
        row_bits = max(1, (n - 1).bit_length())
        # an offset and its row in one word: a sort of plain words orders the rows by value
        packed = offsets.astype(np.int64, copy=False).view(np.uint64) << np.uint64(row_bits)
        packed |= np.arange(n, dtype=np.uint64)
        packed.sort()
        self.rows = (packed & np.uint64((1 << row_bits) - 1)).view(np.int64)
        ordered = packed >> np.uint64(row_bits)
        del packed
        self.distinct = not bool((ordered[1:] == ordered[:-1]).any())
        words = ordered >> np.uint64(6)
        bits = np.left_shift(np.uint64(1), ordered & _WORD)
        # the bits of each word present, or-ed together (the values are sorted: a word's
        # bits are one run)
        starts = np.flatnonzero(np.concatenate(([True], words[1:] != words[:-1])))
        self.bitmap = np.zeros((span + 63) // 64, dtype=np.uint64)
        self.bitmap[words[starts]] = np.bitwise_or.reduceat(bits, starts)
        counts = np.bitwise_count(self.bitmap)
        self.before = np.zeros(len(self.bitmap), dtype=np.int32 if n < 2**31 else np.int64)
        np.cumsum(counts[:-1], out=self.before[1:])

    @property
    def nbytes(self) -> int:
        """The bytes the index holds."""
        return int(self.bitmap.nbytes + self.before.nbytes + self.rows.nbytes)

    def find(self, offsets: np.ndarray) -> np.ndarray:
        """The row of each of ``offsets`` (int64, each in ``[0, span)``), -1 where none has
        it (int64)."""
        offsets = offsets.astype(np.int64, copy=False)
        words = offsets >> 6
        # the word moved up so that the offset's bit is its top one: that bit says whether
        # the value is present, and the bits set in it count the values up to it
        up = self.bitmap[words] << (_WORD - (offsets & 63).view(np.uint64))
        present = up >= np.uint64(1 << 63)
        ranks = self.before[words] + np.bitwise_count(up).astype(np.int64) - 1
        if present.all():
            return self.rows[ranks]
        found = np.full(len(offsets), -1, dtype=np.int64)
        found[present] = self.rows[ranks[present]]
        return found
