"""``merge`` of two dask DataFrames through shuffle_kit: both sides hash-shuffled by the same
hash of their key columns into the same number of partitions, then each partition pair
joined by pandas' ``merge`` (:mod:`shuffle_kit.kernels.joins`), one task per pair.

The graph (the hash shuffle's tasks, :mod:`._tasks`, twice over one store)::

    shuffle_kit-setup        one task: the run's store (both sides' pieces go to it)
    shuffle_kit-map  i       per partition of the left, then of the right: hash, split, append
    shuffle_kit-barrier      one per side: rows expected in each output partition
    shuffle_kit-merge j      per output partition: read partition j of both sides, join them

The hash is of values, not storage types (:mod:`shuffle_kit.kernels.hashing`), so keys
pandas joins (``int64`` with ``Int64`` or ``float64``, every string dtype) meet in the same
pair. The two sides share the setup task's store (on ``distributed``, one server per
worker for both) under different run ids, so their pieces and batch ids never mix.

A side with one partition (a pandas DataFrame is made one with ``dd.from_pandas``, as dask
does) is not shuffled when ``how`` keeps no unmatched row of its own (inner, or the other
side's left/right join) and no ``npartitions`` is asked for: it is joined whole with each
partition of the other side, as dask's single-partition merge does.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import ArgumentTypeError, JobError
from ..kernels.joins import HOWS, Join, resolve_keys
from ..kernels.keys import check_npartitions
from ._assign import HashIds
from ._graph import new_spec
from ._plans import PREFIX, Plan, ShuffleSpec
from ._tasks import barrier, map_partition, read_partition, setup
from .cluster import server_settings


def merge(
    left: Any,
    right: Any,
    on: Any = None,
    *,
    left_on: Any = None,
    right_on: Any = None,
    how: str = "inner",
    suffixes: tuple[str | None, str | None] = ("_x", "_y"),
    npartitions: int | None = None,
    nulls_equal: bool = True,
    store: Any = None,
) -> Any:
    """``dask.dataframe.merge(left, right, ...)`` with shuffle_kit as the shuffle.

    ``left`` and ``right`` are dask DataFrames (or one of them a pandas DataFrame, made a
    one-partition dask DataFrame as dask does). Keys are columns: ``on``, or ``left_on`` and
    ``right_on``, or the columns both sides have. Returns a dask DataFrame of
    ``npartitions`` partitions (default: the larger side's count) with dask's ``meta`` for
    the merge and unknown divisions; each partition is pandas' ``merge`` of a partition
    pair (``sort=False``), with its own RangeIndex and its own dtypes, as dask's
    partitions (an ``int64`` column of a side that may be missing is ``float64`` only in
    partitions where a row is missing); computed, it equals ``dask.dataframe.merge``'s
    result and ``pandas.merge`` of the computed sides, up to row order. Null keys match
    each other as in pandas, or nothing with ``nulls_equal=False`` (SQL's rule).

    A side of one partition is joined whole with each partition of the other when ``how``
    allows it (module docstring); ``store=`` is as for :func:`shuffle_kit.dask.shuffle`.

    >>> import pandas as pd, dask.dataframe as dd
    >>> flights = dd.from_pandas(pd.DataFrame({'tail': ['N1', 'N2', 'N1', 'N3'], 'dep': [5, 7, 9, 1]}), npartitions=2)
    >>> planes = dd.from_pandas(pd.DataFrame({'tail': ['N1', 'N2'], 'seats': [150, 90]}), npartitions=2)
    >>> out = merge(flights, planes, on='tail', how='left')
    >>> out.compute(scheduler='sync').sort_values('dep')['seats'].tolist()
    [nan, 150.0, 90.0, 150.0]
    """
    if how not in HOWS:
        raise JobError(f"how must be one of {', '.join(map(repr, HOWS))}, not {how!r}")
    if not isinstance(suffixes, (tuple, list)) or len(suffixes) != 2:
        raise ArgumentTypeError(f"suffixes must be a pair of strings (or None), not {suffixes!r}")
    if not isinstance(nulls_equal, bool):
        raise ArgumentTypeError(f"nulls_equal must be True or False, not {nulls_equal!r}")
    check_npartitions(npartitions)
    if isinstance(left, pd.DataFrame) and isinstance(right, pd.DataFrame):
        raise ArgumentTypeError(
            "shuffle_kit.dask.merge joins dask DataFrames: for two pandas DataFrames use pandas.merge or "
            "shuffle_kit.merge"
        )
    left, right = _as_dask(left, "left"), _as_dask(right, "right")
    lkeys, rkeys, given_on = resolve_keys(on, left_on, right_on, list(left._meta.columns),
                                          list(right._meta.columns))
    join = Join(lkeys, rkeys, how, tuple(suffixes), on=given_on, nulls_equal=nulls_equal)
    join.check(left._meta, right._meta)
    meta = _meta(join, left, right)
    server_settings()  # a bad shuffle_kit.dask config value fails here, before any task runs

    if npartitions is None and (right.npartitions == 1 and how in ("inner", "left")
                                or left.npartitions == 1 and how in ("inner", "right")):
        return _broadcast(left, right, join, meta)
    n = int(npartitions) if npartitions is not None else max(left.npartitions, right.npartitions)
    lspec = new_spec(left, lkeys, n, HashIds(), store=store, token="merge-left", keep_index=False)
    rspec = new_spec(right, rkeys, n, HashIds(), store=store, token="merge-right", keep_index=False)
    return _hash_join(left, right, lspec, rspec, join, meta)


def _as_dask(side: Any, name: str) -> Any:
    import dask.dataframe as dd

    if isinstance(side, pd.DataFrame):
        return dd.from_pandas(side, npartitions=1)  # dask's conversion (its string dtypes) of the frame
    if not isinstance(side, dd.DataFrame):
        raise ArgumentTypeError(
            f"{name}: shuffle_kit.dask.merge takes a dask or pandas DataFrame, not {type(side).__name__}"
        )
    return side


def _meta(join: Join, left: Any, right: Any) -> pd.DataFrame:
    """dask's meta of the merge: pandas' merge of both sides' non-empty metas, no rows."""
    from dask.dataframe.utils import make_meta

    try:
        return make_meta(join.join(left._meta_nonempty, right._meta_nonempty))
    except (ValueError, TypeError, KeyError) as e:
        raise JobError(f"merge: {' '.join(str(e).split())}") from None


def _hash_join(left: Any, right: Any, lspec: ShuffleSpec, rspec: ShuffleSpec, join: Join, meta: pd.DataFrame) -> Any:
    import dask
    import dask.dataframe as dd

    n = lspec.npartitions
    delayed = dask.delayed
    plan = delayed(setup, pure=True)(lspec, dask_key_name=lspec.task_key("setup"))
    sides = []
    for spec, ddf in ((lspec, left), (rspec, right)):
        maps = [
            delayed(map_partition, pure=True)(spec, plan, part, i, dask_key_name=(spec.task_key("map"), i))
            for i, part in enumerate(ddf.to_delayed())
        ]
        done = delayed(barrier, pure=True)(plan, n, *maps, dask_key_name=spec.barrier_key)
        sides.append((done, delayed(ddf._meta, pure=True)))
    (ldone, lempty), (rdone, rempty) = sides
    empty = delayed(meta, pure=True)
    parts = [
        delayed(join_pair, pure=True)(lspec, ldone, rspec, rdone, j, lempty, rempty, join, empty,
                                      dask_key_name=(lspec.task_key("merge"), j))
        for j in range(n)
    ]
    return dd.from_delayed(parts, meta=meta, prefix=f"{PREFIX}-merge", verify_meta=False)


def join_pair(
    lspec: ShuffleSpec, ldone: tuple[Plan, Any], rspec: ShuffleSpec, rdone: tuple[Plan, Any], p: int,
    lempty: pd.DataFrame, rempty: pd.DataFrame, join: Join, meta: pd.DataFrame,
) -> pd.DataFrame:
    """Output partition ``p``: partition ``p`` of each side, joined (a pair without rows
    too: its dtypes are pandas' for it, as dask's partitions)."""
    lf = read_partition(lspec, ldone, p, lempty)
    rf = read_partition(rspec, rdone, p, rempty)
    return _in_meta_order(join.join(lf, rf), meta)


def join_whole(part: pd.DataFrame, whole: pd.DataFrame, whole_is_right: bool, join: Join,
               meta: pd.DataFrame) -> pd.DataFrame:
    """One partition of a side joined with the other side whole."""
    out = join.join(part, whole) if whole_is_right else join.join(whole, part)
    return _in_meta_order(out, meta)


def _broadcast(left: Any, right: Any, join: Join, meta: pd.DataFrame) -> Any:
    import dask
    import dask.dataframe as dd

    whole_is_right = right.npartitions == 1 and join.how in ("inner", "left")
    big, small = (left, right) if whole_is_right else (right, left)
    (whole,) = small.to_delayed()
    task = dask.delayed(join_whole, pure=True)
    parts = [task(part, whole, whole_is_right, join, meta) for part in big.to_delayed()]
    return dd.from_delayed(parts, meta=meta, prefix=f"{PREFIX}-merge-whole", verify_meta=False)


def _in_meta_order(out: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    # pandas orders the columns of a join with an empty left side its own way
    if not out.columns.equals(meta.columns) and out.columns.is_unique and set(out.columns) == set(meta.columns):
        return out[meta.columns]
    return out
