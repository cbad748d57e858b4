"""The hosts' side of the per-worker servers (see :mod:`shuffle_kit.dask.cluster`): run in
a nanny (or a worker without one) by the scheduler plugin, through distributed's ``run``.

Each host keeps its servers in a :class:`ServerHost` among its ``plugins``, so closing the
host tears them down. A server spills to a scratch directory, which the next run on the
host removes if its owner died. Besides its tcp address a server listens on an ``ipc://``
socket, which tasks on the same machine use instead (see :class:`~._plans.ServersPlan`).
"""

from __future__ import annotations

import logging
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


class ServerHost:
    """The shuffle_kit servers of one nanny (or worker), by run id."""

    name = NAME

    def __init__(self) -> None:
        self.servers: dict[str, HostedServer] = {}

    def start(self, options: ServerOptions, host: str, directory: str, memory: float) -> ServerAddresses:
        if options.run_id in self.servers:
            return _addresses(self.servers[options.run_id].server)
        # a scratch directory: the next run on this host removes it if this process dies
        # (as the directories of the servers' ipc sockets)
        lifecycle.sweep(SPILL_PREFIX, directory)
        sweep_local_endpoints()
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
        self.servers[options.run_id] = HostedServer(server, buffer, disk)
        logger.debug("started %r for shuffle run %s", server, options.run_id)
        return _addresses(server)

    def stop(self, run_id: str) -> None:
        entry = self.servers.pop(run_id, None)
        if entry is None:
            return
        try:
            entry.server.close(flush=False)
        finally:
            entry.buffer.drop()
            entry.disk.close()
            lifecycle.remove(entry.disk.path)

    def stop_all(self) -> None:
        for run_id in list(self.servers):
            try:
                self.stop(run_id)
            except Exception:
                logger.exception("could not stop the shuffle_kit server of run %s", run_id)

    # NannyPlugin / WorkerPlugin protocol
    def setup(self, *args: Any, **kwargs: Any) -> None:
        pass

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        self.stop_all()


def _addresses(server: Server) -> ServerAddresses:
    return ServerAddresses(server.address, server.local_address)


def _host(dask_worker: Any) -> ServerHost:
    host = dask_worker.plugins.get(NAME)
    if not isinstance(host, ServerHost):
        host = dask_worker.plugins[NAME] = ServerHost()
    return host


def host_start(options: ServerOptions, dask_worker: Any = None) -> ServerAddresses:
    """Start the server of a run on this host (if not yet started): its addresses."""
    from distributed.comm import get_address_host

    memory: float
    if options.memory is None:
        limit = worker_memory_limit(dask_worker)
        memory = min(SERVER_MEMORY, limit / 4) if limit else SERVER_MEMORY
    else:
        memory = options.memory
    directory = options.directory or dask_worker.local_directory
    return _host(dask_worker).start(options, get_address_host(dask_worker.address), directory, memory)


def host_stop(run_id: str, dask_worker: Any = None) -> None:
    """Stop the server of a run on this host, if it has one."""
    host = dask_worker.plugins.get(NAME)
    if isinstance(host, ServerHost):
        host.stop(run_id)


def worker_memory_limit(host: Any) -> int | None:
    """The memory limit of a dask worker (or of the worker its nanny runs), if it has one."""
    # distributed keeps it on the memory manager (older releases on the worker itself)
    manager = getattr(host, "memory_manager", None)
    limit = getattr(manager, "memory_limit", None) or getattr(host, "memory_limit", None)
    return int(limit) if limit else None
