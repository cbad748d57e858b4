"""What a shuffle run is and where its pieces go, as frozen dataclasses that travel in the graph.

- :class:`ShuffleSpec`: fixed when the graph is built (the run's id, keys, number of
  output partitions, how rows get their partition and how a partition is made (see
  :mod:`._assign`), and the candidates for its store); every task gets it.
- a plan, decided by the setup task where it runs (one kind per place): :class:`StorePlan`
  (the user's ``store=``), :class:`FilePlan` (a ``File`` store on dask's local
  schedulers), :class:`ServersPlan` (one server per worker on ``dask.distributed``).

The rules every plan keeps: it pickles and holds addresses and paths, never an open
handle (it is a task's result, sent to other processes); ``owner(p)`` is the store that
holds output partition ``p``; ``opened(owner)`` gives that store's codec for one task and
closes what it opened for it (shared handles stay open); ``describe(owner)`` names it in
errors. :func:`store_errors` is the one place a store that cannot be reached becomes
:class:`~shuffle_kit.ShuffleDataLost`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..codecs import ArrowIPC, Codec
from ..errors import ShuffleDataLost
from ..stores import File
from ._assign import Arrange, PartitionIds
from ._clients import client_for
from ._local import process_store

PREFIX = "shuffle_kit"  # of every task key, so dask's dashboards and progress bars name them


@dataclass(frozen=True)
class ShuffleSpec:
    """One graph build of a shuffle: what every task of it needs to know.

    >>> from shuffle_kit.dask._assign import HashIds
    >>> spec = ShuffleSpec("abc", ("k",), 4, HashIds(), None, "/tmp/x", 1)
    >>> spec.barrier_key, spec.task_key("map")
    ('shuffle_kit-barrier-abc', 'shuffle_kit-map-abc')
    """

    id: str  # unique per graph build: two builds share no store, batch id or task key
    keys: tuple[str, ...]
    npartitions: int
    ids: PartitionIds | None  # the output partition of each row (a hash, dask's assignment, key ranges);
    # None: key ranges the graph samples (its ranges task gives them to the map tasks)
    store: Codec | None  # the user's store, used as is
    local_path: str  # else on a local scheduler: a File store here, removed when done
    builder_pid: int  # the process that built the graph (threads / sync run in it)
    arrange: Arrange | None = None  # makes an output partition of its pieces; None: concatenated
    keep_index: bool = True  # False: the input's index is left behind (set_index replaces it, a join drops it)

    def task_key(self, step: str) -> str:
        return f"{PREFIX}-{step}-{self.id}"

    @property
    def barrier_key(self) -> str:
        return self.task_key("barrier")


@dataclass(frozen=True)
class StorePlan:
    """The user's store, reached by every task: used as is, never closed or removed."""

    store: Codec
    n: int

    def owner(self, p: int) -> int:
        return 0

    @contextmanager
    def opened(self, owner: int) -> Iterator[Codec]:
        yield self.store

    def describe(self, owner: int) -> str:
        return repr(self.store)


@dataclass(frozen=True)
class FilePlan:
    """A ``File`` store in a local directory, on dask's threads, processes or sync scheduler.

    In the process ``pid`` (the one that built the graph: threads and sync run every task
    there) the pieces stay Arrow tables in that process's ``TableBuffer`` over the store.
    A store its computation removed is never recreated.
    """

    path: str
    n: int
    pid: int | None = None

    def owner(self, p: int) -> int:
        return 0

    @contextmanager
    def opened(self, owner: int) -> Iterator[Codec]:
        if self.pid == os.getpid():
            buffered = process_store(self.path)
            if buffered is None:
                raise self._gone()
            yield buffered  # shared by the run's tasks: not closed by one
            return
        if not os.path.isdir(self.path):
            raise self._gone()
        codec = ArrowIPC(File(self.path))
        try:
            yield codec
        finally:
            codec.close()

    def describe(self, owner: int) -> str:
        return repr(self.path)

    def _gone(self) -> ShuffleDataLost:
        return ShuffleDataLost(f"shuffle_kit: the store {self.path!r} is gone: its computation has ended")


@dataclass(frozen=True)
class ClientKeys:
    """What a task needs to talk to a run's CURVE-authenticated servers."""

    server_public: bytes
    client_secret: bytes = field(repr=False)


@dataclass(frozen=True)
class ServersPlan:
    """One shuffle_kit ``Server`` per worker; server ``s`` of ``S`` owns the output
    partitions ``[s*n/S, (s+1)*n/S)``. Made by the scheduler plugin (see
    :mod:`shuffle_kit.dask.cluster`), which stops the servers when the run ends.

    A task reaches a server through its ``ipc://`` socket (``local``) where that socket
    is there, on the server's machine (its path is in a new private directory, so no other
    machine has it), else through its tcp address.

    >>> plan = ServersPlan("r", "r-1", 10, ("tcp://a:1", "tcp://b:2"), ("w1", "w2"), (("w1", None), ("w2", None)))
    >>> [plan.owner(p) for p in range(10)], plan.describe(1)
    ([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], 'server tcp://b:2 on worker w2 (output partitions 5-9)')
    """

    name: str
    run_id: str
    n: int
    servers: tuple[str, ...]  # addresses, one per server
    workers: tuple[str, ...]  # the worker of each server
    hosts: tuple[tuple[str, str | None], ...]  # (worker, its nanny or None): who holds each server
    keys: ClientKeys | None = None  # None on a loopback cluster
    local: tuple[str | None, ...] = ()  # each server's ipc:// address, if it has one

    def owner(self, p: int) -> int:
        return p * len(self.servers) // self.n

    def address(self, owner: int) -> str:
        """The address this process reaches server ``owner`` at."""
        local = self.local[owner] if owner < len(self.local) else None
        if local is not None and os.path.exists(local.removeprefix("ipc://")):
            return local
        return self.servers[owner]

    @contextmanager
    def opened(self, owner: int) -> Iterator[Codec]:
        # the connection is shared by this process's tasks (and reused): not closed here
        yield ArrowIPC(client_for(self.address(owner), self.keys))

    def describe(self, owner: int) -> str:
        s = len(self.servers)
        lo, hi = -(-owner * self.n // s), -(-(owner + 1) * self.n // s) - 1
        return f"server {self.servers[owner]} on worker {self.workers[owner]} (output partitions {lo}-{hi})"


Plan = StorePlan | FilePlan | ServersPlan


@contextmanager
def store_errors(plan: Plan, owner: int, what: str) -> Iterator[None]:
    """Turn a store that cannot be reached into :class:`~shuffle_kit.ShuffleDataLost`
    naming ``what`` was being done and the store; any other error goes through."""
    try:
        yield
    except (ConnectionError, TimeoutError) as e:
        raise ShuffleDataLost(
            f"shuffle_kit: {what}: the store {plan.describe(owner)} is unreachable ({e}); the worker "
            "hosting it was probably lost with the pieces it held, so this shuffle cannot finish. "
            "Compute it again."
        ) from e
