"""shuffle_kit on ``dask.distributed``: store servers per worker, run by a scheduler plugin.

Pieces travel through shuffle_kit :class:`~shuffle_kit.Server`\\ s, not a shared file
system. For every shuffle run (one computation of one graph build):

- the setup task asks the scheduler (``run_on_scheduler``) for the run; the scheduler
  plugin :class:`ShuffleRuns` (installed on first use) starts one ``Server`` per
  worker, hosted by the worker's nanny when it has one (the data then outlives the
  worker process: a killed worker costs dask a re-run of its tasks, not the data) or
  else by the worker; each server keeps up to a quarter of the worker's memory limit (at
  most 1 GiB; dask config ``shuffle_kit.dask.server-memory`` sets it) in memory and spills
  to a ``File`` store in a scratch directory under the host's local directory (config
  ``shuffle_kit.dask.server-directory``), which the next run on that host removes if its
  owner died. Server ``s`` of ``S`` owns output partitions ``[s*n/S, (s+1)*n/S)``.
  On a ``LocalCluster`` the nannies live in the client's process, outside dask's memory
  accounting: ``shuffle_kit.dask.server-host: worker`` hosts the servers in the workers
  instead (a killed worker then takes its pieces with it).
- the run is sticky: a setup task re-run (its result lost with a worker) gets the same
  servers, so re-run map tasks land where the others did and their batch ids
  de-duplicate them.
- when the barrier task is forgotten (every read finished, or the computation failed or
  was cancelled), the plugin stops the run's servers and removes their directories; it
  stops all of them when the scheduler closes, and each host stops its own when it
  closes (``teardown``), so nothing outlives the cluster.
- a host lost with its nanny takes its pieces with it: appends to it fail and reads
  from it come up short, both raising :class:`~shuffle_kit.ShuffleDataLost` (the
  clients give up on a server that refuses or ignores them within seconds).
- a host that does not answer within ``shuffle_kit.dask.host-timeout`` (5 s; counted
  from the call, and only once another host has answered, so a cluster slow to start
  is waited for) is left out of the run it was asked to join, and out of later runs
  until its worker heartbeats again or leaves: a dead host the scheduler has not yet
  removed (its ``worker-ttl`` is minutes) costs one run a few seconds, not every run
  distributed's connect timeout. A host that answers with an error is left out of that
  run; a run starts if one server does. Stopping servers never holds up a run, and
  the scheduler's close waits for unanswered hosts at most ``host-timeout``.

Servers bind ``tcp://127.0.0.1`` on a loopback host; on any other interface they
require CURVE authentication with keys made per run by the scheduler plugin.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import pickle
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .. import scratch
from ..stores import Buffer, File, MemoryLog, Server, Shared
from ..stores.auth import generate_keys, is_loopback
from ..units import parse_size

logger = logging.getLogger(__name__)

NAME = "shuffle_kit"
SERVER_MEMORY = 2**30  # at most this many bytes in memory per server, and a quarter of the worker's limit
SPILL_PREFIX = "shuffle_kit-server-"  # a server's spill directory (a scratch directory, see shuffle_kit.scratch)
CLIENT_TIMEOUT = 60.0
HOST_TIMEOUT = 5.0  # seconds: see "host-timeout" above


def host_timeout() -> float:
    """How long the scheduler waits for a host (``shuffle_kit.dask.host-timeout``, seconds
    or a duration such as ``"10s"``).

    >>> import dask
    >>> with dask.config.set({"shuffle_kit.dask.host-timeout": "2s"}):
    ...     host_timeout()
    2.0
    """
    import dask
    from dask.utils import parse_timedelta

    value = dask.config.get("shuffle_kit.dask.host-timeout", None)
    return HOST_TIMEOUT if value is None else float(parse_timedelta(value, default="s"))


# -- in tasks -------------------------------------------------------------------------------


def open_run(name: str, barrier_key: str, n: int) -> dict:
    """The plan of run ``name``, from the scheduler (called by the setup task)."""
    from distributed import get_client

    client = get_client()
    return client.run_on_scheduler(_open_run, name, barrier_key, n)


_clients: "OrderedDict[tuple, Shared]" = OrderedDict()  # connections are reused by the tasks of a run
_clients_lock = threading.Lock()
MAX_CLIENTS = 32


def client_for(plan: dict, owner: int) -> Shared:
    """A (thread-safe) client of server ``owner`` of the run, shared by this process's tasks."""
    address = plan["servers"][owner]
    curve = plan.get("curve")
    key = (address, None if curve is None else curve["server_public"])
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
    if curve is None:
        client = Shared(address, timeout=CLIENT_TIMEOUT)
    else:
        client = Shared(address, timeout=CLIENT_TIMEOUT, server_key=curve["server_public"], secret_key=curve["client_secret"])
    with _clients_lock:
        client = _clients.setdefault(key, client)
        while len(_clients) > MAX_CLIENTS:  # servers of finished runs
            _, old = _clients.popitem(last=False)
            old.close()
    return client


