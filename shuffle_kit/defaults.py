"""Every default policy of the package, in one place: what happens when a caller leaves an
argument out. The machine's measurements they use (memory, CPUs, cgroup limits) are
:mod:`shuffle_kit.limits`; the rule for a limit a caller gives is
:func:`shuffle_kit.byte_sizes.check_memory_limit`.

Memory limits differ by what the memory holds:

- ``shuffle()`` / ``groupby_shuffle()`` (:func:`shuffle_memory_limit`) keep the partitions
  themselves in memory until read, so they may take a quarter of the memory, up to 4 GiB;
- the partition job (:func:`job_memory_limit`) only holds rows on their way to files: 1 GB,
  or half the memory if that is less;
- a ``Buffer`` and a store server (:data:`STORE_MEMORY_LIMIT`) hold what was appended,
  1 GB (partd's default), and spill the rest to disk.

>>> default_npartitions(250 * 2**20), default_npartitions(None)
(3, 64)
>>> show_progress(False)
False
"""

from __future__ import annotations

import math
import sys

from .byte_sizes import MIN_MEMORY_LIMIT
from .limits import process_memory

PARTITION_BYTES = 100 * 2**20  # the default partition count aims at partitions of about this size
STREAM_NPARTITIONS = 64  # the default partition count when the input's size is not known up front
CHUNK_BYTES = 64 * 2**20  # the size of the chunks inputs are read in, where no memory limit sets it
STORE_MEMORY_LIMIT = 10**9  # bytes a spilling store (a Buffer, a store server) holds before it spills
CLIENT_TIMEOUT = 30.0  # seconds a store client waits without progress before it gives up


def shuffle_memory_limit() -> int:
    """A quarter of the memory this process may use (a cgroup limit counts), at most 4 GiB:
    what ``shuffle()`` and ``groupby_shuffle()`` may hold in memory."""
    return int(min(process_memory() // 4, 4 * 2**30))


def job_memory_limit() -> int:
    """1 GB, or half the memory this process may use if that is less (a container's cgroup
    limit counts, not the host's memory): the partition job's ``--memory-limit``."""
    return int(min(10**9, max(MIN_MEMORY_LIMIT, process_memory() // 2)))


def default_npartitions(nbytes: int | None) -> int:
    """Hash partitions for an input of ``nbytes`` (None: not known up front): one per
    :data:`PARTITION_BYTES`, or :data:`STREAM_NPARTITIONS`."""
    if not nbytes:
        return STREAM_NPARTITIONS
    return max(1, math.ceil(nbytes / PARTITION_BYTES))


def show_progress(progress: bool | None) -> bool:
    """Whether to show progress bars: as asked, or (None) when someone watches, on a
    terminal or in a notebook (bars go to stderr, which scripts and pipes do not show)."""
    if progress is not None:
        return bool(progress)
    if "ipykernel" in sys.modules:
        try:
            from IPython import get_ipython

            if getattr(get_ipython(), "kernel", None) is not None:
                return True
        except Exception:  # pragma: no cover
            pass
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # pragma: no cover
        return False
