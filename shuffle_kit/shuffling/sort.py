"""``sort_values``: a sort larger than memory, as a range shuffle plus a sort per partition.

The rows are range-partitioned by the sort keys (``shuffle(partitioner="range")``: every
key of partition ``i`` sorts no later than those of partition ``i + 1``, equal keys in one
partition, input order kept within it), and each partition is sorted stably when it is
read (:class:`~shuffle_kit.shuffling.result.SortedResult`). Memory holds the shuffle's
limit while it runs, then a partition (and the batch read ahead) at a time.

A pandas DataFrame whose sorted copy fits the limit (and no ``store`` given) needs no
store: it is sorted whole in memory (:mod:`~shuffle_kit.shuffling.sorted_frame`), into the
same rows in the same order. So is an Arrow table (or record batch) whose frame and its
sorted copy fit beside it: converted as the shuffle converts its pieces, then sorted whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from ..byte_sizes import check_memory_limit
from ..defaults import shuffle_memory_limit
from ..frames import tables_to_frame
from ..kernels.keys import check_columns, check_npartitions, normalize_on
from ..limits import resolve_threads
from . import sorted_frame
from .api import shuffle
from .result import SortedResult


def sort_values(
    data: Any,
    by: Any,
    ascending: bool | Sequence[bool] = True,
    na_position: str = "last",
    *,
    memory_limit: int | str | None = None,
    npartitions: int | None = None,
    store: Any = None,
    progress: bool | None = None,
    keep_index: bool | None = None,
    chunk_bytes: int | str | None = None,
    threads: int | None = None,
) -> SortedResult:
    """The rows of ``data`` sorted by the columns ``by``, as a lazy sequence of partitions
    in key order: iterating gives DataFrames whose rows follow one another in order, and
    ``to_pandas()`` equals ``df.sort_values(by, ascending=..., na_position=...,
    kind="stable")``: the same values and dtypes, equal keys in input order, the index kept
    as :func:`~shuffle_kit.shuffle` keeps it (an unnamed RangeIndex is dropped, the rows
    numbered anew: pandas' ``ignore_index=True``).

    The order is pandas': each column ascending or not (``ascending``: one bool, or one per
    column), every kind of null (None, NaN, NaT, pd.NA) last or first (``na_position``)
    whatever the direction, ``-0.0`` equal to ``0.0``, categoricals (ordered or not) by
    their categories' order; lists, structs and Python objects have no order and are refused
    (:class:`~shuffle_kit.errors.UnorderableKeyError`).

    ``data`` is anything :func:`~shuffle_kit.shuffle` takes (a stream is read once) and
    the other arguments are its own, but a pandas DataFrame whose sorted copy (with a
    copy of its keys and ~32 bytes per row while their order is found) fits
    ``memory_limit``, with no ``store`` given, is sorted whole in memory: one stable order
    of its keys, its columns taken in that order on ``threads`` threads, the partitions
    slices of the sorted frame cut at exact boundaries (over every key, not a sample's).
    Partitions hold equal rows as far as the keys allow: a key holding more rows than a
    partition's share fills a partition of its own, which ``partition_sizes`` then names;
    ``boundaries`` are the last key of each partition but the last.
    ``write_parquet(directory)`` writes the partitions in order, each file covering a key
    range disjoint from the others'.

    >>> import pandas as pd
    >>> df = pd.DataFrame({'k': [3, None, 1, 3, 2], 'x': list('abcde')})
    >>> with sort_values(df, 'k', npartitions=2, progress=False) as rows:
    ...     rows.to_pandas()['x'].tolist(), [len(p) for p in rows]
    (['c', 'e', 'a', 'd', 'b'], [2, 3])
    """
    limit = shuffle_memory_limit() if memory_limit is None else check_memory_limit(memory_limit)
    if store is None and isinstance(data, (pa.Table, pa.RecordBatch)) and 3 * data.nbytes <= limit:
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        data = tables_to_frame([table])  # (the frame the shuffle's partitions would be cut from)
    if store is None and isinstance(data, pd.DataFrame):
        on = normalize_on(by)
        check_npartitions(npartitions)
        check_columns(on, list(data.columns) + [n for n in data.index.names if n is not None])
        usage = data.memory_usage(deep=True, index=True)
        in_index = any(k not in data.columns for k in on)
        nbytes, key_bytes = int(usage.sum()), int(usage[usage.index.isin(on + (["Index"] if in_index else []))].sum())
        if sorted_frame.fits(data, nbytes, key_bytes, limit):
            return sorted_frame.sort_frame(data, on, ascending, na_position, npartitions=npartitions,
                                           keep_index=keep_index, threads=resolve_threads(threads), nbytes=nbytes)
    parts = shuffle(
        data, by, npartitions, store=store, memory_limit=memory_limit, progress=progress, partitioner="range",
        keep_index=keep_index, chunk_bytes=chunk_bytes, threads=threads, ascending=ascending,
        na_position=na_position,
    )
    return parts.sort_within_partitions()
