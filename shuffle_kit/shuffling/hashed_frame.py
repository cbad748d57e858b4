"""``shuffle`` of a DataFrame that fits the memory limit: its rows put in partition order
in memory, no store.

Through a store every row is converted to Arrow, split per chunk, appended and read back
to pandas. A frame already in memory whose shuffled copy fits the limit needs none of it:
its key columns alone are converted to Arrow (the conversion the store path uses, so the
ids are the same), each row's partition id computed once (:func:`.assign.assign`), the
row numbers sorted stably by id (a counting or radix sort of small integers: rows keep
their input order within a partition), every column taken once in that order on ``threads`` threads
(:func:`.frame_slices.take_rows`), and the partitions handed out as slices of the one
shuffled frame (:class:`.frame_slices.FrameSlices`): the same rows in the same order,
with the input's dtypes, as the store path's partitions.

Memory: the shuffled copy, a copy of the key columns and about
:data:`ORDER_BYTES_PER_ROW` bytes per row (ids, their order, the rows ``dropna`` keeps),
which :func:`fits` counts against the limit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..kernels.keys import check_key_types, drop_null_keys, keeps_index, to_table
from ..kernels.split import count_ids, id_order
from .assign import Partitioner, assign
from .frame_slices import FrameSlices, take_rows

ORDER_BYTES_PER_ROW = 24  # an id (at most 4 bytes), its place in the order and a kept row number (8 each)
ROW = "__shuffle_kit_row__"


def frame_bytes(df: pd.DataFrame, on: list) -> tuple[int, int]:
    """(bytes of ``df`` in memory, bytes of its key columns ``on``; the index counts as a key
    if a key is one of its levels).

    >>> frame_bytes(pd.DataFrame({'k': [1, 2], 'x': [1.0, 2.0]}), ['k'])[1]
    16
    """
    usage = df.memory_usage(deep=True, index=True)
    in_index = any(k not in df.columns for k in on)
    return int(usage.sum()), int(usage[usage.index.isin(on + (["Index"] if in_index else []))].sum())


def fits(rows: int, nbytes: int, key_bytes: int, memory_limit: int) -> bool:
    """Whether shuffling a frame of ``rows`` rows (``nbytes`` in memory, ``key_bytes`` of
    them its key columns) whole holds ``memory_limit``.

    >>> fits(10, 80, 80, 1000), fits(10, 80, 80, 300)
    (True, False)
    """
    return nbytes + key_bytes + ORDER_BYTES_PER_ROW * rows <= memory_limit


def shuffle_frame(
    df: pd.DataFrame, on: list, npartitions: int, *, partitioner: Partitioner, dropna: bool,
    keep_index: bool | None, threads: int, nbytes: int,
) -> FrameSlices:
    """``df`` partitioned by the key columns (or index levels) ``on`` as :func:`shuffle`
    partitions it, with ``partitioner`` ``'hash'`` or ``'dask'``.

    >>> df = pd.DataFrame({'user': ['a', 'b', 'a', 'c'], 'x': [1, 2, 3, 4]})
    >>> parts = shuffle_frame(df, ['user'], 3, partitioner='hash', dropna=False, keep_index=None, threads=2, nbytes=64)
    >>> [p['x'].tolist() for p in parts], parts.sizes
    ([[1, 3], [2], [4]], [2, 1, 1])
    """
    present = [k for k in on if k in df.columns]
    keys, fields, _ = to_table(df[present], on, keep_index=False if len(present) == len(on) else keep_index)
    check_key_types(keys, fields)
    rows = len(df)
    kept = None
    if dropna:
        numbered = drop_null_keys(keys.append_column(ROW, pa.array(np.arange(rows, dtype=np.int64))), fields)
        if numbered.num_rows < rows:
            kept = numbered.column(ROW).to_numpy()
            keys = numbered.drop_columns([ROW])
    ids = assign(df, keys, on, fields, npartitions, partitioner)
    del keys
    counts = count_ids(ids, npartitions)
    # stable: rows of a partition keep their input order
    positions = id_order(ids)[0]
    del ids
    if kept is not None:
        positions = kept[positions]
    keep = keeps_index(df, on, keep_index)
    if keep and isinstance(df.index, pd.RangeIndex):  # a kept RangeIndex is values, as the store path keeps it
        df = df.set_axis(pd.Index(np.asarray(df.index), name=df.index.name), axis=0)
    frame = take_rows(df, positions, keep, threads)
    per_row = nbytes / rows if rows else 0.0
    return FrameSlices(frame, counts, (counts * per_row).astype(np.int64), on=on, dropped=not keep,
                       source="DataFrame", partitioner=partitioner if isinstance(partitioner, str) else None)
