"""Shuffle a dask DataFrame through shuffle_kit: dask is the engine, shuffle_kit the data plane.

    import shuffle_kit.dask
    out = shuffle_kit.dask.shuffle(ddf, "user_id")            # a dask DataFrame
    res = shuffle_kit.dask.groupby_apply(ddf, "user_id", f, meta=...)

The graph, built with public dask APIs only (``to_delayed``, ``delayed``, ``from_delayed``)::

    shuffle_kit-setup     one task: opens the run's store (see below)
    shuffle_kit-map  i    per input partition: hash, split, ONE append per store with
                          batch_id = (graph, i), so a retried or re-run map task adds nothing
    shuffle_kit-barrier   one task: rows expected in every output partition
    shuffle_kit-read j    per output partition: read its pieces back, in input order, and
                          check the row count against the barrier (never silently short)

Where the pieces live, decided when the setup task runs, so one graph works everywhere:

- threads / processes / sync schedulers: a ``File`` store in dask's ``temporary_directory``
  (or the system's), one per graph build, removed when a computation finishes or fails
  (a ``dask.callbacks.Callback``) and at interpreter exit at the latest.
- ``dask.distributed``: one shuffle_kit ``Server`` per worker, hosted by the worker's
  nanny (so it survives the loss of the worker process), spilling to the worker's local
  directory; each owns a range of output partitions; tasks talk to them with ``Shared``
  clients. A scheduler plugin keeps the run's servers while the graph needs them and
  stops them when the barrier is forgotten (the computation finished, failed or was
  cancelled) or the cluster closes. See :mod:`shuffle_kit.dask.cluster`.
- an explicit ``store=`` (a store or ``ArrowIPC`` codec that every task can reach: a
  ``File`` path on a shared file system, a ``Shared`` address): used as is, never removed.

Needs the ``dask`` extra (``pip install shuffle_kit[dask]``); dask is imported lazily.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..codecs import ArrowIPC, TableBuffer
from ..errors import ShuffleDataLost
from ..frames import tables_to_frame
from ..shuffling.api import check_npartitions, check_partitioner, normalize_on, to_table
from ..shuffling.hashing import dask_partition_ids, partition_ids
from ..shuffling.split import split
from ..stores import File, Store

__all__ = ["shuffle", "groupby_apply", "ShuffleDataLost"]

PREFIX = "shuffle_kit"
SOURCE_KEY = b"shuffle_kit.dask.source"  # schema metadata: which input partition a piece came from


# -- the public API ------------------------------------------------------------------------


def shuffle(ddf: Any, on: Any, npartitions: int | None = None, *, store: Any = None, partitioner: str = "hash") -> Any:
    """Hash-partition the dask DataFrame ``ddf`` by the columns ``on`` through shuffle_kit.

    Returns a dask DataFrame of ``npartitions`` partitions (default: as many as ``ddf``)
    with ``ddf``'s meta, unknown divisions, and every row with the same key in the same
    partition; within a partition rows come in input order. ``partitioner="dask"``
    assigns rows exactly as ``ddf.shuffle(on)`` does (co-partitioned with dask's own
    shuffles); ``"hash"`` uses shuffle_kit's documented hash. Null keys are kept.

    >>> import pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({'k': list('abcabc'), 'x': range(6)}), npartitions=2)
    >>> out = shuffle(ddf, 'k', 3)
    >>> parts = [p for p in out.to_delayed()]
    >>> sorted(sorted(p.compute(scheduler='sync')['x']) for p in parts)
    [[0, 3], [1, 4], [2, 5]]
    """
    import dask
    import dask.dataframe as dd
    from dask.base import tokenize

    keys = normalize_on(on)
    check_npartitions(npartitions)
    check_partitioner(partitioner)
    if not isinstance(ddf, dd.DataFrame):
        raise TypeError(f"shuffle_kit.dask.shuffle takes a dask DataFrame, not {type(ddf).__name__}")
    meta = ddf._meta
    for k in keys:
        if k not in meta.columns and k not in meta.index.names:
            raise KeyError(f"key column {k!r} is not in the DataFrame (columns: {list(meta.columns)[:20]})")
    if partitioner == "dask" and any(k not in meta.columns for k in keys):
        raise ValueError("partitioner='dask' shuffles on columns only (as ddf.shuffle does)")
    if store is not None:
        store = _as_codec(store)
    n = int(npartitions) if npartitions is not None else ddf.npartitions
    # unique per graph build: two builds never share a store, batch ids or task keys
    name = tokenize(ddf, keys, n, partitioner, uuid.uuid4().hex)
    setup_key = f"{PREFIX}-setup-{name}"
    barrier_key = f"{PREFIX}-barrier-{name}"
    path = os.path.join(_temporary_directory(), f"shuffle_kit-dask-{name}")
    if store is None:
        _local_cleanup().register(barrier_key, path)

    delayed = dask.delayed
    parts = ddf.to_delayed()
    setup = delayed(_setup, pure=True)(name, barrier_key, path, n, store, os.getpid(), dask_key_name=setup_key)
    maps = [
        delayed(_map, pure=True)(setup, part, i, name, keys, n, partitioner, dask_key_name=(f"{PREFIX}-map-{name}", i))
        for i, part in enumerate(parts)
    ]
    barrier = delayed(_barrier, pure=True)(setup, n, *maps, dask_key_name=barrier_key)
    empty = delayed(meta, pure=True)  # one copy in the graph, not one per read task
    reads = [
        delayed(_read, pure=True)(barrier, j, name, empty, dask_key_name=(f"{PREFIX}-read-{name}", j))
        for j in range(n)
    ]
    return dd.from_delayed(reads, meta=meta, divisions=None, prefix=f"{PREFIX}-shuffle", verify_meta=False)


def groupby_apply(
    ddf: Any,
    on: Any,
    func: Callable[..., Any],
    *args: Any,
    meta: Any = None,
    npartitions: int | None = None,
    store: Any = None,
    partitioner: str = "hash",
    dropna: bool | None = None,
    group_keys: bool = True,
    **kwargs: Any,
) -> Any:
    """``ddf.groupby(on).apply(func, *args, **kwargs)`` with shuffle_kit as the shuffle.

    Groups are exact: the shuffle puts every row of a key in one partition, then each
    partition is grouped with pandas (``dropna`` as in pandas: None drops null keys,
    like dask's and pandas' default; False keeps them as their own group). ``meta``
    describes the result as in dask (inferred from a sample when omitted).

    >>> import pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({'k': list('abab'), 'x': [1, 2, 3, 4]}), npartitions=2)
    >>> groupby_apply(ddf, 'k', lambda g: g['x'].sum(), meta=('x', 'int64')).compute(scheduler='sync').sort_index().tolist()
    [4, 6]
    """
    shuffled = shuffle(ddf, on, npartitions, store=store, partitioner=partitioner)
    options: dict[str, Any] = {"group_keys": group_keys, "sort": False}
    if dropna is not None:
        options["dropna"] = dropna
    extra = {} if meta is None else {"meta": meta}
    return shuffled.map_partitions(
        _apply_groups, on, func, args, kwargs, options, token=f"{PREFIX}-groupby-apply", **extra
    )


def _apply_groups(df: pd.DataFrame, on: Any, func: Callable, args: tuple, kwargs: dict, options: dict) -> Any:
    return df.groupby(on, **options).apply(func, *args, **kwargs)


# -- where the pieces go ------------------------------------------------------------------


def _as_codec(store: Any) -> ArrowIPC:
    if isinstance(store, ArrowIPC):
        return store
    if isinstance(store, Store):
        return ArrowIPC(store)
    if isinstance(store, (str, os.PathLike)):
        return ArrowIPC(File(store))
    raise TypeError(f"store must be a shuffle_kit store, an ArrowIPC codec or a path, not {type(store).__name__}")


def _temporary_directory() -> str:
    import dask

    return dask.config.get("temporary_directory", None) or tempfile.gettempdir()


def _on_distributed_worker() -> bool:
    try:
        from distributed import get_worker
    except ImportError:  # pragma: no cover - distributed not installed
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


def _setup(name: str, barrier_key: str, path: str, n: int, store: ArrowIPC | None, builder: int) -> dict:
    """The run's plan: where each output partition's pieces go."""
    if store is not None:
        return {"kind": "store", "store": store, "n": n}
    if _on_distributed_worker():
        from .cluster import open_run

        return open_run(name, barrier_key, n)
    os.makedirs(path, exist_ok=True)
    if os.getpid() == builder:
        # threads / sync: every task runs in this process, so pieces stay Arrow tables
        # in memory (a TableBuffer), spilling to the File store beyond the memory limit
        _process_store(path, create=True)
        return {"kind": "file", "path": path, "n": n, "pid": builder}
    return {"kind": "file", "path": path, "n": n}


_process_stores: dict[str, TableBuffer] = {}  # store directory -> TableBuffer(File(directory))
_process_stores_lock = threading.Lock()


def _process_store(path: str, create: bool = False) -> TableBuffer | None:
    from ..shuffling.api import default_memory_limit

    with _process_stores_lock:
        store = _process_stores.get(path)
        if store is None and create:
            store = _process_stores[path] = TableBuffer(File(path), memory_limit=default_memory_limit())
        return store


def _forget_process_store(path: str) -> None:
    with _process_stores_lock:
        store = _process_stores.pop(path, None)
    if store is not None:
        try:
            store.drop()
            store.close()
        except Exception:
            pass


class _Stores:
    """The stores of a plan, each with the output partitions it owns (opened per task)."""

    def __init__(self, plan: dict):
        self.plan = plan
        self.n = plan["n"]
        self._opened: list[Any] = []

    def owner(self, p: int) -> int:
        if self.plan["kind"] != "servers":
            return 0
        return p * len(self.plan["servers"]) // self.n

    def codec(self, owner: int) -> ArrowIPC:
        kind = self.plan["kind"]
        if kind == "store":
            return self.plan["store"]
        if kind == "file":
            path = self.plan["path"]
            if self.plan.get("pid") == os.getpid():
                buffered = _process_store(path)
                if buffered is None:
                    raise ShuffleDataLost(f"shuffle_kit: the store {path!r} is gone: its computation has ended")
                return buffered  # shared by the run's tasks: not closed by one
            if not os.path.isdir(path):  # never recreate a store its computation removed
                raise ShuffleDataLost(f"shuffle_kit: the store {path!r} is gone: its computation has ended")
            codec = ArrowIPC(File(path))
        else:
            from .cluster import client_for

            return ArrowIPC(client_for(self.plan, owner))  # cached: not closed per task
        self._opened.append(codec)
        return codec

    def describe(self, owner: int) -> str:
        if self.plan["kind"] == "servers":
            from .cluster import describe_server

            return describe_server(self.plan, owner)
        return repr(self.plan.get("store") or self.plan.get("path"))

    def close(self) -> None:
        for codec in self._opened:
            try:
                codec.close()
            except Exception:
                pass
        self._opened.clear()

    def __enter__(self) -> "_Stores":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _store_errors(stores: _Stores, owner: int, what: str) -> Callable[[BaseException], BaseException]:
    def wrap(e: BaseException) -> BaseException:
        if isinstance(e, (ConnectionError, TimeoutError)):
            return ShuffleDataLost(
                f"shuffle_kit: {what}: the store {stores.describe(owner)} is unreachable ({e}); the worker "
                "hosting it was probably lost with the pieces it held, so this shuffle cannot finish. "
                "Compute it again."
            )
        return e

    return wrap


# -- the tasks ----------------------------------------------------------------------------


def _map(plan: dict, df: pd.DataFrame, i: int, name: str, keys: list, n: int, partitioner: str) -> np.ndarray:
    """Partition input partition ``i`` and append all its pieces, once per store."""
    table, fields, _ = to_table(df, keys, keep_index=True)
    if partitioner == "dask":
        ids = dask_partition_ids(df[keys], n)
    else:
        ids = partition_ids(table, fields, n)
    counts = np.bincount(ids, minlength=n).astype(np.int64)
    pieces = split(table, ids, n, counts)
    del ids
    if not pieces:
        return counts
    meta = dict(next(iter(pieces.values())).schema.metadata or {})
    meta[SOURCE_KEY] = str(i).encode()
    batch_id = f"{name}/{i}".encode()  # the same on every retry or re-run of this task
    with _Stores(plan) as stores:
        groups: dict[int, dict] = {}
        for p, t in pieces.items():
            groups.setdefault(stores.owner(p), {})[(name, p)] = t.replace_schema_metadata(meta)
        del pieces
        for owner, group in groups.items():
            try:
                stores.codec(owner).append(group, batch_id=batch_id)
            except Exception as e:
                wrapped = _store_errors(stores, owner, f"input partition {i}")(e)
                if wrapped is e:
                    raise
                raise wrapped from e
    return counts


def _barrier(plan: dict, n: int, *counts: np.ndarray) -> tuple[dict, np.ndarray]:
    """Every map task has appended: the plan, and rows expected in each output partition."""
    total = np.zeros(n, dtype=np.int64)
    for c in counts:
        total += c
    return plan, total


def _read(barrier: tuple[dict, np.ndarray], p: int, name: str, meta: pd.DataFrame) -> pd.DataFrame:
    """Output partition ``p``: its pieces in input order, all of them or an error."""
    plan, expected = barrier
    want = int(expected[p])
    if want == 0:
        return meta.copy()
    with _Stores(plan) as stores:
        owner = stores.owner(p)
        try:
            pieces = stores.codec(owner).get_pieces([(name, p)])[0]
        except Exception as e:
            wrapped = _store_errors(stores, owner, f"output partition {p}")(e)
            if wrapped is e:
                raise
            raise wrapped from e
        got = sum(t.num_rows for t in pieces)
        if got != want:
            raise ShuffleDataLost(
                f"shuffle_kit: output partition {p} holds {got} rows where {want} were written to "
                f"{stores.describe(owner)}: its pieces were lost (a store server restarted or was "
                "dropped?). Compute it again."
            )
        pieces.sort(key=_source)
        return tables_to_frame([_strip(t) for t in pieces])


def _source(t: pa.Table) -> int:
    return int((t.schema.metadata or {}).get(SOURCE_KEY, b"0"))


def _strip(t: pa.Table) -> pa.Table:
    meta = dict(t.schema.metadata or {})
    meta.pop(SOURCE_KEY, None)
    return t.replace_schema_metadata(meta)


# -- cleanup on the local schedulers --------------------------------------------------------


class _LocalCleanup:
    """Remove a graph's ``File`` store when a local-scheduler computation of it ends.

    A ``dask.callbacks.Callback`` (registered once, globally) sees every threads /
    processes / sync computation start and finish, successful or not. Stores in use by
    several computations at once are reference counted; whatever is left (a
    computation nested inside a task, which dask runs without global callbacks) goes at
    interpreter exit.
    """

    def __init__(self) -> None:
        from dask.callbacks import Callback

        self.paths: dict[str, str] = {}  # barrier key -> store directory
        self.refs: dict[str, int] = {}
        self.running: dict[int, list[str]] = {}
        self.lock = threading.Lock()
        self.callback = Callback(start=self._start, finish=self._finish)
        atexit.register(self.remove_all)

    def register(self, barrier_key: str, path: str) -> None:
        with self.lock:
            self.paths[barrier_key] = path
        # idempotent; and dask swaps the set of active callbacks for an empty one during a
        # computation, so a registration made then would be lost: register on every build
        self.callback.register()

    def _start(self, dsk: Any) -> None:
        with self.lock:
            if not self.paths:
                return
            if len(self.paths) <= len(dsk):
                found = [path for key, path in self.paths.items() if key in dsk]
            else:
                found = [self.paths[k] for k in dsk if isinstance(k, str) and k in self.paths]
            if not found:
                return
            for path in found:
                self.refs[path] = self.refs.get(path, 0) + 1
            self.running[id(dsk)] = found

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        with self.lock:
            found = self.running.pop(id(dsk), ())
            done = []
            for path in found:
                self.refs[path] -= 1
                if not self.refs[path]:
                    del self.refs[path]
                    done.append(path)
        # after a failure, tasks already handed to the pool may still use the store
        # (dask does not wait for them): remove it once no handle has it open
        busy = errored and bool(state and state.get("running"))
        for path in done:
            _forget_process_store(path)
            if busy:
                threading.Thread(target=_remove_when_unused, args=(path,), name="shuffle_kit cleanup", daemon=True).start()
            else:
                shutil.rmtree(path, ignore_errors=True)

    def remove_all(self) -> None:
        for path in list(self.paths.values()):
            _forget_process_store(path)
            shutil.rmtree(path, ignore_errors=True)


def _remove_when_unused(path: str, timeout: float = 3600.0) -> None:
    """Remove a ``File`` store directory as soon as no handle holds it open (every open
    handle holds a shared lock on its users file), and again if a task that was already
    starting recreates it."""
    import fcntl

    from ..stores.file import USERS_NAME

    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 5:
        if not os.path.isdir(path):
            quiet += 1
            time.sleep(0.05)
            continue
        quiet = 0
        try:
            fd = os.open(os.path.join(path, USERS_NAME), os.O_RDONLY)
        except OSError:
            fd = None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(path, ignore_errors=True)
        except BlockingIOError:
            time.sleep(0.05)
        finally:
            if fd is not None:
                os.close(fd)


_cleanup: _LocalCleanup | None = None
_cleanup_lock = threading.Lock()


def _local_cleanup() -> _LocalCleanup:
    global _cleanup
    with _cleanup_lock:
        if _cleanup is None:
            _cleanup = _LocalCleanup()
        return _cleanup
