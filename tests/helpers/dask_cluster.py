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
