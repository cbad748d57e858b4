"""The rows an inner join pairs, as row positions of each side, in pandas' order.

One integer key whose values are distinct on the right (a one-to-one or many-to-one join)
is looked up (:class:`KeyLookup`: a table of one row per value when they span few values,
a bitmap of their span when it is some tens of times longer, else a hash table of them,
each built once). Other keys are coded together: Arrow's
``dictionary_encode`` of each key column over the left's values then the right's (equal
values, equal codes; an integer column spanning few values is its own code), the codes of
several columns combined into one. Each left row is then paired with the right rows of its
code, found by a table of one row per code when no code has two, else by the right's rows
ordered by code (a stable sort). The pairs come in pandas' ``merge(how="inner",
sort=False)`` order: the left's rows in order, each with its matches in the right's order.
No value is converted to a Python object. A null key is a value like the others, as in
pandas' merge: it matches the other side's nulls. Nothing here imports pandas.

>>> import pyarrow as pa
>>> left, right = [pa.array([3, 1, 3, 2])], [pa.array([3, 3, 9, 1])]
>>> [p.tolist() for p in inner_positions(left, right)]
[[0, 0, 1, 2, 2], [0, 1, 3, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import arrow_numpy
from .equal_pairs import HeldValues
from .hash_index import HashIndex
from .hashing import hash_array, mix
from .rank_index import RankIndex, fits
from .stable_sort import stable_argsort

_RANKED = 128  # integer keys spanning up to this many times their number are found by rank
_WIDEST = 1 << 62  # combined codes stay below this; beyond, they are renumbered densely

Column: TypeAlias = "pa.Array | pa.ChunkedArray"


def inner_positions(left: Sequence[Column], right: Sequence[Column]) -> tuple[np.ndarray, np.ndarray]:
    """(left positions, right positions) of the rows an inner join of the key columns
    ``left`` and ``right`` (one per key, each the same type on both sides) pairs, in
    pandas' order (null keys matching null keys).

    >>> [p.tolist() for p in inner_positions([pa.array([None, 1, None])], [pa.array([1, None])])]
    [[0, 1, 2], [1, 0, 1]]
    """
    nleft = len(left[0])
    if not nleft or not len(right[0]):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if len(left) == 1 and not left[0].null_count:  # one integer key distinct on the right: looked up
        lookup = KeyLookup.of(right[0])
        if lookup is not None:
            return lookup.find(left[0])
    codes, ncodes = _codes(left, right)
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


def _codes(left: Sequence[Column], right: Sequence[Column]) -> tuple[np.ndarray, int]:
    """One int64 code per row (the left's rows, then the right's) such that rows with
    equal keys (nulls equal to nulls) have equal codes, and the number of codes."""
    combined: np.ndarray | None = None
    ncodes = 1
    for lcol, rcol in zip(left, right):
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
    """Codes of one key column's values, and how many there may be: an integer column
    whose values span no more than a few times its length is its own code (offset from its
    smallest value: no hashing; a null the code after the largest); any other is
    dictionary-encoded (a null one more entry).

    >>> codes, count = _column_codes(pa.array([7, None, 5, 7]))
    >>> codes.tolist(), count
    ([2, 3, 0, 2], 4)
    """
    if pa.types.is_integer(values.type) and len(values) > values.null_count:
        numbers = arrow_numpy.values(values, values.type.to_pandas_dtype())
        valid = arrow_numpy.valid_mask(values)
        low, high = (int(numbers.min()), int(numbers.max())) if valid is None else \
            (int(numbers[valid].min()), int(numbers[valid].max()))
        if high - low <= 4 * len(values):
            codes = numbers.astype(np.int64) - low
            if valid is not None:
                codes[~valid] = high - low + 1
            return codes, high - low + 2
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    indices = encoded.indices
    return arrow_numpy.values(indices, indices.type.to_pandas_dtype()).astype(np.int64), len(encoded.dictionary)


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """``codes`` numbered again from 0 in the order they first come (as pandas' factorize,
    without pandas), and how many there are.

    >>> [a.tolist() if hasattr(a, 'tolist') else a for a in _dense(np.array([70, 5, 70, 9]))]
    [[0, 1, 0, 2], 3]
    """
    encoded = pc.dictionary_encode(arrow_numpy.arrow_array(codes))
    indices = encoded.indices
    return arrow_numpy.values(indices, indices.type.to_pandas_dtype()).astype(np.int64), len(encoded.dictionary)


def _whole(column: Column) -> pa.Array:
    """``column`` as one array (of no chunk: empty)."""
    chunks = _chunks(column)
    if len(chunks) == 1:
        return chunks[0]
    return pa.concat_arrays(chunks) if chunks else pa.array([], type=column.type)


def _chunks(column: Column) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


class KeyLookup:
    """The rows of a unique, non-null integer key column (a join's right side), found by
    value (for the left side's keys): a table of one row per value when the values span no
    more than a few times their number; a :class:`~.rank_index.RankIndex` (a bitmap of
    the span and the rows by value) when they span up to some tens of times their number
    (one hash partition of a dense key, a pair of a one-to-one join); else a
    :class:`~.hash_index.HashIndex` of the values' bits mixed (``mix`` is one-to-one on 64
    bits: distinct integers never share a hash, and a hash found is its value found). Each
    is built once, by the uniqueness check, and used by every lookup; none imports pandas.

    >>> lookup = KeyLookup.of(pa.chunked_array([[30, 10, 20]]))
    >>> [p.tolist() for p in lookup.find(pa.chunked_array([[20, 5, None, 30, 20]]))]
    [[0, 3, 4], [2, 0, 2]]
    >>> spread = KeyLookup.of(pa.array([200, -7, 300]))
    >>> spread.ranks is not None, [p.tolist() for p in spread.find(pa.array([300, 2**40, 299, -7]))]
    (True, [[0, 3], [2, 1]])
    >>> sparse = KeyLookup.of(pa.array([2**60, -7, 2**60 + 1]))
    >>> [p.tolist() for p in sparse.find(pa.array([2**60 + 1, 2**60 + 2, -7]))]
    [[0, 2], [2, 1]]
    """

    def __init__(self, values: np.ndarray):
        self.n = len(values)
        self.low = self.high = 0
        self.table: np.ndarray | None = None
        self.ranks: RankIndex | None = None
        self.index: HashIndex | None = None
        self.dtype = values.dtype
        low, high = (int(values.min()), int(values.max())) if len(values) else (0, -1)
        if high - low <= 4 * len(values) and high < 2**63:
            self.low, self.high = low, high
            self.table = np.full(high - low + 1, -1, dtype=np.int64)
            self.table[values.astype(np.int64) - low] = np.arange(len(values), dtype=np.int64)
        elif high - low <= _RANKED * len(values) and high < 2**63 and fits(len(values), high - low + 1):
            self.low, self.high = low, high
            self.ranks = RankIndex(values.astype(np.int64) - low, high - low + 1)
        else:
            self.index = HashIndex(_mixed_bits(values))

    @property
    def nbytes(self) -> int:
        """The bytes the lookup holds (its table)."""
        if self.table is not None:
            return int(self.table.nbytes)
        held = self.ranks if self.ranks is not None else self.index
        return held.nbytes if held is not None else 0

    @property
    def unique(self) -> bool:
        """Whether no value repeats (else a value finds one of its rows only)."""
        if self.table is not None:
            return int(np.count_nonzero(self.table >= 0)) == self.n
        if self.ranks is not None:
            return self.ranks.distinct
        assert self.index is not None
        return self.index.distinct

    @classmethod
    def of(cls, column: Column) -> KeyLookup | None:
        """The lookup of ``column``'s values, or None if they are not integers, hold a null
        or repeat."""
        if not pa.types.is_integer(column.type) or column.null_count:
            return None
        lookup = cls(_numbers(column))
        return lookup if lookup.unique else None

    by_hash = False  # (its table and index take the values' bits, not the documented hash)

    def find(self, column: Column, hashes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(the positions in ``column`` whose value is a key, in order; the key's row for
        each): a null finds nothing. ``hashes``: unused (see :attr:`by_hash`)."""
        if not len(column) or not self.n:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        probe = _numbers(column)
        if self.table is not None or self.ranks is not None:
            if int(probe.min()) >= self.low and int(probe.max()) <= self.high:  # (the usual case: no mask)
                rows = self._at(probe.astype(np.int64, copy=False) - self.low)
            else:
                inside = (probe >= self.low) & (probe <= self.high)
                rows = np.full(len(probe), -1, dtype=np.int64)
                rows[inside] = self._at(probe[inside].astype(np.int64) - self.low)
        else:
            assert self.index is not None
            rows = self.index.find(_mixed_bits(probe))
            # the bits are compared, not the numbers: a uint64 past int64's range has the
            # bits of a negative int64, and finds nothing in a column of the other kind
            if probe.dtype == np.uint64 and self.dtype.kind == "i":
                rows[probe > np.uint64(2**63 - 1)] = -1
            elif self.dtype == np.uint64 and probe.dtype.kind == "i":
                rows[probe < 0] = -1
        if column.null_count:
            rows[~_valid(column)] = -1
        return _found(rows)

    def _at(self, offsets: np.ndarray) -> np.ndarray:
        """The row of each value at ``offsets`` from the smallest key (each within the
        keys' span), -1 where none has it."""
        if self.table is not None:
            return self.table[offsets]
        assert self.ranks is not None
        return self.ranks.find(offsets)


class ValueLookup:
    """The rows of a unique, non-null key column of another type (strings, binary, dates,
    timestamps, booleans...), found by value: :class:`KeyLookup`'s interface, for keys that
    are not integers.

    Strings and binary of every Arrow type, dates, times, timestamps, durations and
    booleans are hashed once (:func:`~.hashing.hash_array`) into a
    :class:`~.hash_index.HashIndex`; a chunk probed is hashed, and each row its hash finds
    is checked by comparing the values (a null never equal): distinct values may share a
    hash. Keys two of whose values share a hash, and keys of other types, go to Arrow's
    ``index_in`` (which builds its hash table of the keys on each call).

    >>> lookup = ValueLookup.of(pa.chunked_array([['c', 'a'], ['b']]))
    >>> [p.tolist() for p in lookup.find(pa.chunked_array([['b', 'x', None, 'c']]))]
    [[0, 3], [2, 0]]
    >>> ValueLookup.of(pa.chunked_array([['a', 'a']])) is None
    True
    """

    def __init__(self, values: pa.Array, index: HashIndex | None = None):
        self.values, self.index = values, index
        self.held = HeldValues(values)  # (what each hash found is checked against)

    @property
    def nbytes(self) -> int:
        """The bytes the lookup holds beside the key column's values (its table, and the
        copies of the values it compares)."""
        return (self.index.nbytes if self.index is not None else 0) + self.held.nbytes

    @classmethod
    def of(cls, column: Column) -> ValueLookup | None:
        """The lookup of ``column``'s values, or None if they hold a null or repeat."""
        if column.null_count:
            return None
        values = _unviewed(_whole(column))
        if _hashed(values.type):
            index = HashIndex(hash_array(values))
            if index.distinct:  # (distinct hashes: distinct values)
                return cls(values, index)
        return cls(values) if len(pc.unique(values)) == len(values) else None

    @property
    def by_hash(self) -> bool:
        """Whether :meth:`find` hashes the probed values with :func:`~.hashing.hash_array`
        (the partitions' hash), so a caller holding those hashes may give them."""
        return self.index is not None

    def find(self, column: Column, hashes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(the positions in ``column`` whose value is a key, in order; the key's row for
        each): a null finds nothing. ``hashes``: ``hash_array(column)``, if the caller has
        them (used when :attr:`by_hash`)."""
        if not len(column) or not len(self.values):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        if self.index is None:
            probe = _unviewed(_whole(column))
            found = pc.index_in(probe, value_set=self.values)  # (a null where none)
            rows = arrow_numpy.values(found, np.int32).astype(np.int64)
            if found.null_count:
                rows[~_valid(found)] = -1
            if probe.null_count:
                rows[~_valid(probe)] = -1
            return _found(rows)
        key = _unviewed(column)  # (its chunks as they are: hashed and compared chunk by chunk)
        rows = self.index.find(hash_array(key) if hashes is None else hashes)
        if key.null_count:
            rows[~_valid(key)] = -1
        lpos, rpos = _found(rows)
        if len(lpos):  # the values each hash found, compared: a collision finds nothing
            same = self.held.equal(rpos, key, lpos)
            if not same.all():
                lpos, rpos = lpos[same], rpos[same]
        return lpos, rpos


def _hashed(t: pa.DataType) -> bool:
    """Whether keys of type ``t`` are found by their hash (:func:`~.hashing.hash_array`
    hashes them by value, and ``pc.equal`` compares them as ``index_in`` does)."""
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
            or pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)
            or pa.types.is_fixed_size_binary(t) or pa.types.is_boolean(t) or pa.types.is_timestamp(t)
            or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_duration(t))


def _unviewed(array: Column) -> Column:
    """A string or binary view ``array`` as large strings or binary (which Arrow's take and
    comparisons know); any other as it is."""
    if pa.types.is_string_view(array.type):
        return array.cast(pa.large_string())
    if pa.types.is_binary_view(array.type):
        return array.cast(pa.large_binary())
    return array


def _mixed_bits(numbers: np.ndarray) -> np.ndarray:
    """Integers' 64 bits (as int64), mixed: one uint64 per value, distinct for distinct
    values of one dtype."""
    return mix(numbers.astype(np.int64).view(np.uint64))


def _valid(column: Column) -> np.ndarray:
    """The mask of ``column``'s non-null entries (it holds a null)."""
    masks = [arrow_numpy.valid_mask(chunk) for chunk in _chunks(column)]
    return np.concatenate([np.ones(len(c), dtype=bool) if m is None else m for c, m in zip(_chunks(column), masks)])


def _found(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the positions whose row was found, their rows) of each probe's row, -1 where none."""
    if rows.min() >= 0:  # every value found (a fact table's keys in its dimension)
        return np.arange(len(rows), dtype=np.int64), rows
    found = np.flatnonzero(rows >= 0)
    return found, rows[found]


def unique_lookup(column: Column) -> KeyLookup | ValueLookup | None:
    """The lookup of a key column whose values are distinct and never null (a dimension
    table's key): :class:`KeyLookup` for integers, :class:`ValueLookup` for other types;
    None if its values repeat or hold a null."""
    if pa.types.is_integer(column.type):
        return KeyLookup.of(column)
    return ValueLookup.of(column)


def _numbers(column: Column) -> np.ndarray:
    """An integer column's values as NumPy (entries under a null unspecified)."""
    array = _whole(column)
    return arrow_numpy.values(array, array.type.to_pandas_dtype())
