"""The ``File`` stores of runs on dask's local schedulers (threads, processes, sync).

Each graph build gets a directory under dask's ``temporary_directory`` (or the system's).
In the process that built the graph, the run's pieces stay Arrow tables in one
``TableBuffer`` over that directory's ``File`` store (:func:`process_store`), spilling
beyond the memory limit; other processes open the ``File`` store per task.

A directory goes when a computation of its graph ends, successful or not
(:class:`LocalCleanup`, a ``dask.callbacks.Callback``), and at interpreter exit at the
latest; after a failure, once no handle holds it open (tasks dask already started go on).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from typing import Any

from .. import lifecycle
from ..codecs import TableBuffer
from ..stores import File


def temporary_directory() -> str:
    import dask

    return dask.config.get("temporary_directory", None) or tempfile.gettempdir()


_process_stores: dict[str, TableBuffer] = {}  # store directory -> TableBuffer(File(directory))
_process_stores_lock = threading.Lock()


def process_store(path: str, create: bool = False) -> TableBuffer | None:
    """This process's ``TableBuffer`` over the store in ``path`` (made if ``create``)."""
    from ..defaults import shuffle_memory_limit

    with _process_stores_lock:
        store = _process_stores.get(path)
        if store is None and create:
            store = _process_stores[path] = TableBuffer(File(path), memory_limit=shuffle_memory_limit())
        return store


def forget_process_store(path: str) -> None:
    with _process_stores_lock:
        store = _process_stores.pop(path, None)
    if store is not None:
        try:
            store.drop()
            store.close()
        except Exception:
            pass


class LocalCleanup:
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
            forget_process_store(path)
            if busy:
                threading.Thread(
                    target=remove_when_unused, args=(path,), name="shuffle_kit cleanup", daemon=True
                ).start()
            else:
                shutil.rmtree(path, ignore_errors=True)

    def remove_all(self) -> None:
        for path in list(self.paths.values()):
            forget_process_store(path)
            shutil.rmtree(path, ignore_errors=True)


def remove_when_unused(path: str, timeout: float = 3600.0) -> None:
    """Remove a ``File`` store directory as soon as no handle holds it open (every open
    handle is a user of it, see :mod:`shuffle_kit.lifecycle`), and again if a task that was
    already starting recreates it."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 5:
        if not os.path.isdir(path):
            quiet += 1
            time.sleep(0.05)
            continue
        quiet = 0
        if not lifecycle.remove_if_unused(path):
            time.sleep(0.05)


_cleanup: LocalCleanup | None = None
_cleanup_lock = threading.Lock()


def local_cleanup() -> LocalCleanup:
    """The process's one :class:`LocalCleanup` (made, and its callback registered, on first use)."""
    global _cleanup
    with _cleanup_lock:
        if _cleanup is None:
            _cleanup = LocalCleanup()
        return _cleanup
