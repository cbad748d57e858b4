"""Range partitioning: partition ids from the order of the keys, boundaries from a sample.

The order is pandas' ``sort_values``: each key column ascending or descending; every kind
of null (None, NaN, NaT, pd.NA) is one NA value, placed last (or first) whatever the
direction, with equal NAs in input order; ``-0.0`` equals ``0.0``; strings compare by code
point (their UTF-8 bytes), timestamps by instant, a pandas categorical (ordered or not) and
an ordered dictionary by their categories' order, any other dictionary by value. Lists, structs,
maps and pickled Python objects have no such order and are refused.

Each key column becomes two sort columns (:meth:`KeyOrder.columns`): a flag that is true
for NA, then the comparable value with NaN as null. The flag decides where NAs go, so no
reliance on Arrow's null placement (whose NaN sorts apart from null) is needed; a sort by
one column needs no flag (:meth:`KeyOrder.sort_indices`: Arrow puts its nulls, NaN among
them, last in input order whatever the direction), nor does a column without NA.

A row goes to partition ``i``, the number of boundaries that sort strictly before its key:
partition ``i`` holds the keys in ``(b[i-1], b[i]]``, so equal keys never split, and every
key of partition ``i`` sorts no later than every key of partition ``i + 1``. The
``n - 1`` boundaries close the partitions of a sample in key order, each at its share
of the rows (:func:`boundaries`: a heavy key fills one partition and the rest still
spread); the sample (:class:`Sampler`) keeps the rows with the smallest
hashes of their row numbers, so it is the same however the input is chunked, and it is
every row when the input has no more rows than the sample holds (exact boundaries).

>>> import pyarrow as pa
>>> keys = pa.table({'k': [5, None, 1, 3, 3, 9]})
>>> order = KeyOrder.of(keys, ['k'])
>>> b = boundaries(keys, 3, order)
>>> b['k'].to_pylist(), range_ids(keys, b, order).tolist()
([3, 9], [1, 2, 0, 0, 0, 1])
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ArgumentTypeError, JobError, UnorderableKeyError
from .arrow_numpy import arrow_array, bool_values, numbers
from .arrow_numpy import values as buffer_values
from .hashing import id_dtype, mix, pickled_keys
from .order_codes import array_order, column_codes, joined_codes
from .stable_sort import stable_argsort
from .string_prefixes import STRING_TYPES, prefixes

NA_POSITIONS = ("last", "first")
MIN_SAMPLE_ROWS = 1000
SAMPLE_ROWS_PER_PARTITION = 100
BISECTED_PARTITIONS = 1024  # up to this many partitions, the run of a key is searched for when needed
MAX_SAMPLE_ROWS = 1 << 20  # a sample of a million keys places a million partitions well enough
_SAMPLE_SEED = np.uint64(0x72616E6765)  # "range": which rows a sample holds


def sample_rows(npartitions: int) -> int:
    """Rows sampled to place ``npartitions`` partitions: ``max(1000, 100 * npartitions)``,
    at most :data:`MAX_SAMPLE_ROWS`.

    >>> sample_rows(4), sample_rows(64), sample_rows(1 << 24)
    (1000, 6400, 1048576)
    """
    return int(min(max(MIN_SAMPLE_ROWS, SAMPLE_ROWS_PER_PARTITION * npartitions), MAX_SAMPLE_ROWS))


def _orderable(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _orderable(t.value_type)
    return (
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t)
        or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
        or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) or pa.types.is_temporal(t)
        or pa.types.is_null(t)
    )


@dataclass(frozen=True)
class KeyOrder:
    """How rows are ordered by their key columns ``fields``: ``ascending`` per column,
    NAs last (or first: ``nulls_last=False``); ``categories`` per column: the categories
    whose order a categorical column sorts by, else None."""

    fields: tuple[str, ...]
    ascending: tuple[bool, ...]
    nulls_last: bool
    categories: tuple[pa.Array | None, ...]

    @classmethod
    def of(
        cls, table: pa.Table, fields: Sequence[str], ascending: bool | Sequence[bool] = True,
        na_position: str = "last",
    ) -> KeyOrder:
        """The order of ``fields`` of ``table`` (a chunk of the input, for its types and the
        categories of its ordered dictionaries); arguments as pandas' ``sort_values``.

        >>> KeyOrder.of(pa.table({'a': [1], 'b': ['x']}), ['a', 'b'], [True, False]).ascending
        (True, False)
        """
        fields = tuple(fields)
        if isinstance(ascending, bool | np.bool_):
            directions = (bool(ascending),) * len(fields)
        else:
            directions = tuple(ascending) if isinstance(ascending, list | tuple) else ()
            if len(directions) != len(fields) or not all(isinstance(a, bool | np.bool_) for a in directions):
                raise ArgumentTypeError(
                    f"ascending must be a bool or one bool per key column ({len(fields)}), not {ascending!r}"
                )
            directions = tuple(bool(a) for a in directions)
        if na_position not in NA_POSITIONS:
            raise JobError(f"na_position must be 'last' or 'first', not {na_position!r}")
        pickled = pickled_keys(table.schema, fields)
        # pandas sorts a categorical by its categories' order, ordered or not; a dictionary
        # that is only Parquet's encoding of strings sorts by value
        pandas_columns = (table.schema.pandas_metadata or {}).get("columns", [])
        categorical = {c.get("field_name") for c in pandas_columns if c.get("pandas_type") == "categorical"}
        categories: list[pa.Array | None] = []
        for name in fields:
            t = table.schema.field(name).type
            if name in pickled or not _orderable(t):
                if name in pickled:
                    raise UnorderableKeyError(
                        f"key column {name!r} holds Python objects, which shuffle_kit cannot order: convert "
                        "them to a typed column (numbers, strings, datetimes) to sort by it"
                    )
                raise UnorderableKeyError(f"key column {name!r} holds {t}, which has no order to sort by")
            by_category = pa.types.is_dictionary(t) and (t.ordered or name in categorical)
            categories.append(_categories(table.column(name)) if by_category else None)
        return cls(fields, directions, na_position == "last", tuple(categories))

    def columns(self, keys: pa.Table) -> pa.Table:
        """The sort columns of ``keys`` (a table holding the key columns): per key, an NA
        flag and the comparable value, named ``na0, v0, na1, v1, ...``.

        >>> order = KeyOrder.of(pa.table({'f': [0.0]}), ['f'])
        >>> order.columns(pa.table({'f': [float('nan'), -0.0, None]})).to_pydict()
        {'na0': [True, False, True], 'v0': [None, 0.0, None]}
        """
        arrays: list[Any] = []
        names: list[str] = []
        for i, name in enumerate(self.fields):
            value = _comparable(keys.column(name), self.categories[i])
            arrays += [pc.is_null(value), value]
            names += [f"na{i}", f"v{i}"]
        return pa.table(arrays, names=names)

    def sort_keys(self) -> list[tuple[str, str]]:
        """Arrow sort keys over :meth:`columns` (whose values never hold a null where the flag
        is false, so Arrow's own null placement never decides anything)."""
        keys = []
        for i, up in enumerate(self.ascending):
            keys.append((f"na{i}", "ascending" if self.nulls_last else "descending"))
            keys.append((f"v{i}", "ascending" if up else "descending"))
        return keys

    def sort_indices(self, keys: pa.Table, threads: int = 1) -> np.ndarray:
        """The stable order of the rows of ``keys``: equal keys keep their input order
        (the same for any number of ``threads``: a large key without integer codes is
        sorted by key ranges on them, :func:`.order_codes.array_order`).

        >>> order = KeyOrder.of(pa.table({'k': [1]}), ['k'], ascending=False)
        >>> order.sort_indices(pa.table({'k': [1, None, 3, 1]})).tolist()
        [2, 0, 3, 1]
        """
        small = self._small_integers(keys)
        if small is not None:
            return np.argsort(small, kind="stable").astype(np.int64, copy=False)
        comparable = [_comparable(keys.column(name), self.categories[i]) for i, name in enumerate(self.fields)]
        codes = self.codes(comparable)
        if codes is not None:
            return stable_argsort(codes[0], count=codes[1])
        return self._compared(keys, comparable, threads)

    def _small_integers(self, keys: pa.Table) -> np.ndarray | None:
        """16-bit codes in the key order of one integer key column without nulls spanning
        fewer than 2**16 values (its value less the least, or the greatest less it), made
        chunk by chunk: no copy of the chunks into one, nor 64-bit codes in between; else
        None. NumPy sorts them stably by radix."""
        if len(self.fields) != 1 or self.categories[0] is not None:
            return None
        column = keys.column(self.fields[0])
        if not pa.types.is_integer(column.type) or column.null_count or not len(column):
            return None
        chunks = [buffer_values(c, column.type.to_pandas_dtype()) for c in column.chunks if len(c)]
        lo, hi = min(int(c.min()) for c in chunks), max(int(c.max()) for c in chunks)
        if hi - lo >= 1 << 16:
            return None
        codes = np.empty(len(column), dtype=np.uint16)
        # in signed 64 bits, wrapping (the largest unsigned keys too): the difference
        # itself is below 2**16
        lo, hi = (x - (1 << 64) if x >= 1 << 63 else x for x in (lo, hi))
        start = 0
        for c in chunks:
            out = codes[start : start + len(c)]
            if self.ascending[0]:
                np.subtract(c, lo, out=out, dtype=np.int64, casting="unsafe")
            else:
                np.subtract(hi, c, out=out, dtype=np.int64, casting="unsafe")
            start += len(c)
        return codes

    def _compared(self, keys: pa.Table, comparable: list[pa.Array], threads: int = 1) -> np.ndarray:
        """Arrow's stable sort of the key columns: of one column's comparable values (every
        NA a null there, placed by the sort; on ``threads``), else of the sort columns."""
        if len(comparable) == 1:
            return array_order(comparable[0], self.ascending[0], self.nulls_last, threads)
        return buffer_values(pc.sort_indices(self.columns(keys), sort_keys=self.sort_keys()), np.int64)

    def ranked_runs(self, keys: pa.Table, npartitions: int, threads: int = 1) -> tuple[np.ndarray, KeyRuns]:
        """(the stable order of the rows of ``keys``, the runs of equal keys in that order),
        to place ``npartitions`` partitions: up to :data:`BISECTED_PARTITIONS`, the run of
        a row is searched for when asked for (a partition asks once), else every run is
        found at once.

        >>> order = KeyOrder.of(pa.table({'k': ['a']}), ['k'])
        >>> ranked, runs = order.ranked_runs(pa.table({'k': ['b', None, 'a', 'b']}), 2)
        >>> ranked.tolist(), runs.of(1), runs.of(3)
        ([2, 0, 3, 1], (1, 2), (3, 3))
        """
        comparable = [_comparable(keys.column(name), self.categories[i]) for i, name in enumerate(self.fields)]
        codes = self.codes(comparable)
        if codes is not None:
            ranked = stable_argsort(codes[0], count=codes[1])
        else:
            ranked = self._compared(keys, comparable, threads)
        if npartitions <= BISECTED_PARTITIONS:
            columns = [codes[0]] if codes is not None else comparable
            return ranked, KeyRuns(len(ranked), in_order=InOrder(columns, ranked))
        if codes is not None:
            ordered = codes[0][ranked]
            starts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        else:
            starts = _run_starts(self.columns(keys).take(arrow_array(ranked)))[1:]
        return ranked, KeyRuns(len(ranked), starts=np.concatenate([[0], starts]).astype(np.int64))

    def codes(self, comparable: list[pa.Array]) -> tuple[np.ndarray, int] | None:
        """One integer code per row in the key order (:mod:`.order_codes`), and the count
        of codes, when the key columns have codes that fit 64 bits together; else None."""
        columns = []
        for values, up in zip(comparable, self.ascending):
            codes = column_codes(values, up, self.nulls_last)
            if codes is None:
                return None
            columns.append(codes)
        return joined_codes(columns)


def _as_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A comparable column (see :func:`_comparable`) of numbers, instants or durations as
    (NumPy values in the same order, NA mask or None without NA), or None for any other
    type: one numeric key sorts and finds its range in NumPy, without the NA flag column."""
    t = values.type
    if pa.types.is_temporal(t):
        values = values.cast(pa.int32() if pa.types.is_date32(t) or pa.types.is_time32(t) else pa.int64())
    elif not (pa.types.is_integer(t) or pa.types.is_floating(t)):
        return None
    nulls = None
    if values.null_count:
        nulls = bool_values(values.is_null())
        values = values.fill_null(pa.scalar(0, values.type))
    return numbers(values), nulls


def _categories(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    return chunks[0].dictionary if chunks else pa.nulls(0, column.type.value_type)


def _comparable(column: pa.ChunkedArray | pa.Array, categories: pa.Array | None) -> pa.Array:
    """One key column as values Arrow compares in the key order: NaN as null, ``-0.0`` as
    ``0.0``, an ordered dictionary as its categories' positions, another as its values."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    t = column.type
    if pa.types.is_dictionary(t):
        if categories is not None:  # each entry's position among the categories, for each row
            return pc.take(pc.index_in(column.dictionary, value_set=categories), column.indices)
        column, t = column.dictionary_decode(), t.value_type
    if pa.types.is_float16(t):  # Arrow sorts no half floats; float32 holds each exactly
        column, t = column.cast(pa.float32()), pa.float32()
    if pa.types.is_floating(t):
        column = pc.add(column, pa.scalar(0.0, t))  # -0.0 + 0.0 is 0.0
        return pc.if_else(pc.is_nan(column), pa.scalar(None, t), column)
    if pa.types.is_null(t):
        return pa.nulls(len(column), pa.int8())
    return column


class InOrder:
    """The keys of rows in a sorted order, compared one pair at a time: ``columns`` hold
    them (integer codes, or comparable Arrow columns whose nulls are equal), ``ranked``
    the row at each rank."""

    def __init__(self, columns: Sequence[Any], ranked: np.ndarray):
        self.columns, self.ranked = columns, ranked

    def same(self, i: int, j: int) -> bool:
        """Whether the rows ranked ``i`` and ``j`` have equal keys."""
        a, b = int(self.ranked[i]), int(self.ranked[j])
        return all(bool(column[a] == column[b]) for column in self.columns)


@dataclass(frozen=True)
class KeyRuns:
    """The runs of equal keys in ``rows`` sorted rows: ``starts`` (where each begins), or
    their keys in order (``in_order``), searched for the run of a row."""

    rows: int
    starts: np.ndarray | None = None
    in_order: InOrder | None = None

    def of(self, row: int) -> tuple[int, int]:
        """The first and the last rank of the run holding the row ranked ``row``.

        >>> runs = KeyRuns(5, in_order=InOrder([np.array([7, 7, 3, 7, 9])], np.array([2, 0, 1, 3, 4])))
        >>> runs.of(0), runs.of(2), runs.of(4)
        ((0, 0), (1, 3), (4, 4))
        """
        if self.in_order is None:
            assert self.starts is not None
            j = int(np.searchsorted(self.starts, row, side="right")) - 1
            last = int(self.starts[j + 1]) - 1 if j + 1 < len(self.starts) else self.rows - 1
            return int(self.starts[j]), last
        same = self.in_order.same
        lo, hi = 0, row  # the first rank of the run is in lo..hi (equal keys are contiguous)
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if same(mid, row) else (mid + 1, hi)
        first = lo
        lo, hi = row, self.rows - 1  # and the last in lo..hi
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if same(mid, row) else (lo, mid - 1)
        return first, lo


def boundaries(sample: pa.Table, npartitions: int, order: KeyOrder) -> pa.Table:
    """The ``npartitions - 1`` boundary keys of a ``sample`` of the input's key columns,
    each the last key of a partition (no rows for an empty sample: every row then goes to
    partition 0).

    The sample's distinct keys are taken in order, with their counts, and a partition is
    closed once it holds its share of the rows still to place (the share recomputed after
    each partition): distinct keys give shares that differ by at most one row, and a key
    that alone holds more than a share fills a partition of its own while the other keys
    still spread over the rest. With fewer distinct keys than partitions, the last
    partitions stay empty.

    >>> t = pa.table({'k': list(range(10))})
    >>> boundaries(t, 4, KeyOrder.of(t, ['k']))['k'].to_pylist()
    [2, 4, 7]
    >>> skewed = pa.table({'k': [0, 1, 2] + [5] * 20 + [7, 8, 9]})
    >>> boundaries(skewed, 4, KeyOrder.of(skewed, ['k']))['k'].to_pylist()
    [2, 5, 8]
    """
    keys = sample.select(list(order.fields))
    m = keys.num_rows
    if m == 0 or npartitions <= 1:
        return keys.slice(0, 0)
    ranked, runs = order.ranked_runs(keys, npartitions)
    return keys.take(arrow_array(ranked[partition_ends(runs, npartitions)]))


def partition_ends(runs: KeyRuns, npartitions: int) -> np.ndarray:
    """The last row of each partition but the last (``npartitions - 1`` ranks) of sorted
    rows whose keys run as ``runs`` says, as :func:`boundaries` places them: a partition
    is closed at the end of the key that brings it to its share of the rows still to
    place, or just before that key when that is nearer the share; with fewer keys than
    partitions the last partitions are empty (their ends are the last row).

    >>> runs = KeyRuns(26, starts=np.array([0, 1, 2, 3, 23, 24, 25]))  # a key of 20 rows at 3
    >>> partition_ends(runs, 4).tolist()
    [2, 22, 24]
    """
    rows = runs.rows
    ends: list[int] = []
    first, rows_left, parts_left = 0, rows, npartitions  # the partition being filled
    while len(ends) < npartitions - 1 and first < rows:
        share = rows_left / parts_left
        # the key whose end brings the partition to its share: the run of that row
        reach = first - 1 + math.ceil(share)
        if reach >= rows:  # the rest falls short of a share: it stays in the last partition
            break
        start, end = runs.of(reach)
        held = start - first
        last = start - 1 if held and end - first + 1 - share > share - held else end
        ends.append(last)
        rows_left, parts_left, first = rows_left - (last - first + 1), parts_left - 1, last + 1
    ends += [rows - 1] * (npartitions - 1 - len(ends))
    return np.asarray(ends, dtype=np.int64)


def _run_starts(columns: pa.Table) -> np.ndarray:
    """Where each run of equal keys begins in sorted sort columns (NA equals NA)."""
    n = columns.num_rows
    same = np.ones(max(n - 1, 0), dtype=bool)
    for name in columns.column_names:
        col = columns.column(name)
        prev, cur = col.slice(0, n - 1), col.slice(1)
        if name.startswith("na"):
            same &= np.asarray(pc.equal(prev, cur))
        else:  # equal values, or both NA (their flags already compared)
            equal = pc.fill_null(pc.equal(prev, cur), False)
            same &= np.asarray(pc.or_(equal, pc.and_(pc.is_null(prev), pc.is_null(cur))))
    return np.concatenate([[0], np.flatnonzero(~same) + 1]).astype(np.int64)


def range_ids(keys: pa.Table, bounds: pa.Table, order: KeyOrder, closed: str = "right") -> np.ndarray:
    """The partition of each row of ``keys``: how many of ``bounds`` (from
    :func:`boundaries`) sort strictly before its key; with ``closed="left"``, how many
    sort before it or equal it (a boundary then opens a partition, as dask's divisions
    do, instead of closing one).

    >>> t = pa.table({'k': ['b', 'a', None, 'c']})
    >>> order = KeyOrder.of(t, ['k'], na_position='first')
    >>> range_ids(t, pa.table({'k': ['a']}), order).tolist()
    [1, 0, 0, 1]
    >>> range_ids(t, pa.table({'k': ['b']}), order, closed="left").tolist()
    [1, 0, 0, 1]
    """
    if closed not in ("right", "left"):
        raise ValueError(f"closed must be 'right' or 'left', not {closed!r}")
    n, m = keys.num_rows, bounds.num_rows
    dtype = id_dtype(m + 1)
    if m == 0:
        return np.zeros(n, dtype=dtype)
    if len(order.fields) == 1:
        name, categories = order.fields[0], order.categories[0]
        numbers = _as_numbers(_comparable(keys.column(name), categories))
        bound_numbers = _as_numbers(_comparable(bounds.column(name), categories)) if numbers is not None else None
        if numbers is not None and bound_numbers is not None and bound_numbers[1] is None:
            values, nulls = numbers
            b = np.sort(bound_numbers[0])  # counting needs no order of the bounds
            if order.ascending[0]:  # bounds below the key (or equal to it: closed left)
                ids = _count_below(b, values, equal=closed == "left")
            else:  # bounds above the key (or equal to it): those not below it (nor equal)
                ids = m - _count_below(b, values, equal=closed == "right")
            if nulls is not None:
                ids[nulls] = m if order.nulls_last else 0  # NA: after every bound, or before
            return ids.astype(dtype, copy=False)
    # keys with integer codes (strings of few distinct values, several columns): the codes
    # of keys and bounds together order them as the keys do, and the bounds below each key
    # are counted as for numbers
    comparable = _comparable_both(keys, bounds, order, closed)
    codes = order.codes(comparable)
    if codes is not None:
        key_codes, bound_codes = (codes[0][:n], codes[0][n:]) if closed == "right" else (codes[0][m:], codes[0][:m])
        return _count_below(np.sort(bound_codes), key_codes, equal=closed == "left").astype(dtype)
    if len(comparable) == 1 and comparable[0].type in STRING_TYPES:  # mostly distinct strings
        values = comparable[0]
        key_values, bound_values = (values[:n], values[n:]) if closed == "right" else (values[m:], values[:m])
        if not bound_values.null_count:
            return _prefix_ids(key_values, bound_values, keys, bounds, order, closed).astype(dtype)
    return _sorted_ids(keys, bounds, order, closed, comparable)


def _comparable_both(keys: pa.Table, bounds: pa.Table, order: KeyOrder, closed: str) -> list[pa.Array]:
    """Each key column's comparable values (:func:`_comparable`) of the keys then the
    bounds (closed right), or of the bounds then the keys (closed left)."""
    sides = (keys, bounds) if closed == "right" else (bounds, keys)
    return [pa.concat_arrays([_comparable(side.column(name), order.categories[i]) for side in sides])
            for i, name in enumerate(order.fields)]


def _prefix_ids(key_values: pa.Array, bound_values: pa.Array, keys: pa.Table, bounds: pa.Table, order: KeyOrder,
                closed: str) -> np.ndarray:
    """:func:`range_ids` of one string key column (``key_values``, comparable) against
    bounds holding no null, through the strings' first bytes as integers
    (:mod:`.string_prefixes`): exact for every key whose prefix no bound shares; the
    keys that share one are sorted with the bounds."""
    m = len(bound_values)
    key_prefixes, bound_prefixes = prefixes(key_values), np.sort(prefixes(bound_values))
    below = np.searchsorted(bound_prefixes, key_prefixes, side="left")
    ties = below != np.searchsorted(bound_prefixes, key_prefixes, side="right")
    # a key whose prefix no bound shares equals no bound: as many bounds sort before it
    # (ascending: those below it; descending: those above it)
    ids = below if order.ascending[0] else m - below
    nulls = bool_values(key_values.is_null())
    ids[nulls] = m if order.nulls_last else 0
    tied = np.flatnonzero(ties & ~nulls)
    if len(tied):
        ids[tied] = _sorted_ids(keys.take(arrow_array(tied)), bounds, order, closed)
    return ids


def _sorted_ids(keys: pa.Table, bounds: pa.Table, order: KeyOrder, closed: str,
                comparable: list[pa.Array] | None = None) -> np.ndarray:
    """:func:`range_ids` by a stable sort of the keys with the bounds (``comparable``: the
    key columns' comparable values, keys then bounds, or bounds then keys for ``closed``
    left, if known): a key equal to a bound sorts on the side of it that it came from
    (before it: closed right; after it: closed left)."""
    n, m = keys.num_rows, bounds.num_rows
    dtype = id_dtype(m + 1)
    first, second = (keys, bounds) if closed == "right" else (bounds, keys)
    if comparable is None:
        comparable = _comparable_both(keys, bounds, order, closed)
    if len(comparable) == 1:
        idx = array_order(comparable[0], order.ascending[0], order.nulls_last)
    else:
        both = pa.concat_tables([order.columns(first.select(list(order.fields))),
                                 order.columns(second.select(list(order.fields)))])
        idx = buffer_values(pc.sort_indices(both, sort_keys=order.sort_keys()), np.int64)
    if closed == "left":
        idx = np.where(idx < m, idx + n, idx - m)  # back to the numbering keys first, bounds after
    is_bound = idx >= n
    before = np.cumsum(is_bound)
    ids = np.empty(n, dtype=dtype)
    ids[idx[~is_bound]] = before[~is_bound]
    return ids

FEW_BOUNDS = 16  # up to this many, one comparison pass per bound beats a binary search per key
COMPARED_ROWS = 1 << 15  # keys compared with every bound before the next ones


def _count_below(bounds: np.ndarray, values: np.ndarray, equal: bool) -> np.ndarray:
    """How many of the sorted ``bounds`` are below each value (or equal to it, if ``equal``).
    A binary search per value mispredicts at every step; a few vectorised comparisons do not."""
    if len(bounds) > FEW_BOUNDS:
        side: Literal["left", "right"] = "right" if equal else "left"
        kind = values.dtype.kind
        if kind in "iu" and len(values):
            lo, hi = int(values.min()), int(values.max())
            if hi - lo < len(values):
                # integers spanning no more values than there are of them (keys with many
                # repeats): the count for every value of the span, then one gather. Offsets
                # from ``lo`` in a 64-bit type of the same sign (narrow types would wrap).
                wide = np.dtype(np.int64 if kind == "i" else np.uint64)
                span = np.arange(hi - lo + 1, dtype=wide) + wide.type(lo)
                table = np.searchsorted(bounds, span.astype(values.dtype), side=side)
                return table[values.astype(wide, copy=False) - wide.type(lo)]
        return np.searchsorted(bounds, values, side=side)
    counts = np.zeros(len(values), dtype=np.uint8)  # a byte a row: FEW_BOUNDS fits
    above = np.empty(min(len(values), COMPARED_ROWS), dtype=bool)
    compare = np.greater_equal if equal else np.greater
    # block by block, so that the passes of every bound over a block read it from the cache
    for start in range(0, len(values), COMPARED_ROWS):
        block, total = values[start : start + COMPARED_ROWS], counts[start : start + COMPARED_ROWS]
        mask = above[: len(block)]
        for b in bounds:
            compare(block, b, out=mask)
            total += mask.view(np.uint8)
    return counts


def chunk_range_ids(keys: pa.Table, bounds: pa.Table, order: KeyOrder, schema: pa.Schema) -> np.ndarray:
    """:func:`range_ids` of a chunk's key columns, cast first to the types of the sample's
    (``schema``): a chunk may hold them narrower or wider (an all-null slice, ints where
    others had floats). Keys that cannot be cast are one line.

    >>> t = pa.table({'k': [2.5, 1.0]})
    >>> chunk_range_ids(pa.table({'k': [3, 1]}), t.slice(1), KeyOrder.of(t, ['k']), t.schema).tolist()
    [1, 0]
    """
    if not keys.schema.equals(schema):
        try:
            keys = keys.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise JobError(f"a chunk's key columns cannot be compared with the others': {e}") from None
    return range_ids(keys, bounds, order)


@functools.lru_cache(maxsize=16)
def sample_positions(rows: int, size: int) -> np.ndarray:
    """The positions, in increasing order, of the rows a :class:`Sampler` of ``size`` keeps
    of an input of ``rows`` rows (every row when there are no more than ``size``); remembered
    for the last few inputs, since dask partitions often have equal lengths.

    >>> sample_positions(5, 3).tolist() == sorted(sample_positions(5, 3).tolist())
    True
    """
    if size < 1:
        raise ValueError(f"a sample holds at least one row, not {size}")
    if rows <= size:
        positions = np.arange(rows, dtype=np.int64)
    else:
        h = mix(np.arange(rows, dtype=np.uint64) ^ _SAMPLE_SEED)
        positions = np.sort(np.argpartition(h, size - 1)[:size]).astype(np.int64)
    positions.flags.writeable = False
    return positions


class Sampler:
    """A sample of ``size`` rows of a stream of key tables, the same for any chunking: the
    rows whose numbers hash (the documented ``mix``) lowest; every row while there are no
    more than ``size``.

    >>> s = Sampler(3)
    >>> s.add(pa.table({'k': [1, 2]})); s.add(pa.table({'k': [3, 4, 5]}))
    >>> whole = Sampler.of([pa.table({'k': [1, 2, 3, 4, 5]})], 3)
    >>> sorted(s.sample()['k'].to_pylist()) == sorted(whole['k'].to_pylist())
    True
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"a sample holds at least one row, not {size}")
        self.size = size
        self.rows = 0  # rows seen so far: the number of the next row
        self._hashes: list[np.ndarray] = []
        self._tables: list[pa.Table] = []
        self._held = 0
        self._threshold: np.uint64 | None = None  # rows hashing at or above it never enter

    @classmethod
    def of(cls, tables: Sequence[pa.Table], size: int) -> pa.Table:
        if len(tables) == 1 and tables[0].num_rows:  # which rows depends only on how many
            return tables[0].take(arrow_array(sample_positions(tables[0].num_rows, size)))
        sampler = cls(size)
        for t in tables:
            sampler.add(t)
        return sampler.sample()

    def add(self, keys: pa.Table) -> None:
        """Offer the next rows of the input (their key columns)."""
        n = keys.num_rows
        h = mix(np.arange(self.rows, self.rows + n, dtype=np.uint64) ^ _SAMPLE_SEED)
        self.rows += n
        if self._threshold is not None:
            picked = np.flatnonzero(h < self._threshold)
            h, keys = h[picked], keys.take(arrow_array(picked))
        if len(h):
            self._hashes.append(h)
            self._tables.append(keys)
            self._held += len(h)
            if self._held >= 2 * self.size:
                self._prune()

    def cast(self, schema: pa.Schema) -> None:
        """Cast the rows held to ``schema`` (a later chunk widened the key types: an
        all-null column to strings, integers to floats), so that they concatenate with
        what comes next.

        >>> s = Sampler(4); s.add(pa.table({'k': pa.nulls(2)}))
        >>> s.cast(pa.schema([('k', pa.string())])); s.add(pa.table({'k': ['a']}))
        >>> s.sample()['k'].to_pylist()
        [None, None, 'a']
        """
        self._tables = [t.cast(schema) for t in self._tables]

    def _prune(self) -> None:
        h = np.concatenate(self._hashes)
        keys = pa.concat_tables(self._tables)
        if len(h) > self.size:
            keep = np.argpartition(h, self.size - 1)[: self.size]
            keep.sort()  # the rows' input order (it decides nothing, but is reproducible)
            self._threshold = h[keep].max()
            h, keys = h[keep], keys.take(arrow_array(keep))
        self._hashes, self._tables, self._held = [h], [keys], len(h)

    def sample(self) -> pa.Table:
        """The sampled rows (fewer than ``size`` only when the input had fewer rows)."""
        if not self._tables:
            raise ValueError("no rows were offered: the sample has no schema")
        self._prune()
        return self._tables[0]

    @property
    def nbytes(self) -> int:
        """Bytes the sample holds (at most about twice ``size`` rows)."""
        return sum(t.nbytes for t in self._tables) + sum(h.nbytes for h in self._hashes)
