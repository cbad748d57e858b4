"""Directories that die with their process: removed by their owner when done, and by a later
process if a ``kill -9`` left them behind. Scratch directories, staging directories,
temporary ``File`` stores and spill directories all follow these rules.

- **Owner.** :func:`make` makes a directory ``D`` that this process owns: beside it lies
  ``D.lock`` (:func:`lock_file`), locked (``flock``, exclusively) for as long as the owner
  lives; the kernel releases the lock when the process dies, however it dies. Beside, not
  inside: a finished directory can be renamed into place whole (then :func:`release`). The lock
  file is made and locked before the directory exists, so no directory ever shows a live
  owner's lock free.
- **Users.** Any process may use a directory it did not make (a store opened by its path):
  :func:`use` holds a shared lock on ``D/.users`` until its descriptor is closed.
  :func:`unused` and :func:`remove_if_unused` take that lock exclusively, so nobody starts
  using ``D`` while it is removed.
- **Abandoned.** A directory is abandoned when nobody uses it and its owner is gone: its lock
  file is free (:func:`alive`), or, for a directory without one (made by something else, or an
  older version), it is older than :data:`GRACE` seconds. A caller may also spare directories
  younger than ``min_age`` whatever their lock says.
- **Sweep.** :func:`sweep` removes the abandoned directories ``parent/prefix*suffix`` and their
  lock files; it never touches a directory this process owns, another name, or a symlink. A
  lock file left without its directory (its owner was killed as it made it, a sweep as it
  removed it) goes once it is free and older than :data:`GRACE` seconds.

>>> import tempfile, os
>>> parent = tempfile.mkdtemp()
>>> d = make(".job-", parent)
>>> alive(d), sweep(".job-", parent)   # its owner, this process, lives
(True, [])
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
from collections.abc import Iterator
from contextlib import contextmanager

SUFFIX = ".lock"  # of an owner's lock file, beside its directory
USERS_NAME = ".users"  # in a directory: every user holds a shared lock on it
GRACE = 60.0

_held: dict[str, int] = {}  # directory -> the open, locked descriptor of its lock file
_lock = threading.Lock()


def lock_file(path: str) -> str:
    """The owner's lock file of the directory ``path``."""
    return path + SUFFIX


def make(prefix: str, parent: str | None = None, suffix: str = "") -> str:
    """A new directory ``parent/prefix*suffix`` (mode 0700; its absolute path), owned by
    this process until :func:`remove` or :func:`release`."""
    while True:
        fd, lock = tempfile.mkstemp(prefix=prefix, suffix=suffix + SUFFIX, dir=parent)
        lock = os.path.abspath(lock)
        path = lock[: -len(SUFFIX)]
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.mkdir(path, 0o700)
        except BaseException as e:
            _unlink(lock)
            os.close(fd)
            if isinstance(e, (FileExistsError, BlockingIOError)):
                continue  # a directory of that name without a lock file (a sweep may be
                # looking at it): pick another name
            raise
        with _lock:
            _held[path] = fd
        return path


def release(path: str) -> None:
    """Stop owning ``path`` (for example once it has been renamed into place)."""
    with _lock:
        fd = _held.pop(os.path.abspath(path), None)
    if fd is not None:
        _unlink(lock_file(path))
        os.close(fd)


def remove(path: str) -> None:
    """Remove ``path`` and everything in it, and its lock file, then let go of it."""
    shutil.rmtree(path, ignore_errors=True)
    _unlink(lock_file(path))
    release(path)


def alive(path: str) -> bool:
    """Whether the owner of the directory ``path`` lives: this process, or another that holds
    its lock file. False when it has no lock file.

    >>> alive('/nonexistent/directory')
    False
    """
    with _lock:
        if os.path.abspath(path) in _held:
            return True
    return not unlocked(lock_file(path))


def use(path: str, create: bool = True) -> int:
    """Announce a user of the directory ``path``: a descriptor holding a shared lock on its
    users file (made if ``create``) until it is closed. Waits while the directory is being
    removed."""
    fd = os.open(os.path.join(path, USERS_NAME), os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def unused(path: str) -> Iterator[bool]:
    """Whether no process uses the directory ``path`` (see :func:`use`; True when it has no
    users file); while the ``with`` block runs, nobody starts to."""
    fd: int | None = None
    try:
        fd = os.open(os.path.join(path, USERS_NAME), os.O_RDONLY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        free = True
    except (FileNotFoundError, NotADirectoryError):
        free = fd is None  # no users file: nobody can use it
    except OSError:
        free = False  # in use (or not ours to judge)
    try:
        yield free
    finally:
        if fd is not None:
            os.close(fd)  # (which drops the lock, if this process took it)


def remove_if_unused(path: str) -> bool:
    """Remove ``path`` (as :func:`remove`) unless a process uses it; whether it is gone."""
    with unused(path) as free:
        if free:
            remove(path)
    return free


def abandoned(prefix: str, parent: str, suffix: str = "", *, min_age: float = 0.0) -> list[str]:
    """The directories ``parent/prefix*suffix`` that are abandoned (what :func:`sweep`
    removes), leaving alone those younger than ``min_age`` seconds."""
    found = []
    for name in _names(parent):
        if not name.startswith(prefix) or not name.endswith(suffix) or name.endswith(SUFFIX):
            continue
        path = os.path.join(parent, name)
        if os.path.isdir(path) and not os.path.islink(path) and _abandoned(path, min_age):
            found.append(path)
    return found


def sweep(prefix: str, parent: str, suffix: str = "", *, min_age: float = 0.0) -> list[str]:
    """Remove the abandoned directories ``parent/prefix*suffix`` (see :func:`abandoned`);
    return them."""
    removed = [path for path in abandoned(prefix, parent, suffix, min_age=min_age) if remove_if_unused(path)]
    for name in _names(parent):
        lock = os.path.join(parent, name)
        if (
            name.startswith(prefix) and name.endswith(suffix + SUFFIX)
            and not os.path.lexists(lock[: -len(SUFFIX)]) and _age(lock) > GRACE and unlocked(lock)
        ):
            _unlink(lock)
    return removed


def _names(parent: str) -> list[str]:
    try:
        return sorted(os.listdir(parent))
    except OSError:
        return []


def _age(path: str) -> float:
    """Seconds since ``path`` last changed (0 if it is gone)."""
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return 0.0


def _abandoned(path: str, min_age: float) -> bool:
    age = _age(path)
    if age < min_age or alive(path):
        return False
    if age <= GRACE and not os.path.exists(lock_file(path)):
        return False
    with unused(path) as free:
        return free


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


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
