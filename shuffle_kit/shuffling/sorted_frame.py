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

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..defaults import default_npartitions
from ..kernels.keys import check_key_types, keeps_index, to_table
from ..kernels.ranges import KeyOrder, partition_ends
from .frame_slices import FrameSlices, take_rows
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
                       source="DataFrame", boundaries=bounds, order=order)


def _level(frame: pd.DataFrame, key: Any, rows: np.ndarray) -> pd.Series:
    """The values of the column, or else the index level, ``key`` at ``rows``, with its
    dtype (nothing inferred), numbered from 0."""
    values = frame[key] if key in frame.columns else frame.index.get_level_values(key).to_series()
    return values.iloc[rows].reset_index(drop=True)


class SortedFrame(FrameSlices, SortedResult):
    """The partitions of a frame sorted whole in memory (see :func:`sort_frame`): slices of
    one sorted DataFrame (:class:`~.frame_slices.FrameSlices`), so reading them costs
    nothing and ``to_pandas()`` hands out the whole (a copy-on-write copy). Otherwise it is
    the :class:`SortedResult` of a range shuffle: the same rows in the same order,
    ``boundaries``, ``partition_sizes``, Arrow and polars views; closing it frees the
    sorted rows.
    """

    def sort_within_partitions(self) -> SortedFrame:
        """This result: its partitions are sorted already."""
        return self

    def _summary(self) -> dict[str, Any]:
        summary = super()._summary()
        summary["store"] = "closed" if self._closed else "memory (the input sorted whole)"
        return summary
