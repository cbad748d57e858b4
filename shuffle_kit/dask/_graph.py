"""The public functions: check the arguments, then build the graph with public dask APIs
only (``to_delayed``, ``delayed``, ``from_delayed``); the tasks are in :mod:`._tasks`."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ..codecs import ArrowIPC, Codec
from ..errors import ArgumentTypeError, JobError, missing_column
from ..kernels.keys import check_npartitions, check_partitioner, normalize_on
from ..kernels.ranges import NA_POSITIONS
from ..stores import File, Store
from ._assign import Arrange, DaskIds, HashIds, PartitionIds
from ._local import local_cleanup, temporary_directory
from ._plans import PREFIX, ShuffleSpec
from ._ranges import SampledRanges, check_order, key_fields, sample_partition
from ._tasks import barrier, map_partition, read_partition, setup
from .cluster import server_settings


def shuffle(
    ddf: Any, on: Any, npartitions: int | None = None, *, store: Any = None, partitioner: str = "hash",
    ascending: bool | Sequence[bool] | None = None, na_position: str | None = None,
) -> Any:
    """Hash-partition the dask DataFrame ``ddf`` by the columns ``on`` through shuffle_kit.

    Returns a dask DataFrame of ``npartitions`` partitions (default: as many as ``ddf``)
    with ``ddf``'s meta, unknown divisions, and every row with the same key in the same
    partition; within a partition rows come in input order. ``partitioner="dask"``
    assigns rows exactly as ``ddf.shuffle(on)`` does (co-partitioned with dask's own
    shuffles); ``"hash"`` uses shuffle_kit's documented hash. Null keys are kept.

    ``partitioner="range"`` puts the partitions in key order: every key of partition
    ``i`` sorts no later than every key of partition ``i + 1`` (``ascending`` and
    ``na_position`` as pandas' ``sort_values``: one bool or one per key, nulls and NaN
    last by default), equal keys never split, sizes balanced from a sample of every input
    partition taken in the same graph. The rows of a
    partition stay in input order and the divisions stay unknown (the key is not the
    index, or the partitions are not sorted): :func:`sort_values` sorts them too, and
    :func:`set_index` gives known divisions. Empty partitions are kept when the keys have
    fewer distinct values than partitions.

    >>> import pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({'k': list('abcabc'), 'x': range(6)}), npartitions=2)
    >>> out = shuffle(ddf, 'k', 3)
    >>> parts = [p for p in out.to_delayed()]
    >>> sorted(sorted(p.compute(scheduler='sync')['x']) for p in parts)
    [[0, 3], [1, 4], [2, 5]]
    >>> import dask
    >>> ranged = shuffle(ddf, 'k', 3, partitioner='range', ascending=False)
    >>> [p['k'].tolist() for p in dask.compute(*ranged.to_delayed(), scheduler='sync')]
    [['c', 'c'], ['b', 'b'], ['a', 'a']]
    """
    import dask.dataframe as dd

    keys = normalize_on(on)
    check_npartitions(npartitions)
    if callable(partitioner):  # the graph's tasks place rows by declared ids, not a user's function
        raise JobError("shuffle_kit.dask.shuffle takes partitioner 'hash', 'dask' or 'range', not a function")
    check_partitioner(partitioner, names=("hash", "dask", "range"))
    if partitioner != "range" and (ascending is not None or na_position is not None):
        raise JobError("ascending and na_position order the partitions of partitioner='range' only")
    if na_position is not None and na_position not in NA_POSITIONS:
        raise JobError(f"na_position must be 'last' or 'first', not {na_position!r}")
    if not isinstance(ddf, dd.DataFrame):
        raise ArgumentTypeError(f"shuffle_kit.dask.shuffle takes a dask DataFrame, not {type(ddf).__name__}")
    meta = ddf._meta
    for k in keys:
        if k not in meta.columns and k not in meta.index.names:
            raise missing_column(k, list(meta.columns), "the DataFrame")
    if partitioner == "dask" and any(k not in meta.columns for k in keys):
        raise JobError("partitioner='dask' shuffles on columns only (as ddf.shuffle does)")
    server_settings()  # a bad shuffle_kit.dask config value fails here, before any task runs
    n = int(npartitions) if npartitions is not None else ddf.npartitions
    ids: PartitionIds | None = DaskIds(tuple(keys)) if partitioner == "dask" else HashIds()
    sampled = None
    if partitioner == "range":
        direction = True if ascending is None else ascending
        check_order(keys, direction, na_position or "last")
        sampled = SampledRanges(tuple(keys), tuple(key_fields(ddf, keys)), n, direction, na_position or "last")
        ids = None
    spec = new_spec(ddf, keys, n, ids, store=store, token=partitioner)
    return shuffle_graph(ddf, spec, meta, None, "shuffle", sampled)


def new_spec(
    ddf: Any, keys: list, n: int, ids: PartitionIds | None, *, store: Any = None, arrange: Arrange | None = None,
    token: Any = None, keep_index: bool = True,
) -> ShuffleSpec:
    """The spec of one graph build (a fresh id: two builds share no store, batch id or task key);
    its local store is registered for removal when the computation ends."""
    from dask.base import tokenize

    name = tokenize(ddf, keys, n, token, uuid.uuid4().hex)
    spec = ShuffleSpec(
        id=name, keys=tuple(keys), npartitions=n, ids=ids,
        store=None if store is None else as_codec(store),
        local_path=os.path.join(temporary_directory(), f"shuffle_kit-dask-{name}"), builder_pid=os.getpid(),
        arrange=arrange, keep_index=keep_index,
    )
    if spec.store is None:
        local_cleanup().register(spec.barrier_key, spec.local_path)
    return spec


def shuffle_graph(
    ddf: Any, spec: ShuffleSpec, meta: pd.DataFrame, divisions: Any, what: str, sampled: SampledRanges | None = None,
) -> Any:
    """The dask DataFrame of ``spec``'s shuffle of ``ddf``: setup, a map task per input
    partition, the barrier, a read task per output partition (each ``meta``-like).

    With ``sampled``, the key ranges are made in the same graph: a sample task per input
    partition and one ``ranges`` task, whose :class:`~._assign.RangeIds` the map tasks
    use and whose order the read tasks sort by (``spec.ids`` is then not used)."""
    import dask
    import dask.dataframe as dd

    n = spec.npartitions
    delayed = dask.delayed
    # the spec is bound to the tasks' functions: an argument would be searched for dask
    # collections, field by field, in every task (and a graph key of its own would be
    # one more transfer before the tasks on other workers start)
    def bound(func: Callable[..., Any], step: str) -> Any:
        return delayed(functools.partial(func, spec), name=spec.task_key(f"{step}-function"), pure=True)

    plan = bound(setup, "setup")(dask_key_name=spec.task_key("setup"))
    parts = ddf.to_delayed()
    ranges = None
    if sampled is not None:
        sample = delayed(sample_partition, pure=True)
        keys, fields = list(sampled.keys), list(sampled.fields)
        samples = [
            sample(part, keys, fields, sampled.size, False, dask_key_name=(spec.task_key("sample"), i))
            for i, part in enumerate(parts)
        ]
        ranges = delayed(sampled, pure=True)(*samples, dask_key_name=spec.task_key("ranges"))
    map_task = bound(map_partition, "map")
    maps = [map_task(plan, part, i, ranges, dask_key_name=(spec.task_key("map"), i)) for i, part in enumerate(parts)]
    done = delayed(barrier, pure=True)(plan, n, *maps, dask_key_name=spec.barrier_key)
    empty = delayed(meta, pure=True)  # one copy in the graph, not one per read task
    read_task = bound(read_partition, "read")
    reads = [read_task(done, j, empty, ranges, dask_key_name=(spec.task_key("read"), j)) for j in range(n)]
    return dd.from_delayed(reads, meta=meta, divisions=divisions, prefix=f"{PREFIX}-{what}", verify_meta=False)


def groupby_apply(
    ddf: Any,
    on: Any,
    func: Callable[..., Any],
    *args: Any,
    meta: Any = None,
    npartitions: int | None = None,
    store: Any = None,
    partitioner: str = "hash",
    dropna: bool = False,
    group_keys: bool = True,
    **kwargs: Any,
) -> Any:
    """``ddf.groupby(on).apply(func, *args, **kwargs)`` with shuffle_kit as the shuffle.

    Groups are exact: the shuffle puts every row of a key in one partition, then each
    partition is grouped with pandas. Null keys (None, NaN, NaT, ``pd.NA``) form their own
    group, as in :func:`shuffle_kit.groupby_shuffle`, unless ``dropna=True`` (pandas' and
    dask's default is to drop them). ``meta`` describes the result as in dask (inferred
    from a sample when omitted).

    >>> import pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({'k': list('abab'), 'x': [1, 2, 3, 4]}), npartitions=2)
    >>> sums = groupby_apply(ddf, 'k', lambda g: g['x'].sum(), meta=('x', 'int64'))
    >>> sums.compute(scheduler='sync').sort_index().tolist()
    [4, 6]
    """
    shuffled = shuffle(ddf, on, npartitions, store=store, partitioner=partitioner)
    options: dict[str, Any] = {"group_keys": group_keys, "sort": False, "dropna": bool(dropna)}
    extra = {} if meta is None else {"meta": meta}
    return shuffled.map_partitions(
        apply_groups, on, func, args, kwargs, options, token=f"{PREFIX}-groupby-apply", **extra
    )


def apply_groups(df: pd.DataFrame, on: Any, func: Callable, args: tuple, kwargs: dict, options: dict) -> Any:
    return df.groupby(on, **options).apply(func, *args, **kwargs)


def as_codec(store: Any) -> Codec:
    """The codec a user's ``store=`` argument stands for: a codec stack that declares
    ``stores_arrow`` as it is (the tasks append and read Arrow tables), a store or a path
    with an ``ArrowIPC`` codec on it."""
    if isinstance(store, Codec):
        if not store.stores_arrow:
            raise ArgumentTypeError(
                f"store: {type(store).__name__} does not store Arrow tables (stores_arrow); give a store (it "
                "gets an ArrowIPC codec) or a codec stack that does"
            )
        return store
    if isinstance(store, Store):
        return ArrowIPC(store)
    if isinstance(store, (str, os.PathLike)):
        return ArrowIPC(File(store))
    raise ArgumentTypeError(
        f"store must be a shuffle_kit store, a codec stack that stores Arrow tables or a path, not "
        f"{type(store).__name__}"
    )
