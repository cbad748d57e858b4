"""The scheduler's side of the per-worker servers (the rules: :mod:`shuffle_kit.dask.cluster`).

A setup task calls :func:`open_run`, which asks the scheduler plugin :class:`ShuffleRuns`
(installed on first use) for the run's :class:`~._plans.ServersPlan`: the plugin asks
every answering host for a server (an idle one it kept, else a new one), keeps the plan
while the run's barrier task lives, and releases the servers when it is forgotten or the
scheduler closes (the hosts empty them and keep them for the next run).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import pickle
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import ClusterError
from ..stores.remote.auth import generate_keys, is_loopback
from ._hosts import ServerKeys, ServerOptions, host_start, host_stop
from ._plans import ClientKeys, ServersPlan
from .cluster import NAME, host_timeout, server_settings

logger = logging.getLogger(__name__)

Host = tuple[str, str | None]  # (worker address, its nanny's address or None)


def open_run(name: str, barrier_key: str, n: int) -> ServersPlan:
    """The plan of run ``name``, from the scheduler (called by the setup task)."""
    from distributed import get_client

    client = get_client()
    return client.run_on_scheduler(open_on_scheduler, name, barrier_key, n)


async def open_on_scheduler(name: str, barrier_key: str, n: int, dask_scheduler: Any = None) -> ServersPlan:
    plugin = dask_scheduler.plugins.get(NAME)
    if plugin is None:
        plugin = ShuffleRuns(dask_scheduler)
        dask_scheduler.add_plugin(plugin, name=NAME, idempotent=True)
        plugin = dask_scheduler.plugins[NAME]
    return await plugin.open(name, barrier_key, n)


try:
    from distributed.diagnostics.plugin import SchedulerPlugin
except ImportError:  # pragma: no cover
    SchedulerPlugin = object  # type: ignore[misc,assignment]


class Unreachable(ConnectionError):
    """A host did not answer the scheduler in time, or could not be reached at all.

    Not a public exception: it is a host's reply (returned, never raised), which the
    plugin logs and answers by leaving the host out of the run."""


class ShuffleRuns(SchedulerPlugin):
    """Scheduler plugin: the servers of every live shuffle run, stopped when done."""

    name = NAME

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler
        self.runs: dict[str, ServersPlan] = {}  # run name -> plan
        self.barriers: dict[str, str] = {}  # barrier key -> run name
        self.opening: dict[str, asyncio.Future] = {}
        self.unreachable: dict[str, float] = {}  # worker address -> when its host last failed to answer
        self._tasks: set[asyncio.Future] = set()
        self._keys: tuple[ClientKeys, ServerKeys] | None = None

    async def open(self, name: str, barrier_key: str, n: int) -> ServersPlan:
        if name in self.runs:
            return self.runs[name]
        if name in self.opening:  # a concurrent setup (a re-run racing the first)
            return await asyncio.shield(self.opening[name])
        if barrier_key not in self.scheduler.tasks:
            raise ClusterError(f"shuffle_kit: the shuffle {name} was released before it started")
        future = asyncio.get_running_loop().create_future()
        self.opening[name] = future
        try:
            plan = await self._start_servers(name, n)
            if barrier_key not in self.scheduler.tasks:  # released while we started them
                self._background(self._stop(plan))
                raise ClusterError(f"shuffle_kit: the shuffle {name} was released before it started")
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

    async def _start_servers(self, name: str, n: int) -> ServersPlan:
        from distributed.metrics import time

        workers = sorted(self._answering(), key=lambda ws: (ws.host, str(ws.name), ws.address))
        if not workers:
            raise ClusterError("shuffle_kit: the cluster has no workers")
        run_id = f"{name}-{uuid.uuid4().hex[:8]}"
        client_keys, server_keys = None, None
        if not all(is_loopback(f"tcp://{ws.host}:0") for ws in workers):
            client_keys, server_keys = self._curve_keys()
        settings = server_settings()
        hosts: list[Host] = [(ws.address, ws.nanny if settings.by_nanny else None) for ws in workers]
        options = ServerOptions(run_id, server_keys, settings.memory, settings.directory)

        def late(host: Host, reply: Any) -> None:  # a server nobody will use
            if not isinstance(reply, BaseException):
                logger.info(
                    "shuffle_kit: stopping the server of run %s that worker %s started too late", run_id, host[0]
                )
                self._background(self._broadcast([host], host_stop, (run_id,)))

        replies = await self._broadcast(hosts, host_start, (options,), patience=host_timeout(), late=late)
        started = [(host, r) for host, r in zip(hosts, replies) if not isinstance(r, BaseException)]
        for (worker, _), reply in zip(hosts, replies):
            if isinstance(reply, Unreachable):
                self.unreachable[worker] = time()
            if isinstance(reply, BaseException):
                logger.warning("shuffle_kit: shuffle run %s goes on without worker %s: %s", run_id, worker, reply)
        if not started:
            (worker, _), error = hosts[0], replies[0]
            raise ClusterError(f"shuffle_kit: could not start a store server for worker {worker}: {error!r}")
        return ServersPlan(
            name=name, run_id=run_id, n=n,
            servers=tuple(addresses.tcp for _, addresses in started),
            workers=tuple(worker for (worker, _), _ in started),
            hosts=tuple(host for host, _ in started),
            keys=client_keys,
            local=tuple(addresses.local for _, addresses in started),
        )

    def _curve_keys(self) -> tuple[ClientKeys, ServerKeys]:
        """The key pairs of this scheduler's runs off loopback, made once: a host keeps a
        run's server for the next run, which must then hold the keys it requires."""
        if self._keys is None:
            server_public, server_secret = generate_keys()
            client_public, client_secret = generate_keys()
            # clients get only the public half of the server's key pair
            self._keys = (ClientKeys(server_public, client_secret), ServerKeys(server_secret, client_public))
        return self._keys

    async def _broadcast(
        self, hosts: list[Host], func: Any, args: tuple, patience: float | None = None,
        late: Callable[[Host, Any], None] | None = None,
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

    async def _stop(self, plan: ServersPlan) -> None:
        # by host address: a nanny whose worker process was replaced still holds the server;
        # a server hosted by a worker the scheduler removed went with it
        hosts = [(w, nanny) for w, nanny in plan.hosts if nanny is not None or w in self.scheduler.workers]
        await self._broadcast(hosts, host_stop, (plan.run_id,))

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


def _answered_late(late: Callable[[Host, Any], None], host: Host, call: asyncio.Future) -> None:
    if not call.cancelled():
        late(host, call.result())


def _value(result: Any) -> Any:
    from distributed.protocol import Serialized, deserialize

    if isinstance(result, Serialized):  # what the "run" handler sends back
        return deserialize(result.header, result.frames)
    return result
