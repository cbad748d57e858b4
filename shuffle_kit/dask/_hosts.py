"""The hosts' side of the per-worker servers (see :mod:`shuffle_kit.dask.cluster`): run in
a nanny (or a worker without one) by the scheduler plugin, through distributed's ``run``.

Each host keeps its servers in a :class:`ServerHost` among its ``plugins``, so closing the
host tears them down. A server spills to a scratch directory, which the next run on the
host removes if its owner died. Besides its tcp address a server listens on an ``ipc://``
socket, which tasks on the same machine use instead (see :class:`~._plans.ServersPlan`).

A run's server is not closed when the run ends: its store is emptied (memory freed, spill
log truncated) and it waits (one per host: the others are closed) for the host's next run
of the same kind (keys, memory, directory), which empties it again (a task of a failed
run may have appended since) and takes it at the same address (the tasks' connections to
it are reused) instead of starting one.
It goes with the host like the others (``teardown``, or the process's death: then its
scratch directories are swept by the next run on the machine, as those of any server). Starting and
stopping run in a thread: on a ``LocalCluster`` the nannies share the scheduler's event
loop, which a server's start or close would otherwise hold up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import lifecycle
from ..stores import Buffer, File, MemoryLog, Server
from ..stores.remote.server import sweep_local_endpoints
from .cluster import NAME, SERVER_MEMORY

logger = logging.getLogger(__name__)

SPILL_PREFIX = "shuffle_kit-server-"  # a server's spill directory (a scratch directory, see shuffle_kit.lifecycle)


@dataclass(frozen=True)
class ServerKeys:
    """What a server needs to require CURVE authentication of a run's clients."""

    server_secret: bytes = field(repr=False)
    client_public: bytes


@dataclass(frozen=True)
class ServerOptions:
    """How to start the server of run ``run_id`` on a host."""

    run_id: str
    keys: ServerKeys | None  # None: bind loopback, no authentication
    memory: int | None  # bytes kept in memory; None: a quarter of the worker's limit, at most SERVER_MEMORY
    directory: str | None  # where to spill; None: the host's local directory


class ServerAddresses(NamedTuple):
    """Where a started server listens: ``tcp`` for every worker, ``local`` (an ``ipc://``
    socket, or None) for those on its machine."""

    tcp: str
    local: str | None


class HostedServer(NamedTuple):
    server: Server
    buffer: Buffer
    disk: File


Kind = tuple[ServerKeys | None, str, float]  # what an idle server must match to serve a run


