"""``sort_values`` and ``set_index`` of a dask DataFrame through shuffle_kit: a shuffle by
key range (the hash shuffle's tasks, with :class:`~._assign.RangeIds` for the hash) whose
read tasks sort their partition (:class:`~._assign.SortWithin`). The key ranges come from
a sample of every input partition: ``set_index`` computes it at once (its divisions are
part of the result, as dask computes them), ``sort_values`` in the same graph (its
divisions are unknown: one computation, and the input is computed once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ArgumentTypeError, JobError, missing_column
from ..kernels.keys import check_npartitions, normalize_on, to_table
from ..kernels.ranges import NA_POSITIONS, KeyOrder
from ._assign import RangeIds, SortWithin
from ._graph import new_spec, shuffle_graph
from ._ranges import SampledRanges, check_order, divisions_of, key_fields, sample_ranges
from .cluster import server_settings


def sort_values(
    ddf: Any, by: Any, ascending: bool | Sequence[bool] = True, na_position: str = "last",
    npartitions: int | None = None, *, store: Any = None,
) -> Any:
    """``ddf.sort_values(by, ascending=..., na_position=...)`` with shuffle_kit as the shuffle.

    Returns a dask DataFrame of at most ``npartitions`` partitions (default: as many as
    ``ddf``) in key order: computed, it equals pandas' ``df.sort_values(by, kind="stable",
    ...)`` (equal keys in input order, the index kept). Its divisions are unknown, as
    those of dask's ``sort_values``: the index is not the key. The order is
    :class:`~shuffle_kit.kernels.ranges.KeyOrder`'s (pandas'): ``ascending`` one bool or
    one per column, every kind of null last (or first) whatever the direction.

    >>> import pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({'k': [3, None, 1, 2], 'x': list('abcd')}), npartitions=2)
    >>> sort_values(ddf, 'k').compute(scheduler='sync')['x'].tolist()
    ['c', 'd', 'a', 'b']
    """
    keys = _check(ddf, by, npartitions, "sort_values")
    if na_position not in NA_POSITIONS:
        raise JobError(f"na_position must be 'last' or 'first', not {na_position!r}")
    n = int(npartitions) if npartitions is not None else ddf.npartitions
    fields = key_fields(ddf, keys)
    order = check_order(fields, ascending, na_position)  # the read tasks get the sample's
    sampled = SampledRanges(tuple(keys), tuple(fields), n, ascending, na_position)
    spec = new_spec(ddf, keys, n, None, store=store, arrange=SortWithin(order), token="sort_values")
    return shuffle_graph(ddf, spec, ddf._meta, None, "sort-values", sampled)


def set_index(
    ddf: Any, col: Any, npartitions: int | None = None, *, divisions: Sequence | None = None, store: Any = None,
) -> Any:
    """``ddf.set_index(col)`` with shuffle_kit as the shuffle: the column ``col`` becomes the
    sorted index (the old index is dropped), with known divisions.

    The divisions are dask's: partition ``i`` holds the keys in ``[divisions[i],
    divisions[i+1])``, the last one closed, the first division the smallest key and the
    last the largest. Without ``divisions`` they come from a sample of every input
    partition (exact when each has no more than about a thousand rows); there may be fewer
    partitions than ``npartitions`` (default: as many as ``ddf``) when the keys have too
    few distinct values, as in dask. Given ``divisions`` (sorted, ``npartitions + 1`` of
    them), the rows go where dask's ``set_index(col, divisions=...)`` puts them, except
    that a key below the first division goes to the first partition (dask: the last).
    Null keys (None, NaN, NaT) go last, in the last partition (dask, where it takes them:
    the same); no non-null key at all gives one partition with unknown divisions. Rows
    with equal keys keep their input order.

    >>> import pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({'k': [3, 1, 4, 1, 5, 9], 'x': list('abcdef')}), npartitions=2)
    >>> out = set_index(ddf, 'k')
    >>> out.divisions, out.compute(scheduler='sync')['x'].tolist()
    ((1, 4, 9), ['b', 'd', 'a', 'c', 'e', 'f'])
    """
    keys = _check(ddf, col, npartitions, "set_index")
    if len(keys) != 1:
        raise ArgumentTypeError(f"set_index takes one column, not {col!r}")
    meta = ddf._meta.set_index(keys[0])
    if divisions is None:
        n = int(npartitions) if npartitions is not None else ddf.npartitions
        samples, order, sample, bounds = sample_ranges(ddf, keys, n, True, "last", extremes=True)
        opening, known = divisions_of(order, sample, bounds, samples)
        if known[0] is not None:  # one kind of scalar throughout: the column's, as pandas gives them
            known = tuple(pd.Series(list(known), dtype=ddf._meta[keys[0]].dtype).tolist())
    else:
        order, opening, known = _given(ddf, keys, divisions, npartitions)
    spec = new_spec(ddf, keys, len(known) - 1, RangeIds(order, opening, closed="left"), store=store,
                    arrange=SortWithin(order, keys[0], has_index=True), token="set_index", keep_index=False)
    return shuffle_graph(ddf, spec, meta, known, "set-index")


def _check(ddf: Any, by: Any, npartitions: Any, what: str) -> list:
    import dask.dataframe as dd

    keys = normalize_on(by)
    check_npartitions(npartitions)
    if not isinstance(ddf, dd.DataFrame):
        raise ArgumentTypeError(f"shuffle_kit.dask.{what} takes a dask DataFrame, not {type(ddf).__name__}")
    for k in keys:
        if k not in ddf._meta.columns:
            raise missing_column(k, list(ddf._meta.columns), "the DataFrame")
    server_settings()  # a bad shuffle_kit.dask config value fails here, before any task runs
    return keys


def _given(ddf: Any, keys: list, given: Sequence, npartitions: Any) -> tuple[KeyOrder, pa.Table, tuple]:
    """(the key order, the keys opening partitions 1, 2, ..., the divisions) of a user's
    ``divisions=``."""
    values = list(given) if isinstance(given, Sequence | pd.Index | np.ndarray) else None
    if values is None or len(values) < 2:
        raise ArgumentTypeError(f"divisions must be a sequence of at least 2 keys, not {given!r}")
    index = pd.Index(values)
    if index.hasnans or not index.is_monotonic_increasing:
        raise JobError(f"divisions must be sorted and hold no null, not {values!r}")
    if npartitions is not None and int(npartitions) != len(values) - 1:
        raise JobError(f"npartitions={npartitions} with {len(values)} divisions: give len(divisions) - 1 (or omit it)")
    col = keys[0]
    inner = values[1:-1]
    frame = ddf._meta_nonempty.iloc[[0] * len(inner)].copy()
    try:
        frame[col] = pd.Series(inner, dtype=ddf._meta[col].dtype, index=frame.index)
    except (TypeError, ValueError) as e:
        raise JobError(f"divisions do not convert to the dtype of column {col!r} ({ddf._meta[col].dtype}): {e}") from e
    table, fields, _ = to_table(frame, keys, keep_index=True)
    opening = table.select(fields)
    return KeyOrder.of(opening, fields), opening, tuple(values)