def describe_server(plan: dict, owner: int) -> str:
    n, s = plan["n"], len(plan["servers"])
    lo, hi = -(-owner * n // s), -(-(owner + 1) * n // s) - 1
    return f"server {plan['servers'][owner]} on worker {plan['workers'][owner]} (output partitions {lo}-{hi})"


# -- on the scheduler ------------------------------------------------------------------------


async def _open_run(name: str, barrier_key: str, n: int, dask_scheduler: Any = None) -> dict:
    plugin = dask_scheduler.plugins.get(NAME)
    if plugin is None:
        plugin = ShuffleRuns(dask_scheduler)
        dask_scheduler.add_plugin(plugin, name=NAME, idempotent=True)
        plugin = dask_scheduler.plugins[NAME]
    return await plugin.open(name, barrier_key, n)


try:
    from distributed.diagnostics.plugin import SchedulerPlugin as _SchedulerPlugin
except ImportError:  # pragma: no cover
    _SchedulerPlugin = object  # type: ignore[misc,assignment]


class Unreachable(ConnectionError):
    """A host did not answer the scheduler in time, or could not be reached at all."""


class ShuffleRuns(_SchedulerPlugin):
    """Scheduler plugin: the servers of every live shuffle run, stopped when done."""

    name = NAME

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler
        self.runs: dict[str, dict] = {}  # run name -> plan
        self.barriers: dict[str, str] = {}  # barrier key -> run name
        self.opening: dict[str, asyncio.Future] = {}
        self.unreachable: dict[str, float] = {}  # worker address -> when its host last failed to answer
        self._tasks: set[asyncio.Future] = set()

    async def open(self, name: str, barrier_key: str, n: int) -> dict:
        if name in self.runs:
            return self.runs[name]
        if name in self.opening:  # a concurrent setup (a re-run racing the first)
            return await asyncio.shield(self.opening[name])
        if barrier_key not in self.scheduler.tasks:
            raise RuntimeError(f"shuffle_kit: the shuffle {name} was released before it started")
        future = asyncio.get_running_loop().create_future()
        self.opening[name] = future
        try:
            plan = await self._start_servers(name, n)
            if barrier_key not in self.scheduler.tasks:  # released while we started them
                self._background(self._stop(plan))
                raise RuntimeError(f"shuffle_kit: the shuffle {name} was released before it started")
            self.runs[name] = plan
            self.barriers[barrier_key] = name
            future.set_result(plan)
            return plan
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            del self.opening[name]

    def _answering(self) -> list:
        """The scheduler's workers, less those whose host failed to answer and that have
        not heartbeated since (all of them if that leaves none)."""
        workers = list(self.scheduler.workers.values())
        answering = [ws for ws in workers if ws.last_seen > self.unreachable.get(ws.address, -1.0)]
        return answering or workers

    async def _start_servers(self, name: str, n: int) -> dict:
        from distributed.metrics import time

        workers = sorted(self._answering(), key=lambda ws: (ws.host, str(ws.name), ws.address))
        if not workers:
            raise RuntimeError("shuffle_kit: the cluster has no workers")
        run_id = f"{name}-{uuid.uuid4().hex[:8]}"
        curve = None
        if not all(is_loopback(f"tcp://{ws.host}:0") for ws in workers):
            server_public, server_secret = generate_keys()
            client_public, client_secret = generate_keys()
            curve = {"server_public": server_public, "server_secret": server_secret,
                     "client_public": client_public, "client_secret": client_secret}
        import dask

        # "nanny": servers outlive a lost worker process (a re-run, not an error), but a
        # LocalCluster keeps every nanny in the client's process; "worker": no shared process
        by_nanny = dask.config.get("shuffle_kit.dask.server-host", "nanny") == "nanny"
        hosts = [(ws.address, ws.nanny if by_nanny else None) for ws in workers]
        plan = {"kind": "servers", "name": name, "run_id": run_id, "n": n, "servers": [], "workers": [],
                "hosts": hosts, "curve": curve}
        memory = dask.config.get("shuffle_kit.dask.server-memory", None)
        directory = dask.config.get("shuffle_kit.dask.server-directory", None)
        args = (run_id, curve, None if memory is None else parse_size(memory), directory)

        def late(host: tuple[str, str | None], reply: Any) -> None:  # a server nobody will use
            if not isinstance(reply, BaseException):
                logger.info("shuffle_kit: stopping the server of run %s that worker %s started too late", run_id, host[0])
                self._background(self._broadcast([host], _host_stop, (run_id,)))

        replies = await self._broadcast(hosts, _host_start, args, patience=host_timeout(), late=late)
        started = [(host, r) for host, r in zip(hosts, replies) if not isinstance(r, BaseException)]
        for (worker, nanny), reply in zip(hosts, replies):
            if isinstance(reply, Unreachable):
                self.unreachable[worker] = time()
            if isinstance(reply, BaseException):
                logger.warning("shuffle_kit: shuffle run %s goes on without worker %s: %s", run_id, worker, reply)
        if not started:
            (worker, _), error = hosts[0], replies[0]
            raise RuntimeError(f"shuffle_kit: could not start a store server for worker {worker}: {error!r}")
        plan["hosts"] = [host for host, _ in started]
        plan["servers"] = [address for _, address in started]
        plan["workers"] = [worker for (worker, _), _ in started]
        # clients need only the public half of the server's key pair
        if curve is not None:
            plan["curve"] = {k: v for k, v in curve.items() if k != "server_secret"}
        return plan

    async def _broadcast(
        self, hosts: list[tuple[str, str | None]], func: Any, args: tuple, patience: float | None = None,
        late: Callable[[tuple[str, str | None], Any], None] | None = None,
    ) -> list:
        """Run ``func(*args, dask_worker=host)`` on each host: the worker's nanny if it has
        one (it outlives the worker process), else the worker. One result (or exception)
        per host.

        With ``patience``, a host still silent ``patience`` seconds after the call, once
        some host has answered, gets an :class:`Unreachable`; its call goes on in the
        background and ``late(host, reply)`` gets what it answers after all.
        """
        msg = {"function": pickle.dumps(func), "args": pickle.dumps(args), "wait": True}

        async def call(worker: str, nanny: str | None) -> Any:
            try:
                reply = await self.scheduler.rpc(nanny or worker).run(**msg)
            except OSError as e:  # distributed's CommClosedError and timeouts are OSErrors
                return Unreachable(f"{nanny or worker}: {e!r}")
            except Exception as e:
                return e
            if isinstance(reply, dict) and reply.get("status") == "OK":
                return _value(reply.get("result"))
            return RuntimeError(str(reply.get("exception") if isinstance(reply, dict) else reply))

        calls = [asyncio.ensure_future(call(w, nanny)) for w, nanny in hosts]
        if patience is None:
            return list(await asyncio.gather(*calls))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        pending = set(calls)
        while pending:
            left = deadline - loop.time()
            answered = any(not isinstance(c.result(), BaseException) for c in calls if c.done())
            if left <= 0 and answered:
                break
            # past the deadline with no answer yet (a cluster slow to start): wait for one
            _, pending = await asyncio.wait(
                pending, timeout=left if left > 0 else None,
                return_when=asyncio.ALL_COMPLETED if left > 0 else asyncio.FIRST_COMPLETED,
            )
        replies = []
        for host, c in zip(hosts, calls):
            if c.done():
                replies.append(c.result())
                continue
            replies.append(Unreachable(f"{host[1] or host[0]}: no answer within {patience:g} s"))
            self._track(c)
            if late is not None:
                c.add_done_callback(functools.partial(_answered_late, late, host))
        return replies

    async def _stop(self, plan: dict) -> None:
        # by host address: a nanny whose worker process was replaced still holds the server;
        # a server hosted by a worker the scheduler removed went with it
        hosts = [(w, nanny) for w, nanny in plan["hosts"] if nanny is not None or w in self.scheduler.workers]
        await self._broadcast(hosts, _host_stop, (plan["run_id"],))

    def _track(self, task: asyncio.Future) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _background(self, coro: Any) -> None:
        self._track(asyncio.ensure_future(coro))

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        self.unreachable.pop(worker, None)

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish != "forgotten" or key not in self.barriers:
            return
        name = self.barriers.pop(key)
        plan = self.runs.pop(name, None)
        if plan is not None:
            self._background(self._stop(plan))

    async def close(self) -> None:
        plans = list(self.runs.values())
        self.runs.clear()
        self.barriers.clear()
        for plan in plans:
            self._background(self._stop(plan))
        if self._tasks:
            # a host that does not answer (gone with its machine) holds up the close only
            # this long; a live one tears its servers down when it closes
            _, pending = await asyncio.wait(set(self._tasks), timeout=host_timeout())
            for task in pending:
                task.cancel()


def _answered_late(late: Callable[[tuple[str, str | None], Any], None], host: tuple[str, str | None],
                   call: asyncio.Future) -> None:
    if not call.cancelled():
        late(host, call.result())


def _value(result: Any) -> Any:
    from distributed.protocol import Serialized, deserialize

    if isinstance(result, Serialized):  # what the "run" handler sends back
        return deserialize(result.header, result.frames)
    return result


# -- on the hosts (nannies, or workers without one) -------------------------------------------


class _ServerHost:
    """The shuffle_kit servers of one nanny (or worker), in its ``plugins``, so that
    closing the nanny tears them down."""

    name = NAME

    def __init__(self) -> None:
        self.servers: dict[str, tuple[Server, Buffer, File]] = {}

    def start(self, run_id: str, curve: dict | None, host: str, directory: str, memory: float) -> str:
        if run_id in self.servers:
            return self.servers[run_id][0].address
        # a scratch directory: the next run on this host removes it if this process dies
        scratch.sweep(SPILL_PREFIX, directory)
        path = scratch.make(SPILL_PREFIX, directory)
        disk = File(path)
        buffer = Buffer(MemoryLog(), disk, available_memory=memory)
        kwargs: dict[str, Any] = {}
        address = "tcp://127.0.0.1:0"
        if curve is not None:
            address = f"tcp://{host}:0"
            kwargs = {"secret_key": curve["server_secret"], "authorized_keys": [curve["client_public"]]}
        try:
            server = Server(buffer, address, **kwargs)
        except BaseException:
            disk.close()
            scratch.remove(path)
            raise
        self.servers[run_id] = (server, buffer, disk)
        logger.debug("started %r for shuffle run %s", server, run_id)
        return server.address

    def stop(self, run_id: str) -> None:
        entry = self.servers.pop(run_id, None)
        if entry is None:
            return
        server, buffer, disk = entry
        try:
            server.close(flush=False)
        finally:
            buffer.drop()
            disk.close()
            scratch.remove(disk.path)

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


def _host(dask_worker: Any) -> _ServerHost:
    host = dask_worker.plugins.get(NAME)
    if not isinstance(host, _ServerHost):
        host = dask_worker.plugins[NAME] = _ServerHost()
    return host


def _host_start(run_id: str, curve: dict | None, memory: float | None, directory: str | None,
                dask_worker: Any = None) -> str:
    from distributed.comm import get_address_host

    if memory is None:
        limit = worker_memory_limit(dask_worker)
        memory = min(SERVER_MEMORY, limit / 4) if limit else SERVER_MEMORY
    return _host(dask_worker).start(
        run_id, curve, get_address_host(dask_worker.address), directory or dask_worker.local_directory, memory
    )


def worker_memory_limit(host: Any) -> int | None:
    """The memory limit of a dask worker (or of the worker its nanny runs), if it has one."""
    # distributed keeps it on the memory manager (older releases on the worker itself)
    manager = getattr(host, "memory_manager", None)
    limit = getattr(manager, "memory_limit", None) or getattr(host, "memory_limit", None)
    return int(limit) if limit else None


def _host_stop(run_id: str, dask_worker: Any = None) -> None:
    host = dask_worker.plugins.get(NAME)
    if isinstance(host, _ServerHost):
        host.stop(run_id)
