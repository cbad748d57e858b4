"""Scratch directories that die with their process: made for one job, removed by it, and
removed by a later job if a ``kill -9`` left them behind.

Beside each directory ``D`` lies ``D.lock``, locked (``flock``) for as long as the process
that made it lives; the kernel releases the lock when the process dies, however it dies.
(Beside, not inside: a finished directory is renamed into place whole.) A sweep removes
every directory of a given prefix whose lock can be taken, i.e. whose owner is gone. A
directory without a lock file is left alone while it is young (its owner may be about to
lock it) and swept once it is older than :data:`GRACE` seconds.

>>> import tempfile, os
>>> parent = tempfile.mkdtemp()
>>> d = make(".job-", parent)
>>> sweep(".job-", parent)   # its owner, this process, is alive
[]
>>> remove(d); os.listdir(parent)
[]
>>> os.rmdir(parent)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
import time

SUFFIX = ".lock"
GRACE = 60.0

_held: dict[str, int] = {}  # directory -> the open, locked descriptor of its lock file
_lock = threading.Lock()


def make(prefix: str, parent: str | None = None) -> str:
    """A new directory ``parent/prefix*``, owned by this process until :func:`remove` or
    :func:`release`."""
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    fd = os.open(path + SUFFIX, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with _lock:
        _held[path] = fd
    return path


def release(path: str) -> None:
    """Stop owning ``path`` (for example once it has been renamed into place)."""
    with _lock:
        fd = _held.pop(path, None)
    if fd is not None:
        try:
            os.unlink(path + SUFFIX)
        except OSError:
            pass
        os.close(fd)


def remove(path: str) -> None:
    """Remove ``path`` and everything in it, then let go of it."""
    shutil.rmtree(path, ignore_errors=True)
    release(path)


def abandoned(prefix: str, parent: str) -> list[str]:
    """The directories ``parent/prefix*`` whose owner is gone (what :func:`sweep` removes)."""
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(parent, name)
        if not name.startswith(prefix) or name.endswith(SUFFIX):
            continue
        with _lock:
            if path in _held:
                continue
        if os.path.isdir(path) and not os.path.islink(path) and _abandoned(path):
            found.append(path)
    return found


def sweep(prefix: str, parent: str) -> list[str]:
    """Remove the directories ``parent/prefix*`` whose owner is gone; return them."""
    removed = abandoned(prefix, parent)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
        try:
            os.unlink(path + SUFFIX)
        except OSError:
            pass
    return removed


def _abandoned(path: str) -> bool:
    lock = path + SUFFIX
    if not os.path.exists(lock):
        try:
            return time.time() - os.stat(path).st_mtime > GRACE
        except OSError:
            return False
    return unlocked(lock)


def unlocked(path: str) -> bool:
    """Whether no process holds a lock (``flock``) on the file ``path``: its owner, if it
    had one, is gone. True when there is no such file.

    >>> unlocked('/nonexistent/lock')
    True
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False  # locked: its owner lives
    finally:
        os.close(fd)  # (which drops the lock, if this process took it)
