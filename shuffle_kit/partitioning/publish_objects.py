"""Publishing a finished output to a filesystem without atomic renames (S3, GCS, Azure, and
the fsspec ones): a staging prefix, server-side copies, a journal that the next job can
finish or take back, and a ``_SUCCESS`` marker.

The job writes its files on the local disk (``--tmp``) as for a local ``--out``. Old and new
files never share a name: an output that already holds files is replaced by files named with
the job's token (``part-00003-<token>.parquet``), so no old object is touched before the new
set is complete. Under ``OUT/`` the job then, in this order (what a reader that lists ``OUT``
and skips names starting with ``_`` or ``.`` sees, in brackets):

1. writes ``_temporary/<job>/_lease`` (who runs the job; rewritten every :data:`HEARTBEAT`
   seconds), then uploads every file under ``_temporary/<job>/`` [the old files];
2. writes ``_temporary/<job>/_journal``, naming the old files and the new ones;
3. removes ``_SUCCESS`` [the old files];
4. copies each new file to its place, server-side [the old files and some of the new];
5. writes ``_temporary/<job>/_committed``: from here on the new output is the one that stands
   [the old files and all the new];
6. removes the old files [all the new files and some of the old];
7. writes ``_SUCCESS``, a JSON object naming the files [the new files];
8. removes ``_temporary/<job>/``, the journal first.

A reader that honours ``_SUCCESS`` (Spark, Hadoop) reads only between step 7 of one job and
step 3 of the next, when the listing is exactly one complete output. A job that fails takes
back what it did; one killed (``kill -9``, a lost machine) leaves its journal, and the next job
on ``OUT`` (also one that is then refused) finishes or takes back its work before anything
else (:func:`recover`): before ``_committed`` it deletes the new files and puts the old
``_SUCCESS`` back, which leaves the old output as it was; after, it deletes the rest of the old
files and writes ``_SUCCESS``, which leaves the new one complete. Until then every old file is
intact (before step 5) or every new one in place (after).

Which jobs are dead: a ``_temporary/<job>/`` whose lease names this machine and a lock file
(:mod:`shuffle_kit.lifecycle`) that no process holds; otherwise one whose lease the server saw
last more than :data:`LEASE_SECONDS` ago (a job on another machine, or whose lock is gone);
or one without a lease (a job writes it before anything else). A live job's staging is never
touched.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pyarrow.fs as pafs

from .. import lifecycle
from ..io.filesystems import Location
from ..limits import executor

logger = logging.getLogger(__name__)

STAGING = "_temporary"
MARKER = "_SUCCESS"
LEASE, JOURNAL, COMMITTED = "_lease", "_journal", "_committed"
HEARTBEAT = 30.0  # seconds between two writes of a running job's lease
LEASE_SECONDS = 600.0  # a lease the server has not seen rewritten for this long is a dead job's


def reached(step: str) -> None:
    """Called as the publish passes each step (``"staged"``, ``"journal"``, ``"unmarked"``,
    ``"copied"`` per file, ``"committed"``, ``"deleted"`` per old file, ``"marked"``): a
    place for tests to stop the process, and for ``-vv`` to show progress."""
    logger.debug("publish: %s", step)


def _listing(loc: Location) -> list[pafs.FileInfo]:
    return loc.fs.get_file_info(pafs.FileSelector(loc.path, recursive=True, allow_not_found=True))


def _objects(out: Location) -> list[str]:
    """The files below ``out`` (full paths), other than staging areas."""
    try:
        infos = _listing(out)
    except OSError as e:
        raise ValueError(f"cannot list --out {out.url!r}: {' '.join(str(e).split())}") from None
    staging = out.join(STAGING).path + "/"
    return [i.path for i in infos if i.type == pafs.FileType.File and not i.path.startswith(staging)]


def _names(out: Location, paths: list[str]) -> list[str]:
    """``paths`` relative to ``out``."""
    base = out.path.rstrip("/") + "/"
    return sorted(p[len(base):] for p in paths)


def check(out: Location, exists: str) -> bool:
    """Refuse ``out`` before any work when it is a file, or holds files and ``exists`` is
    ``"error"``; then make sure it can be written (a probe, removed at once). Call
    :func:`recover` first. Whether ``out`` holds files."""
    if not out.path.strip("/"):
        raise ValueError(f"--out {out.url!r} names no bucket or directory")
    try:
        kind = out.info().type
    except OSError as e:
        raise ValueError(f"cannot reach --out {out.url!r}: {' '.join(str(e).split())}") from None
    if kind == pafs.FileType.File:
        raise ValueError(f"--out {out.url!r} exists and is not a directory")
    held = kind == pafs.FileType.Directory and bool(_objects(out))
    if held and exists == "error":
        raise ValueError(f"--out {out.url!r} is not empty (use --exists overwrite to replace it)")
    probe = out.join(STAGING, _job_id())
    try:
        with out.fs.open_output_stream(probe.join("_probe").path):  # (a missing bucket, or no right to write)
            pass
        _remove_prefix(out, probe)
    except OSError as e:
        raise ValueError(f"cannot write to --out {out.url!r}: {' '.join(str(e).split())}") from None
    return held


def _job_id() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + secrets.token_hex(6)


def _remove_prefix(out: Location, loc: Location, first: tuple[str, ...] = ()) -> None:
    """Remove everything below ``loc`` (the objects named ``first`` before the others), and
    ``OUT/_temporary/`` too once it holds nothing (pyarrow leaves an empty directory marker
    where it deletes the last object below one)."""
    for name in first:
        _delete(loc.join(name))
    if loc.info().type == pafs.FileType.Directory:
        loc.fs.delete_dir(loc.path)
    staging = out.join(STAGING)
    if staging.info().type == pafs.FileType.Directory and not _listing(staging):
        staging.fs.delete_dir(staging.path)


def _delete(loc: Location) -> None:
    try:
        loc.fs.delete_file(loc.path)
    except FileNotFoundError:
        pass


def _read(loc: Location) -> bytes | None:
    try:
        with loc.fs.open_input_stream(loc.path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def _write(loc: Location, data: bytes) -> None:
    with loc.fs.open_output_stream(loc.path) as f:
        f.write(data)


# -- the publish ------------------------------------------------------------------------------


def publish(staging: str, out: Location, exists: str) -> None:
    """Put the files of the local directory ``staging`` at ``out`` (see the module's steps).
    Raise ValueError, changing nothing, when ``out`` gained files meanwhile that the new ones
    would collide with (another job writing it)."""
    job = out.join(STAGING, _job_id())
    names = sorted(
        os.path.relpath(os.path.join(root, f), staging).replace(os.sep, "/")
        for root, _, files in os.walk(staging) for f in files
    )
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "lock": lifecycle.lock_file(staging)}
    lease = json.dumps(owner).encode()

    def copy(name: str) -> None:
        out.fs.copy_file(job.join(name).path, out.join(name).path)
        reached("copied")

    def delete(name: str) -> None:
        _delete(out.join(name))
        reached("deleted")

    committed = False
    journal: dict | None = None
    try:
        with _heartbeat(job.join(LEASE), lease):
            pafs.copy_files(staging, job.path, source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=out.fs, use_threads=True)
            reached("staged")
            present = _names(out, _objects(out))
            old = [n for n in present if n != MARKER]
            if exists != "overwrite" and present:
                raise ValueError(f"--out {out.url!r} is not empty: another job wrote to it meanwhile")
            if set(old) & set(names):
                raise ValueError(f"--out {out.url!r}: {sorted(set(old) & set(names))[0]!r} was written there "
                                 "meanwhile (another job writing to it?)")
            marker = _read(out.join(MARKER))
            journal = {"old": old, "new": names,
                       "marker": None if marker is None else base64.b64encode(marker).decode()}
            _write(job.join(JOURNAL), json.dumps(journal).encode())
            reached("journal")
            _delete(out.join(MARKER))
            reached("unmarked")
            _each(copy, names)
            _write(job.join(COMMITTED), b"")
            committed = True
            reached("committed")
            _each(delete, old)
            _write(out.join(MARKER), _manifest(names))
            reached("marked")
    except BaseException:
        # a failure after the commit, or while taking back, leaves the journal: the next
        # job on --out finishes the work or takes it back
        if not committed:
            try:
                if journal is not None:
                    _roll_back(out, journal)
                _remove_prefix(out, job, first=(JOURNAL,))
            except Exception as e:
                logger.warning("could not take back the publish to %s (the next job will): %s", out.url, e)
        raise
    _remove_prefix(out, job, first=(JOURNAL,))


def _manifest(names: list[str]) -> bytes:
    return json.dumps({"files": names}, indent=1).encode() + b"\n"


def _roll_back(out: Location, journal: dict) -> None:
    """Take back an uncommitted publish: delete the new files, put the old marker back (only
    over a complete old output)."""
    _each(lambda name: _delete(out.join(name)), journal["new"])
    if journal["marker"] is not None and out.join(MARKER).info().type != pafs.FileType.File:
        present = set(_names(out, _objects(out)))
        if all(n in present for n in journal["old"]):
            _write(out.join(MARKER), base64.b64decode(journal["marker"]))


def _roll_forward(out: Location, job: Location, journal: dict) -> None:
    """Finish a committed publish: delete the rest of the old files, write the marker (only
    once every new file is in place)."""
    present = set(_names(out, _objects(out)))
    if not all(n in present for n in journal["new"]):
        logger.warning("a killed job's new files at %s are incomplete: its journal is left alone", out.url)
        return
    _each(lambda name: _delete(out.join(name)), [n for n in journal["old"] if n not in journal["new"]])
    _write(out.join(MARKER), _manifest(journal["new"]))


@contextmanager
def _heartbeat(lease: Location, body: bytes) -> Iterator[None]:
    """Write ``lease`` now and every :data:`HEARTBEAT` seconds while the block runs."""
    _write(lease, body)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT):
            try:
                _write(lease, body)
            except OSError:  # the next beat tries again; a lease this old is taken as dead
                pass

    thread = threading.Thread(target=beat, name="shuffle_kit-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


# -- what dead jobs left ------------------------------------------------------------------


def recover(out: Location) -> list[str]:
    """Finish or take back the publish of every dead job under ``out/_temporary/`` (see the
    module's notes), and remove their staging areas; leave live jobs' alone. The jobs
    recovered."""
    staging = out.join(STAGING)
    try:
        infos = _listing(staging)
    except OSError as e:
        raise ValueError(f"cannot list --out {out.url!r}: {' '.join(str(e).split())}") from None
    jobs: dict[str, list[pafs.FileInfo]] = {}
    base = staging.path.rstrip("/") + "/"
    for i in infos:
        name = i.path[len(base):].split("/", 1)[0]
        jobs.setdefault(name, [])
        if i.type == pafs.FileType.File:
            jobs[name].append(i)
    done = []
    now: datetime | None = None
    for name, files in sorted(jobs.items()):
        job = staging.join(name)
        lease = next((i for i in files if i.path == job.join(LEASE).path), None)
        if lease is not None:
            if now is None:
                now = _server_now(out)
            if not _dead(job, lease, now):
                continue
        try:
            journal = json.loads(_read(job.join(JOURNAL)) or b"null")
        except ValueError:
            journal = None
        try:
            if isinstance(journal, dict):
                if job.join(COMMITTED).info().type == pafs.FileType.File:
                    _roll_forward(out, job, journal)
                    logger.info("finished the publish a killed job had committed at %s", out.url)
                    if out.join(MARKER).info().type != pafs.FileType.File:
                        continue  # (incomplete: left for a person to look at)
                else:
                    _roll_back(out, journal)
                    logger.info("took back the publish a killed job had begun at %s", out.url)
            # the journal first: a prefix without one is only removed, never acted on again
            _remove_prefix(out, job, first=(JOURNAL,))
        except OSError as e:
            raise ValueError(f"cannot clean up after a killed job at --out {out.url!r}: "
                             f"{' '.join(str(e).split())}") from None
        done.append(name)
    return done


def _dead(job: Location, lease: pafs.FileInfo, now: datetime) -> bool:
    """Whether the job whose lease is ``lease`` is gone."""
    try:
        owner = json.loads(_read(job.join(LEASE)) or b"{}")
    except ValueError:
        owner = {}
    lock = owner.get("lock") if isinstance(owner, dict) else None
    if isinstance(lock, str) and owner.get("host") == socket.gethostname() and os.path.exists(lock):
        return lifecycle.unlocked(lock)
    seen = lease.mtime
    if seen is None:
        return False
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return (now - seen).total_seconds() > LEASE_SECONDS


def _server_now(out: Location) -> datetime:
    """The server's clock (the time it gives an object written now): leases are compared
    with it, never with this machine's clock."""
    where = out.join(STAGING, _job_id())
    probe = where.join("_clock")
    _write(probe, b"")
    try:
        seen = probe.info().mtime
    finally:
        _remove_prefix(out, where)
    if seen is None:
        return datetime.now(UTC)
    return seen if seen.tzinfo is not None else seen.replace(tzinfo=UTC)


def _each(do: Callable[[str], object], items: list[str]) -> None:
    """``do`` to every item: requests that wait on the network, so as many at once as
    Arrow's own I/O pool runs, whatever the job's CPU threads."""
    import pyarrow as pa

    with executor(max(1, pa.io_thread_count()), "shuffle-kit-publish") as pool:
        for _ in pool.map(do, items):
            pass
