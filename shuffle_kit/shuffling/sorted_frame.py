"""``sort_values`` of a DataFrame that fits the memory limit: sorted whole, in memory.

A range shuffle writes every row to a store and reads it back to sort it again per
partition; a frame already in memory whose sorted copy fits the limit needs neither. Its
key columns are converted to Arrow (the conversion the shuffle uses), their stable order
computed once (:meth:`~shuffle_kit.kernels.ranges.KeyOrder.ranked_runs`: the same order,
so the same rows as the shuffle's), and each column's rows taken in that order by
pandas' own ``take`` on ``threads`` worker threads (NumPy's and Arrow's takes release the
GIL): no column is converted to Arrow and back, and the dtypes are the input's. The
partitions are then slices of the one sorted frame, cut where :func:`partition_ends`
cuts a sample's keys, but over every key: the boundaries are exact.

Memory: the sorted copy, plus a copy of the key columns and about
:data:`ORDER_BYTES_PER_ROW` bytes per row while the order is computed (codes, digits and
row numbers), which :func:`fits` counts against the limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..defaults import default_npartitions
from ..kernels.keys import check_key_types, keeps_index, to_table
from ..kernels.ranges import KeyOrder, partition_ends
from ..limits import executor
from .result import SortedResult

ORDER_BYTES_PER_ROW = 32  # the codes, a digit and two row orders, at most


def fits(df: pd.DataFrame, nbytes: int, key_bytes: int, memory_limit: int) -> bool:
    """Whether sorting ``df`` (``nbytes`` in memory, ``key_bytes`` of them its key
    columns) whole holds ``memory_limit``: its sorted copy, a copy of its keys (a key
    without integer codes is sorted in key ranges, each taken apart) and the order.

    >>> df = pd.DataFrame({'k': range(10)})
    >>> fits(df, 80, 80, 1000), fits(df, 80, 80, 300)
    (True, False)
    """
    return nbytes + key_bytes + ORDER_BYTES_PER_ROW * len(df) <= memory_limit


def sort_frame(
    df: pd.DataFrame, on: list, ascending: bool | Sequence[bool], na_position: str, *, npartitions: int | None,
    keep_index: bool | None, threads: int, nbytes: int,
) -> SortedFrame:
    """``df`` sorted by the key columns (or index levels) ``on`` as :func:`sort_values`
    sorts it, in ``npartitions`` partitions (default: one per 100 MB of ``nbytes``).

    >>> df = pd.DataFrame({'k': [3, None, 1, 3, 2], 'x': list('abcde')})
    >>> rows = sort_frame(df, ['k'], True, 'last', npartitions=2, keep_index=None, threads=1, nbytes=80)
    >>> rows.to_pandas()['x'].tolist(), rows.sizes, rows.boundaries['k'].tolist()
    (['c', 'e', 'a', 'd', 'b'], [2, 3], [2.0])
    """
    present = [k for k in on if k in df.columns]
    keys, fields, _ = to_table(df[present], on, keep_index=False if len(present) == len(on) else keep_index)
    check_key_types(keys, fields)
    order = KeyOrder.of(keys, fields, ascending, na_position)
    keys = pa.Table.from_arrays([keys.column(f) for f in fields], names=list(order.fields))
    n = default_npartitions(nbytes) if npartitions is None else int(npartitions)
    rows = len(df)
    if n > 1 and rows:
        ranked, runs = order.ranked_runs(keys, n, threads)
        ends = partition_ends(runs, n)
    else:
        ranked, ends = order.sort_indices(keys, threads), np.full(max(n - 1, 0), rows - 1, dtype=np.int64)
    del keys
    keep = keeps_index(df, on, keep_index)
    frame = take_rows(df, ranked, keep, threads)
    sizes = np.diff(np.concatenate([[-1], ends, [rows - 1]])).astype(np.int64)
    last = ends if rows else ends[:0]
    bounds = pd.DataFrame({i: _level(frame, k, last) for i, k in enumerate(on)}, copy=False)
    bounds.columns = pd.Index(on)
    per_row = nbytes / rows if rows else 0.0
    return SortedFrame(frame, sizes, (sizes * per_row).astype(np.int64), on=on, dropped=not keep,
                       boundaries=bounds, order=order)


def _level(frame: pd.DataFrame, key: Any, rows: np.ndarray) -> pd.Series:
    """The values of the column, or else the index level, ``key`` at ``rows``, with its
    dtype (nothing inferred), numbered from 0."""
    values = frame[key] if key in frame.columns else frame.index.get_level_values(key).to_series()
    return values.iloc[rows].reset_index(drop=True)


def take_rows(df: pd.DataFrame, positions: np.ndarray, keep_index: bool, threads: int) -> pd.DataFrame:
    """The rows of ``df`` at ``positions``, each column taken on one of ``threads``
    threads; the index taken too if ``keep_index``, else numbered anew.

    >>> take_rows(pd.DataFrame({'a': [1, 2, 3]}, index=[7, 8, 9]), np.array([2, 0]), True, 2)
       a
    9  3
    7  1
    """
    columns = [df.iloc[:, i].array for i in range(df.shape[1])]
    with executor(threads, "shuffle_kit-take") as pool:
        taking = pool.submit(df.index.take, positions) if keep_index else None
        # the largest columns first, so that no thread is left with a large one at the end
        largest = sorted(range(len(columns)), key=lambda i: -columns[i].nbytes)
        futures = {i: pool.submit(columns[i].take, positions) for i in largest}
        arrays = [futures[i].result() for i in range(len(columns))]
        index = taking.result() if taking else pd.RangeIndex(len(positions))
    # Series of the input's dtypes, on one index: nothing is inferred (object columns of
    # strings stay object), aligned or copied
    series = {i: pd.Series(a, index=index, dtype=c.dtype, copy=False) for i, (a, c) in enumerate(zip(arrays, columns))}
    out = pd.DataFrame(series, index=index, copy=False)
    out.columns = df.columns
    return out


class SortedFrame(SortedResult):
    """The partitions of a frame sorted whole in memory (see :func:`sort_frame`): slices of
    one sorted DataFrame, so reading them costs nothing and ``to_pandas()`` hands out the
    whole (a copy-on-write copy). Otherwise it is the :class:`SortedResult` of a range
    shuffle: the same rows in the same order, ``boundaries``, ``partition_sizes``, Arrow
    and polars views; closing it frees the sorted rows.
    """

    def __init__(self, frame: pd.DataFrame, sizes: np.ndarray, nbytes: np.ndarray, *, on: list, dropped: bool,
                 boundaries: pd.DataFrame, order: KeyOrder):
        held = [frame]
        super().__init__(
            None, len(sizes), sizes, nbytes, on=on, empty=self._renumbered(frame.iloc[:0], dropped), schema=None,
            source="DataFrame", cleanups=[held.clear], owns_store=True, boundaries=boundaries, order=order,
        )
        self._held = held
        self._dropped = dropped
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @staticmethod
    def _renumbered(part: pd.DataFrame, dropped: bool) -> pd.DataFrame:
        # a dropped index numbers each partition's rows from 0, as a shuffle's partitions do
        return part.set_axis(pd.RangeIndex(len(part)), axis=0) if dropped else part

    def _slice(self, j: int, as_arrow: bool) -> Any:
        part = self._renumbered(self._held[0].iloc[self._starts[j]:self._starts[j + 1]], self._dropped)
        return _arrow(part, self._dropped) if as_arrow else part

    def _read(self, keys: list[int], as_arrow: bool = False) -> list[Any]:
        self._index(keys[0])  # closed?
        return [self._slice(k, as_arrow) for k in keys]

    def _filled(self, as_arrow: bool) -> Iterator[tuple[int, Any]]:
        self._index(0)  # closed?
        for j in np.flatnonzero(self._sizes).tolist():
            yield j, self._slice(j, as_arrow)

    def partition(self, i: int, as_arrow: bool = False, *, as_polars: bool = False) -> Any:
        if as_polars:
            return super().partition(i, as_polars=True)  # (reads it through this method as Arrow)
        j = self._index(i)
        if self._sizes[j] == 0:
            return self._empty_table() if as_arrow else self._empty.copy()
        return self._slice(j, as_arrow)

    def pieces(self, i: int) -> Iterator[pd.DataFrame]:
        """Partition ``i`` as one piece (a slice of the sorted frame), if it has rows."""
        j = self._index(i)
        if self._sizes[j]:
            yield self._slice(j, False)

    def read(self, indices: Sequence[int]) -> list[pd.DataFrame]:
        """Partitions ``indices``, in order (empty ones too)."""
        return [self.partition(i) for i in indices]

    def _empty_table(self) -> pa.Table:
        return _arrow(self._empty, self._dropped)

    def to_pandas(self) -> pd.DataFrame:
        """Every row in order, as one DataFrame (a copy-on-write copy of the sorted frame)."""
        self._index(0)  # closed?
        return self._held[0].copy(deep=False)

    def to_arrow(self) -> pa.Table:
        """Every row in order, as one ``pyarrow.Table``."""
        self._index(0)  # closed?
        return _arrow(self._held[0], self._dropped)

    def sort_within_partitions(self) -> SortedFrame:
        """This result: its partitions are sorted already."""
        return self

    def _summary(self) -> dict[str, Any]:
        summary = super()._summary()
        summary["store"] = "closed" if self._closed else "memory (the input sorted whole)"
        return summary


def _arrow(part: pd.DataFrame, dropped: bool) -> pa.Table:
    """A slice as the Arrow table a shuffle's partition reads as (a dropped index left out)."""
    return to_table(part, [], keep_index=not dropped)[0]

