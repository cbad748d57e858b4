"""The dask tests' cluster: two worker processes of one thread each, on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def two_workers(directory: str) -> Iterator[tuple[Any, Any]]:
    """(cluster, client) of a ``LocalCluster`` of 2 worker processes whose files go under
    ``directory``: dask's default directory is shared by every cluster on the machine (a
    second copy of the suite's included)."""
    import distributed

    with distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None, host="127.0.0.1",
        local_directory=directory,
    ) as cluster, distributed.Client(cluster) as client:
        yield cluster, client


def shuffle_servers(client: Any) -> tuple[list[str], list[tuple[str, int, str]]]:
    """What the hosts (nannies and workers) hold of shuffle_kit: (the runs that have a
    server, and per idle server kept for the next run: its address, the bytes its store
    holds beyond an empty one's, its spill directory)."""

    def probe(dask_worker: Any) -> tuple[list[str], list[tuple[str, int, str]]]:
        from shuffle_kit.stores.logformat import new_file_header

        host = dask_worker.plugins.get("shuffle_kit")
        empty = len(new_file_header())
        idle = [
            (e.server.address, e.buffer.usage().memory + e.buffer.usage().disk - empty, e.disk.path)
            for e in getattr(host, "idle", {}).values()
        ]
        return sorted(getattr(host, "servers", {})), idle

    runs: list[str] = []
    idle: list[tuple[str, int, str]] = []
    for nanny in (True, False):
        for r, i in client.run(probe, nanny=nanny).values():
            runs += r
            idle += i
    return runs, idle
