"""What this process may use: CPUs (affinity and cgroup CPU quota), memory (physical,
capped by a cgroup memory limit), and thread pools sized to a thread count.

Thread pools are sized from :func:`available_cpus`, never from a constant: a user's
machine has more cores than a CI runner, and a container may have fewer than its host.

Rules:

- The CPUs the process may run on (``os.sched_getaffinity``; ``os.cpu_count`` where
  affinity is unknown, as on macOS).
- A cgroup CPU quota caps that: cgroup v2 ``cpu.max`` (``"max 100000"`` is no quota,
  ``"150000 100000"`` is 1.5 CPUs) or v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``
  (``-1`` is no quota), of the process's own cgroup and every cgroup above it. A
  fractional quota rounds up: 1.5 CPUs can keep two threads busy part of the time.
- Never less than 1.

``root`` (default ``/``) lets a test point the functions at a fake ``/proc`` and
``/sys/fs/cgroup`` tree.

>>> available_cpus() >= 1
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from .errors import JobError

T = TypeVar("T")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _cgroup_paths(root: str) -> dict[str, str]:
    """{controller: cgroup path} from ``/proc/self/cgroup``; ``""`` is cgroup v2's."""
    text = _read(os.path.join(root, "proc/self/cgroup")) or ""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            paths[controller] = parts[2]
    return paths


def _ancestors(base: str, path: str) -> list[str]:
    """``base/path`` and each directory above it up to ``base``, deepest first."""
    parts = [p for p in path.split("/") if p]
    return [os.path.join(base, *parts[:i]) for i in range(len(parts), -1, -1)]


def _quota_v2(directory: str) -> float | None:
    text = _read(os.path.join(directory, "cpu.max"))
    if not text:
        return None
    fields = text.split()
    if fields[0] == "max" or len(fields) < 2:
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _quota_v1(directory: str) -> float | None:
    quota = _read(os.path.join(directory, "cpu.cfs_quota_us"))
    period = _read(os.path.join(directory, "cpu.cfs_period_us"))
    try:
        q, p = int(quota or "-1"), int(period or "0")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpu_quota(root: str = "/") -> float | None:
    """The tightest cgroup CPU quota over this process, in CPUs; None if there is none."""
    quotas: list[float] = []
    cgroups = _cgroup_paths(root)
    sys_cgroup = os.path.join(root, "sys/fs/cgroup")
    if "" in cgroups:  # v2, unified hierarchy
        quotas += [q for d in _ancestors(sys_cgroup, cgroups[""]) if (q := _quota_v2(d)) is not None]
    if "cpu" in cgroups:  # v1: the cpu controller's own mount
        for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            base = os.path.join(sys_cgroup, mount)
            if os.path.isdir(base):
                # inside a container the recorded path may not exist below the mount: the
                # mount itself is then the container's own cgroup
                quotas += [q for d in _ancestors(base, cgroups["cpu"]) if (q := _quota_v1(d)) is not None]
                break
    return min(quotas) if quotas else None


def available_cpus(root: str = "/") -> int:
    """CPUs this process may use: its affinity, capped by a cgroup quota (rounded up)."""
    try:
        cpus = len(os.sched_getaffinity(0)) if root == "/" else _affinity_from(root)
    except AttributeError:  # no affinity on this platform
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _affinity_from(root: str) -> int:
    """Allowed CPUs from a (fake) ``/proc/self/status``'s ``Cpus_allowed_list``."""
    text = _read(os.path.join(root, "proc/self/status")) or ""
    for line in text.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            count = 0
            for part in line.split(":", 1)[1].strip().split(","):
                lo, _, hi = part.partition("-")
                count += int(hi or lo) - int(lo) + 1
            return count
    return os.cpu_count() or 1


def _memory_v2(directory: str) -> int | None:
    text = _read(os.path.join(directory, "memory.max"))
    return int(text) if text and text.isdigit() else None  # "max": none


def _memory_v1(directory: str) -> int | None:
    text = _read(os.path.join(directory, "memory.limit_in_bytes"))
    # no limit reads as a huge number (a page-rounded 2**63)
    return int(text) if text and text.isdigit() and int(text) < 2**60 else None


def cgroup_memory_limit(root: str = "/") -> int | None:
    """The tightest cgroup memory limit over this process, in bytes; None if there is none."""
    limits: list[int] = []
    cgroups = _cgroup_paths(root)
    sys_cgroup = os.path.join(root, "sys/fs/cgroup")
    if "" in cgroups:
        limits += [m for d in _ancestors(sys_cgroup, cgroups[""]) if (m := _memory_v2(d)) is not None]
    if "memory" in cgroups:
        base = os.path.join(sys_cgroup, "memory")
        limits += [m for d in _ancestors(base, cgroups["memory"]) if (m := _memory_v1(d)) is not None]
    return min(limits) if limits else None


def process_memory(root: str = "/") -> int:
    """Bytes this process may use: physical memory, capped by a cgroup memory limit (a
    container's limit, not its host's memory)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        total = 8 * 2**30
    limit = cgroup_memory_limit(root)
    return min(total, limit) if limit is not None else total


def resolve_threads(threads: int | None) -> int:
    """``threads`` checked, or :func:`available_cpus` for None.

    >>> resolve_threads(3)
    3
    """
    if threads is None:
        return available_cpus()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise JobError(f"threads must be a whole number of at least 1, not {threads!r}")
    return threads


class InlineExecutor(Executor):
    """An executor that runs each task at once, in the calling thread: ``threads=1`` means
    one thread, not one worker beside the caller.

    >>> InlineExecutor().submit(pow, 2, 10).result()
    1024
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # handed to whoever asks for the result, as a pool would
            future.set_exception(e)
        return future


def executor(threads: int, name: str) -> Executor:
    """``threads`` worker threads named ``name``, or the calling thread alone for one."""
    return InlineExecutor() if threads == 1 else ThreadPoolExecutor(threads, thread_name_prefix=name)


@contextmanager
def arrow_threads(threads: int) -> Iterator[None]:
    """Arrow's own CPU thread pool (Parquet decoding, compute kernels) sized to ``threads``
    for the block. Arrow sizes it from the machine's cores, not from the CPUs this process
    may use; and a job asked to use N threads should not use more through Arrow."""
    import pyarrow as pa

    before = pa.cpu_count()
    pa.set_cpu_count(threads)
    try:
        yield
    finally:
        pa.set_cpu_count(before)
