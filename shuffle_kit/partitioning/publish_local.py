"""Putting a finished output in place on the local filesystem, and cleaning up after jobs.

- :func:`publish`: the staging directory replaces ``out`` in one step where the system can
  (Linux: ``renameat2(RENAME_EXCHANGE)``), so an interrupt leaves the old output or the new
  one, never neither; elsewhere the old one is moved aside first.
- :func:`publish_fresh`: a new output (``out`` absent or empty when the job began) moves in
  with one rename that replaces nothing holding files, so a job that finds another's output
  there meanwhile is told so (and appends to it, with ``exists="append"``).
- :func:`publish_new` (``exists="append"``): each new file is moved in with a rename that
  refuses to replace anything (``RENAME_NOREPLACE``, else link + unlink), and a failure takes
  back what was moved so far. A job killed while moving cannot: the list of what it was
  moving (:data:`JOURNAL`, in its staging directory) lets the next job on the output take
  it back (:func:`undo_append`), so an append is never left half done.
- :func:`sweep` / :func:`cleanup`: what killed jobs left, and what a failed one made.

Object stores, which cannot rename, publish through :mod:`~shuffle_kit.partitioning.publish_objects`.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from typing import Any

from .. import lifecycle
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
        lifecycle.release(staging)
        logger.debug("renamed %s to %s", staging, out)
    elif exchange(staging, out):
        lifecycle.remove(staging)  # which now holds the old output
        logger.debug("exchanged %s with the old %s in one step, then removed the old", staging, out)
    else:
        logger.debug("moving the old %s aside, then %s in its place", out, staging)
        old = lifecycle.make(f".{os.path.basename(out)}.old-", os.path.dirname(out))
        os.rename(out, os.path.join(old, "out"))
        os.rename(staging, out)
        lifecycle.release(staging)
        lifecycle.remove(old)


def publish_fresh(staging: str, out: str) -> bool:
    """Move the finished output to ``out`` if nothing is there but an empty directory, in
    one rename (which never replaces a directory holding files, so two jobs that both found
    ``out`` empty cannot throw away each other's output); False, changing nothing, when
    ``out`` holds files now."""
    os.chmod(staging, 0o777 & ~_umask())
    try:
        os.rename(staging, out)
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            os.chmod(staging, 0o700)
            return False
        raise
    lifecycle.release(staging)
    logger.debug("renamed %s to %s", staging, out)
    return True


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


JOURNAL = ".shuffle_kit-append.json"  # in an append's staging directory: what it moves where


def publish_new(staging: str, out: str) -> None:
    """Move every file of ``staging`` into the same place under ``out``, replacing
    nothing; on any failure (or interrupt) take back the files and directories moved or
    made so far, so that ``out`` is as it was. What it moves is written down first
    (:data:`JOURNAL`), for the next job to take back if this one is killed."""
    mode = 0o777 & ~_umask()
    out = os.path.abspath(out)
    files, dirs = _plan(staging, out)
    with open(os.path.join(staging, JOURNAL), "w") as f:
        json.dump({"out": out, "files": files, "dirs": dirs}, f)
    moved: list[str] = []
    made: list[str] = []
    try:
        for rel in dirs:
            try:
                os.mkdir(os.path.join(out, rel), mode)
                made.append(os.path.join(out, rel))
            except FileExistsError:  # another append made it meanwhile
                pass
        for rel in files:
            dst = os.path.join(out, rel)
            move_new(os.path.join(staging, rel), dst)
            moved.append(dst)
    except BaseException:
        for path in reversed(moved):
            _quietly(os.unlink, path)
        for path in reversed(made):
            _quietly(os.rmdir, path)
        raise
    os.unlink(os.path.join(staging, JOURNAL))  # done: from here on the append stands
    logger.debug("appended %d files to %s, each renamed in without replacing one (%d new directories)",
                 len(moved), out, len(made))
    lifecycle.remove(staging)


def _plan(staging: str, out: str) -> tuple[list[str], list[str]]:
    """The files of ``staging`` (paths relative to it, in order) and the directories they
    need that ``out`` lacks (parents first)."""
    files, dirs = [], []
    for root, subdirs, names in os.walk(staging):
        subdirs.sort()
        rel = os.path.relpath(root, staging)
        if rel != "." and not os.path.isdir(os.path.join(out, rel)):
            dirs.append(rel)
        files += [os.path.normpath(os.path.join(rel, n)) for n in sorted(names)]
    return files, dirs


def undo_append(staging: str) -> None:
    """Take back from its output what the append staged in ``staging`` (whose job was
    killed) had moved there, going by its :data:`JOURNAL`; nothing if it had none."""
    try:
        with open(os.path.join(staging, JOURNAL)) as f:
            plan = json.load(f)
        out, files, dirs = plan["out"], plan["files"], plan["dirs"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # killed before it moved anything
    for rel in files:
        src, dst = os.path.join(staging, rel), os.path.join(out, rel)
        # moved, or linked in and not yet unlinked (the fallback of move_new)
        if os.path.lexists(dst) and (not os.path.lexists(src) or os.path.samefile(src, dst)):
            _quietly(os.unlink, dst)
    for rel in reversed(dirs):
        _quietly(os.rmdir, os.path.join(out, rel))
    logger.info("took back what a killed append had moved into %s", out)


def _quietly(action: Any, path: str) -> None:
    try:
        action(path)
    except OSError:
        pass


def sweep(parent: str, name: str, tmp: str) -> None:
    """Remove what jobs killed before their end left in ``parent`` (beside a local output
    named ``name``, or where a remote one is staged) and in ``tmp``, taking back first what
    a killed append had moved into the output."""
    for staging in lifecycle.abandoned(f".{name}.partial-", parent):
        undo_append(staging)
    for prefix in (f".{name}.partial-", f".{name}.old-"):
        lifecycle.sweep(prefix, parent)
    lifecycle.sweep(engine.RUNS_PREFIX, tmp)


def cleanup(staging: str | None) -> None:
    """Remove unfinished output, even during Ctrl-C (the engine removes its own runs)."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        if staging is not None:
            lifecycle.remove(staging)
    finally:
        if main:
            signal.signal(signal.SIGINT, old)
