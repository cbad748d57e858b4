"""``sort_values``: a sort larger than memory, as a range shuffle plus a sort per partition.

The rows are range-partitioned by the sort keys (``shuffle(partitioner="range")``: every
key of partition ``i`` sorts no later than those of partition ``i + 1``, equal keys in one
partition, input order kept within it), and each partition is sorted stably when it is
read (:class:`~shuffle_kit.shuffling.result.SortedResult`). Memory holds the shuffle's
limit while it runs, then a partition (and the batch read ahead) at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    the other arguments are its own. Partitions hold equal rows as far as the keys allow:
    a key holding more rows than a partition's share fills a partition of its own, which
    ``partition_sizes`` then names; ``boundaries`` are the last key of each partition but
    the last. ``write_parquet(directory)`` writes the partitions in order, each file
    covering a key range disjoint from the others'.

    >>> import pandas as pd
    >>> df = pd.DataFrame({'k': [3, None, 1, 3, 2], 'x': list('abcde')})
    >>> with sort_values(df, 'k', npartitions=2, progress=False) as rows:
    ...     rows.to_pandas()['x'].tolist(), [len(p) for p in rows]
    (['c', 'e', 'a', 'd', 'b'], [2, 3])
    """
    parts = shuffle(
        data, by, npartitions, store=store, memory_limit=memory_limit, progress=progress, partitioner="range",
        keep_index=keep_index, chunk_bytes=chunk_bytes, threads=threads, ascending=ascending,
        na_position=na_position,
    )
    return parts.sort_within_partitions()
