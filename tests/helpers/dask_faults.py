"""Faults injected into ``shuffle_kit.dask`` shuffles by the tests, not by the package.

The seam is a public method of a public class: ``append`` of the store a map task writes
to (``TableBuffer`` on dask's local schedulers, ``Shared``, the client of the per-worker
servers, on ``dask.distributed``). The real append runs first, so the pieces are stored,
then the test's action (a failure, a delay) gets the map task's input partition ``i``:
each map task appends with the batch id ``<run>/<i>`` (see ``shuffle_kit.dask``).

On a cluster, :func:`arm` and :func:`disarm` run in every worker process
(``client.run``); in this process, :func:`after_appends` is a context manager.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast


def patch_appends(cls: type, action: Callable[[int], None]) -> None:
    """Make ``cls.append`` run ``action(i)`` after each append made by map task ``i``."""
    real = cast("Callable[..., None]", getattr(cls.append, "__wrapped__", cls.append))  # type: ignore[attr-defined]

    @functools.wraps(real)
    def append(self: Any, data: Any, *args: Any, batch_id: bytes | None = None, **kwargs: Any) -> None:
        real(self, data, *args, batch_id=batch_id, **kwargs)
        if batch_id is not None:
            action(int(batch_id.rsplit(b"/", 1)[-1]))

    cls.append = append  # type: ignore[attr-defined]


def restore_appends(cls: type) -> None:
    cls.append = getattr(cls.append, "__wrapped__", cls.append)  # type: ignore[attr-defined]


@contextmanager
def after_appends(cls: type, action: Callable[[int], None]) -> Iterator[None]:
    patch_appends(cls, action)
    try:
        yield
    finally:
        restore_appends(cls)


def despite_a_killed_worker(client: Any, collection: Any) -> Any:
    """Compute ``collection`` (its map tasks slowed by :func:`arm`), killing a worker process
    once some have appended: the result, or None when the run failed with a clear
    ``ShuffleDataLost`` (acceptable; silent loss never is)."""
    from shuffle_kit import ShuffleDataLost

    future = client.compute(collection)
    time.sleep(1.0)  # some map tasks have appended, others have not
    _, pid = sorted(client.run(os.getpid).items())[0]
    os.kill(pid, signal.SIGKILL)
    try:
        return future.result(timeout=120)
    except ShuffleDataLost as e:
        assert "lost" in str(e)
        return None
    finally:
        client.wait_for_workers(2, timeout=60)
        client.run(disarm)
        del future


def arm(action: Callable[[int], None]) -> None:
    """In a worker: every append to a per-worker server runs ``action`` after it."""
    from shuffle_kit import Shared

    patch_appends(Shared, action)


def disarm() -> None:
    from shuffle_kit import Shared

    restore_appends(Shared)


# -- actions (module level: they travel to the workers by reference) -------------------------


def sleep(seconds: float, i: int) -> None:
    time.sleep(seconds)


def fail(i: int) -> None:
    raise RuntimeError("injected permanent failure")


def fail_once(marker: str, victim: int, i: int) -> None:
    """Fail map task ``victim`` the first time (``marker`` records that it did)."""
    if i == victim and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("injected failure after the append")


def touch_and_sleep(marker: str, seconds: float, i: int) -> None:
    open(marker, "a").close()
    time.sleep(seconds)
