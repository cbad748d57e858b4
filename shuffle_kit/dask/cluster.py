"""shuffle_kit on ``dask.distributed``: store servers per worker, run by a scheduler plugin.

Pieces travel through shuffle_kit :class:`~shuffle_kit.Server`\\ s, not a shared file
system. For every shuffle run (one computation of one graph build):

- the setup task asks the scheduler (``run_on_scheduler``) for the run; the scheduler
  plugin ``ShuffleRuns`` (installed on first use) starts one ``Server`` per
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
  was cancelled), the plugin releases the run's servers: each host empties its server
  (memory freed, spill log truncated) and keeps it, idle, for its next run, which then
  pays for no new server or connection; the plugin releases all of them when the
  scheduler closes, and each host closes its servers, idle or not, and removes their
  directories when it closes (``teardown``), so nothing outlives the cluster.
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

The scheduler side is in :mod:`._scheduler`, the hosts' side in :mod:`._hosts`, the
tasks' connections in :mod:`._clients`; this module holds the settings they read.

Servers bind ``tcp://127.0.0.1`` on a loopback host; on any other interface they
require CURVE authentication with keys made per run by the scheduler plugin. Each also
listens on an ``ipc://`` socket in a private directory (the same CURVE rules), which tasks
on its machine use: the TCP stack costs more CPU per byte on both ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..byte_sizes import check_memory_limit

NAME = "shuffle_kit"  # of the scheduler plugin, and of the plugin on each host
SERVER_MEMORY = 2**30  # at most this many bytes in memory per server, and a quarter of the worker's limit
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


@dataclass(frozen=True)
class ServerSettings:
    """Where and how the hosts run a run's servers, from the scheduler's dask config.

    >>> import dask
    >>> with dask.config.set({"shuffle_kit.dask.server-memory": "50MB", "shuffle_kit.dask.server-host": "worker"}):
    ...     server_settings()
    ServerSettings(by_nanny=False, memory=50000000, directory=None)
    """

    by_nanny: bool  # "server-host": "nanny" (the default) or "worker"
    memory: int | None  # "server-memory": None for a quarter of the worker's memory limit
    directory: str | None  # "server-directory": None for the worker's local directory


def server_settings() -> ServerSettings:
    import dask

    memory = dask.config.get("shuffle_kit.dask.server-memory", None)
    return ServerSettings(
        # "nanny": servers outlive a lost worker process (a re-run, not an error), but a
        # LocalCluster keeps every nanny in the client's process; "worker": no shared process
        by_nanny=dask.config.get("shuffle_kit.dask.server-host", "nanny") == "nanny",
        memory=None if memory is None else check_memory_limit(memory, "shuffle_kit.dask.server-memory"),
        directory=dask.config.get("shuffle_kit.dask.server-directory", None),
    )