class ServerHost:
    """The shuffle_kit servers of one nanny (or worker): those of live runs, by run id, and
    the idle one (empty, kept for the next run) by its kind."""

    name = NAME

    def __init__(self) -> None:
        self.servers: dict[str, HostedServer] = {}
        self.idle: dict[Kind, HostedServer] = {}
        self._kinds: dict[str, Kind] = {}  # run id -> the kind of its server
        self._lock = threading.Lock()  # start and stop run in threads

    def start(self, options: ServerOptions, host: str, directory: str, memory: float) -> ServerAddresses:
        kind: Kind = (options.keys, directory, memory)
        with self._lock:
            if options.run_id in self.servers:
                return _addresses(self.servers[options.run_id].server)
            entry = self.idle.pop(kind, None)
        if entry is not None and entry.server.running:
            # emptied again: a task of a failed run that was still running may have
            # appended to it while it waited
            entry.server.drop()
            _sweep(directory)  # as a new server does: what hosts killed since left here
            with self._lock:
                if options.run_id not in self.servers:
                    self.servers[options.run_id] = entry
                    self._kinds[options.run_id] = kind
                    logger.debug("reusing %r for shuffle run %s", entry.server, options.run_id)
                    return _addresses(entry.server)
        if entry is not None:  # its thread died (not to be trusted with a run), or not needed
            _close(entry)
        with self._lock:
            if options.run_id in self.servers:
                return _addresses(self.servers[options.run_id].server)
        entry = self._new_server(options, host, directory, memory)
        with self._lock:
            if options.run_id in self.servers:  # a concurrent start of the same run won
                _close(entry)
                return _addresses(self.servers[options.run_id].server)
            self.servers[options.run_id] = entry
            self._kinds[options.run_id] = kind
        logger.debug("started %r for shuffle run %s", entry.server, options.run_id)
        return _addresses(entry.server)

    def _new_server(self, options: ServerOptions, host: str, directory: str, memory: float) -> HostedServer:
        # a scratch directory: the next run on this host removes it if this process dies
        # (as the directories of the servers' ipc sockets)
        _sweep(directory)
        path = lifecycle.make(SPILL_PREFIX, directory)
        disk = File(path)
        buffer = Buffer(MemoryLog(), disk, memory_limit=memory)
        kwargs: dict[str, Any] = {}
        address = "tcp://127.0.0.1:0"
        if options.keys is not None:
            address = f"tcp://{host}:0"
            kwargs = {"secret_key": options.keys.server_secret, "authorized_keys": [options.keys.client_public]}
        try:
            server = Server(buffer, address, local_endpoint=True, **kwargs)
        except BaseException:
            disk.close()
            lifecycle.remove(path)
            raise
        return HostedServer(server, buffer, disk)

    def stop(self, run_id: str) -> None:
        """The run is over: its server is emptied and kept for the next run (one per kind;
        any other is closed)."""
        with self._lock:
            entry = self.servers.pop(run_id, None)
            kind = self._kinds.pop(run_id, None)
        if entry is None or kind is None:
            return
        try:
            # a late append of the run (a task of a failed computation that dask had
            # already started) may still land: its keys are the run's own, never read, and
            # go when the next run takes the server, or with the host
            entry.server.drop()
        except BaseException:
            _close(entry)
            raise
        with self._lock:
            keep = entry.server.running and kind not in self.idle
            # one idle server per host: the kind of the latest run (a kind changes only
            # with the scheduler's settings or keys)
            closing = [] if keep else [entry]
            if keep:
                closing += self.idle.values()
                self.idle = {kind: entry}
        for other in closing:
            _close(other)

    def stop_all(self) -> None:
        with self._lock:
            entries = [(f"run {run_id}", e) for run_id, e in self.servers.items()]
            entries += [("an idle one", e) for e in self.idle.values()]
            self.servers.clear()
            self.idle.clear()
            self._kinds.clear()
        for what, entry in entries:
            try:
                _close(entry)
            except Exception:
                logger.exception("could not stop the shuffle_kit server of %s", what)

    # NannyPlugin / WorkerPlugin protocol
    def setup(self, *args: Any, **kwargs: Any) -> None:
        pass

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        self.stop_all()


def _sweep(directory: str) -> None:
    """Remove the spill directories and ipc socket directories of servers whose process died."""
    lifecycle.sweep(SPILL_PREFIX, directory)
    sweep_local_endpoints()


def _close(entry: HostedServer) -> None:
    try:
        entry.server.close(flush=False)
    finally:
        entry.buffer.drop()
        entry.disk.close()
        lifecycle.remove(entry.disk.path)


def _addresses(server: Server) -> ServerAddresses:
    return ServerAddresses(server.address, server.local_address)


def _host(dask_worker: Any) -> ServerHost:
    host = dask_worker.plugins.get(NAME)
    if not isinstance(host, ServerHost):
        host = dask_worker.plugins[NAME] = ServerHost()
    return host


async def host_start(options: ServerOptions, dask_worker: Any = None) -> ServerAddresses:
    """Give a run a server on this host (an idle one, or a new one; once per run): its
    addresses."""
    from distributed.comm import get_address_host

    memory: float
    if options.memory is None:
        limit = worker_memory_limit(dask_worker)
        memory = min(SERVER_MEMORY, limit / 4) if limit else SERVER_MEMORY
    else:
        memory = options.memory
    directory = options.directory or dask_worker.local_directory
    host = _host(dask_worker)
    return await asyncio.to_thread(host.start, options, get_address_host(dask_worker.address), directory, memory)


async def host_stop(run_id: str, dask_worker: Any = None) -> None:
    """Release the server of a run on this host, if it has one (see :meth:`ServerHost.stop`)."""
    host = dask_worker.plugins.get(NAME)
    if isinstance(host, ServerHost):
        await asyncio.to_thread(host.stop, run_id)


def worker_memory_limit(host: Any) -> int | None:
    """The memory limit of a dask worker (or of the worker its nanny runs), if it has one."""
    # distributed keeps it on the memory manager (older releases on the worker itself)
    manager = getattr(host, "memory_manager", None)
    limit = getattr(manager, "memory_limit", None) or getattr(host, "memory_limit", None)
    return int(limit) if limit else None
