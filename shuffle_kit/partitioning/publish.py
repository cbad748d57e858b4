"""Putting a finished output in place on the local filesystem, and cleaning up after jobs.

- :func:`publish`: the staging directory replaces ``out`` in one step where the system can
  (Linux: ``renameat2(RENAME_EXCHANGE)``), so an interrupt leaves the old output or the new
  one, never neither; elsewhere the old one is moved aside first.
- :func:`publish_new` (``exists="append"``): each new file is moved in with a rename that
  refuses to replace anything (``RENAME_NOREPLACE``, else link + unlink), and a failure takes
  back what was moved so far.
- :func:`sweep` / :func:`cleanup`: what killed jobs left, and what a failed one made.

Object stores, which cannot rename, publish through :mod:`~shuffle_kit.partitioning.object_store`.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Any

from .. import scratch
from . import engine

logger = logging.getLogger(__name__)


def publish(staging: str, out: str) -> None:
    """Move the finished output into place, replacing an old ``out`` only now and in one
    step where the system can: Linux exchanges the two directories atomically
    (``renameat2(RENAME_EXCHANGE)``), so an interrupt leaves either the old output or the
    new one at ``out``, never neither. Elsewhere the old one is moved aside first."""
    # the staging directory was made private (mode 0700); the output gets what a directory
    # made by the user would
    os.chmod(staging, 0o777 & ~_umask())
    if os.path.isdir(out) and not os.path.islink(out) and not os.listdir(out):
        os.rmdir(out)
    if not os.path.lexists(out):
        os.rename(staging, out)
        scratch.release(staging)
        logger.debug("renamed %s to %s", staging, out)
    elif exchange(staging, out):
        scratch.remove(staging)  # which now holds the old output
        logger.debug("exchanged %s with the old %s in one step, then removed the old", staging, out)
    else:
        logger.debug("moving the old %s aside, then %s in its place", out, staging)
        old = scratch.make(f".{os.path.basename(out)}.old-", os.path.dirname(out))
        os.rename(out, os.path.join(old, "out"))
        os.rename(staging, out)
        scratch.release(staging)
        scratch.remove(old)


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:  # read without changing it (Linux)
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def _renameat2(a: str, b: str, flags: int) -> bool:
    """Linux's ``renameat2(a, b, flags)``; False where the system or file system lacks it."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:  # glibc before 2.28
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without it
        return False
    if err == errno.EEXIST:
        raise FileExistsError(err, f"cannot append: {b!r} exists already")
    raise OSError(err, f"cannot put the output in place at {b!r}: {os.strerror(err)}")


def exchange(a: str, b: str) -> bool:
    """Swap directories ``a`` and ``b`` in one step; False where the system cannot."""
    return _renameat2(a, b, RENAME_EXCHANGE)


def move_new(src: str, dst: str) -> None:
    """Rename file ``src`` to ``dst`` in one step, never replacing a file at ``dst``."""
    if _renameat2(src, dst, RENAME_NOREPLACE):
        return
    try:
        os.link(src, dst)  # fails if dst exists
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"cannot append: {dst!r} exists already") from None
    os.unlink(src)


def publish_new(staging: str, out: str) -> None:
    """Move every file of ``staging`` into the same place under ``out``, replacing
    nothing; on any failure (or interrupt) take back the files and directories moved or
    made so far, so that ``out`` is as it was."""
    mode = 0o777 & ~_umask()
    moved: list[str] = []
    made: list[str] = []
    try:
        for root, dirs, files in os.walk(staging):
            dirs.sort()
            rel = os.path.relpath(root, staging)
            target = out if rel == "." else os.path.join(out, rel)
            if not os.path.isdir(target):
                os.mkdir(target, mode)
                made.append(target)
            for f in sorted(files):
                dst = os.path.join(target, f)
                move_new(os.path.join(root, f), dst)
                moved.append(dst)
    except BaseException:
        for path in reversed(moved):
            _quietly(os.unlink, path)
        for path in reversed(made):
            _quietly(os.rmdir, path)
        raise
    logger.debug("appended %d files to %s, each renamed in without replacing one (%d new directories)",
                 len(moved), out, len(made))
    scratch.remove(staging)


def _quietly(action: Any, path: str) -> None:
    try:
        action(path)
    except OSError:
        pass


def sweep(parent: str, name: str, tmp: str) -> None:
    """Remove what jobs killed before their end left in ``parent`` (beside a local output
    named ``name``, or where a remote one is staged) and in ``tmp``."""
    for prefix in (f".{name}.partial-", f".{name}.old-"):
        scratch.sweep(prefix, parent)
    scratch.sweep(engine.RUNS_PREFIX, tmp)


def cleanup(staging: str | None) -> None:
    """Remove unfinished output, even during Ctrl-C (the engine removes its own runs)."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        if staging is not None:
            scratch.remove(staging)
    finally:
        if main:
            signal.signal(signal.SIGINT, old)
