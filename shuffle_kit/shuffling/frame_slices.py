"""Partitions of a frame held whole in memory: its rows taken once in partition order,
each partition a slice of that one frame.

A shuffle or sort of a pandas DataFrame that fits the memory limit needs no store: one
order of its rows (partition after partition) is found from its keys, every column is
taken in that order once by :func:`take_rows` (pandas' own ``take`` of each column, on
worker threads: NumPy's and Arrow's takes release the GIL), and :class:`FrameSlices`
hands the partitions out as slices of the result. No column goes to Arrow and back, so
the dtypes are the input's, and reading a partition copies nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..frames import tables_to_frame
from ..kernels.keys import to_table
from ..limits import executor
from .result import ShuffleResult


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


class FrameSlices(ShuffleResult):
    """Partitions that are consecutive slices of one DataFrame ``frame`` held in memory:
    partition ``i`` is its ``sizes[i]`` rows after those of the partitions before it.
    Reading one costs nothing; ``dropped``: the input's index was left out, so each
    partition's rows are numbered from 0 as a shuffle through a store numbers them.
    Closing the result frees the frame; an empty partition is the frame's first zero rows
    through the store's conversion, as a shuffle's are. Other arguments as for
    :class:`ShuffleResult`.

    >>> df = pd.DataFrame({'k': [1, 1, 2]})
    >>> parts = FrameSlices(df, np.array([2, 0, 1]), np.array([16, 0, 8]), on=['k'], dropped=True, source='x')
    >>> [p['k'].tolist() for p in parts], parts[2].index.tolist()
    ([[1, 1], [], [2]], [0])
    """

    def __init__(self, frame: pd.DataFrame, sizes: np.ndarray, nbytes: np.ndarray, *, on: list, dropped: bool,
                 source: str, boundaries: pd.DataFrame | None = None, order: Any = None,
                 partitioner: str | None = None):
        held = [frame]
        empty = self._renumbered(tables_to_frame([frame_table(frame.iloc[:0], dropped)]), dropped)
        super().__init__(
            None, len(sizes), np.asarray(sizes, dtype=np.int64), np.asarray(nbytes, dtype=np.int64), on=on,
            empty=empty, schema=None, source=source, cleanups=[held.clear], owns_store=True,
            boundaries=boundaries, order=order, partitioner=partitioner,
        )
        self._held = held
        self._dropped = dropped
        self._starts = np.concatenate([[0], np.cumsum(self._sizes)]).astype(np.int64).tolist()

    @staticmethod
    def _renumbered(part: pd.DataFrame, dropped: bool) -> pd.DataFrame:
        # a dropped index numbers each partition's rows from 0, as a shuffle's partitions
        # do; set on the new slice itself (set_axis would make another frame of it)
        if dropped:
            part.index = pd.RangeIndex(len(part))
        elif isinstance(part.index, pd.MultiIndex):
            # a slice keeps the whole frame's levels; a partition read from a store has the
            # levels of its own rows (one of only NaN is empty)
            part.index = part.index.remove_unused_levels()
        return part

    def _slice(self, j: int, as_arrow: bool) -> Any:
        part = self._renumbered(self._held[0].iloc[self._starts[j]:self._starts[j + 1]], self._dropped)
        return frame_table(part, self._dropped) if as_arrow else part

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

    def pieces(self, i: int, max_bytes: int = 64 * 2**20) -> Iterator[pd.DataFrame]:
        """Partition ``i`` as one piece (a slice of the frame, already in memory), if it has rows."""
        j = self._index(i)
        if self._sizes[j]:
            yield self._slice(j, False)

    def read(self, indices: Sequence[int]) -> list[pd.DataFrame]:
        """Partitions ``indices``, in order (empty ones too)."""
        return [self.partition(i) for i in indices]

    def _empty_table(self) -> pa.Table:
        return frame_table(self._empty, self._dropped)

    def to_pandas(self) -> pd.DataFrame:
        """Every row, partition after partition, as one DataFrame (a copy-on-write copy of
        the frame: a dropped index numbered 0..n-1, as concatenating the partitions would)."""
        self._index(0)  # closed?
        return self._held[0].copy(deep=False)

    def to_arrow(self) -> pa.Table:
        """Every row, partition after partition, as one ``pyarrow.Table``."""
        self._index(0)  # closed?
        return frame_table(self._held[0], self._dropped)

    def _summary(self) -> dict[str, Any]:
        summary = super()._summary()
        summary["store"] = "closed" if self._closed else "memory (the input's rows in partition order)"
        return summary


def frame_table(part: pd.DataFrame, dropped: bool) -> pa.Table:
    """A slice as the Arrow table a shuffle's partition reads as (a dropped index left out).

    >>> frame_table(pd.DataFrame({'a': [1]}), True).column_names
    ['a']
    """
    return to_table(part, [], keep_index=not dropped)[0]
