"""A store on disk: one append-only log of checksummed batches (see ``logformat``).

Why a log and not partd's file per key: one positioned write per ``append`` call is
fast for many small values, no file name is ever derived from a key (so no key can
escape the directory or collide with another), and checksums let a reader tell a
torn write (ignored) from corruption (raised).

Every handle keeps its own index (``logindex``: where each key's values lie), extended
by scanning the batches other processes appended since it last looked. The log is the
only state that matters, so any process can open the store by its path.
"""

from __future__ import annotations

import atexit
import logging
import mmap
import os
import tempfile
import weakref
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import locket
import numpy as np

from .. import lifecycle
from ..errors import ArgumentTypeError, CorruptionError, JobError, PathError, not_a_directory
from .base import Record, Store, Usage, size_groups
from .keys import Key, decode_key, encode_key
from .logformat import (
    APPEND,
    BATCH_HEADER,
    DELETE,
    FILE_HEADER,
    FILE_MAGIC,
    ISET,
    BatchPlan,
    Damaged,
    new_file_header,
    parse_header,
    parse_table,
)
from .logindex import LogIndex, Selection

logger = logging.getLogger(__name__)

LOG_NAME = "data.sklog"
LOCK_NAME = ".lock"
ORPHAN_NAME = ".orphaned"  # the creator is gone; the last handle to close removes the store
_OWN_FILES = (LOG_NAME, LOCK_NAME, lifecycle.USERS_NAME, ORPHAN_NAME)
# a temporary store is a directory of shuffle_kit.lifecycle (owned by its creator, used by
# every open handle) named shuffle_kit-*.store; one younger than this is never swept, as
# its creator may have pickled it to a process that has yet to open it
TEMPORARY_PREFIX, TEMPORARY_SUFFIX = "shuffle_kit-", ".store"
STALE_SECONDS = lifecycle.GRACE

_SCAN_READ = 1 << 16  # bytes read per batch header: usually covers the table too
_SMALL_BODY = 1 << 16  # batch bodies this small are always read whole
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024

_OVERLAP_BYTES = 1 << 18  # bodies this large are checksummed while being written
_PARALLEL_VERIFY = 1 << 21  # reads this large are checked on two threads
_VERIFY_PIECE = 1 << 20  # in pieces of about this size

_temporary_handles: weakref.WeakSet[File] = weakref.WeakSet()
_executor: tuple[int, ThreadPoolExecutor] | None = None


def _checksummer() -> ThreadPoolExecutor:
    """One worker thread per process (a forked child gets its own)."""
    global _executor
    if _executor is None or _executor[0] != os.getpid():
        _executor = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="shuffle_kit-checksum"))
    return _executor[1]


def _make_directory(path: str) -> None:
    """Make the directory of a ``File`` store (and its parents); a path, or a parent of it,
    that is something else than a directory is a :class:`NotADirectory` naming it."""
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise not_a_directory(path, f"the File store path {path!r}") from None
    except OSError as e:
        raise PathError(f"cannot make the File store directory {path!r}: {e.strerror or e}", path, e.errno) from None


class File(Store):
    """Appendable key -> bytes store in a directory, safe across processes.

    ``File()`` makes a temporary store (removed at interpreter exit, or when its
    creator drops it, but never while a handle in another process still has it open).
    ``fsync=True`` makes every write durable before it returns.

    >>> import tempfile, os
    >>> parent = tempfile.mkdtemp(); path = os.path.join(parent, 'store')
    >>> with File(path) as s:
    ...     s.append({'x': b'hello '}); s.append({'x': b'world'})
    ...     File(path).get('x')      # any process can reopen it by path
    b'hello world'
    >>> os.path.exists(path), os.rmdir(parent)   # the with block dropped and removed it
    (False, None)
    """

    def __init__(self, path: str | os.PathLike | None = None, dir: str | None = None, *, fsync: bool = False):
        if path is None:
            sweep_temporary_stores(dir)
            path = lifecycle.make(TEMPORARY_PREFIX, dir, TEMPORARY_SUFFIX)
            self._temporary = True
        else:
            if not isinstance(path, (str, os.PathLike)):
                raise ArgumentTypeError(f"File: path must be a str or os.PathLike, not {type(path).__name__}")
            path = os.fspath(path)
            _make_directory(path)
            self._temporary = False
        self.path = os.path.abspath(path)
        self._fsync = fsync
        self._creator_pid: int | None = os.getpid()
        self._open()

    # -- handles and lifetime -----------------------------------------------------------
    def _open(self) -> None:
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"File store {self.path!r} does not exist (was it removed?)")
        self._log_path = os.path.join(self.path, LOG_NAME)
        if not os.path.exists(self._log_path):
            _refuse_partd_directory(self.path)
        super().__init__(locket.lock_file(os.path.join(self.path, LOCK_NAME)))
        self._fd: int | None = None
        self._users_fd: int | None = None
        self._reset_index(None)
        with self.lock:
            self._attach(create=True)
            self._refresh(repair=True)
        if self._temporary:
            _temporary_handles.add(self)

    @property
    def _is_creator(self) -> bool:
        return self._creator_pid == os.getpid()

    def _attach(self, create: bool) -> None:
        """Open the log, and announce this handle as a user of the store."""
        # only a new handle creates files: a log removed behind our back is an error,
        # not a new empty store
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        users = lifecycle.use(self.path, create)
        try:
            self._fd = os.open(self._log_path, flags, 0o644)
        except BaseException:
            os.close(users)
            raise
        self._users_fd = users

    def _log_fd(self) -> int:
        if self._fd is None:  # closed earlier: reopen
            self._attach(create=False)
        return self._fd  # type: ignore[return-value]

    def close(self) -> None:
        """Close this handle's files; the data stays on disk."""
        for name in ("_fd", "_users_fd"):
            fd = getattr(self, name, None)
            if fd is not None:
                setattr(self, name, None)
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _remove_if_unused(self) -> bool:
        """Close, then remove the store unless a handle elsewhere still has it open."""
        self.close()
        with lifecycle.unused(self.path) as free:
            if not free:
                # someone still uses it: leave it to the last handle to close
                open(os.path.join(self.path, ORPHAN_NAME), "w").close()
                return False
            if self._temporary:
                lifecycle.remove(self.path)
            else:  # a directory the user named: remove only our own files
                for name in _OWN_FILES:
                    try:
                        os.unlink(os.path.join(self.path, name))
                    except FileNotFoundError:
                        pass
                try:
                    os.rmdir(self.path)
                except OSError:
                    pass
            return True

    def _cleanup_at_exit(self) -> None:
        if not self._temporary:
            return
        if self._is_creator or os.path.exists(os.path.join(self.path, ORPHAN_NAME)):
            self._remove_if_unused()
        else:
            self.close()

    def __del__(self) -> None:
        try:
            # a store that was pickled may be opened from its copy later (dask ships stores
            # to workers): only an explicit exit, or this process's exit, removes it then
            if getattr(self, "_temporary", False) and self._is_creator and not getattr(self, "_pickled", False):
                self._remove_if_unused()
            else:
                self.close()
        except Exception:  # interpreter shutdown: modules may be half gone
            pass

    def __exit__(self, *exc: object) -> None:
        self.drop()
        self._remove_if_unused()

    def __getstate__(self) -> dict[str, Any]:
        self._pickled = True
        if self._temporary and self._is_creator:
            _shipped.add(self.path)  # removed at this process's exit if nobody uses it then
        return {"path": self.path, "fsync": self._fsync, "temporary": self._temporary}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._fsync = state["fsync"]
        self._temporary = state["temporary"]
        self._creator_pid = None  # a copy never removes the data when collected
        self._open()

    def __repr__(self) -> str:
        return f"File({self.path!r})"


    # -- reading the log ----------------------------------------------------------------
    def _reset_index(self, epoch: bytes | None) -> None:
        self._epoch = epoch
        self._end = FILE_HEADER.size
        self._index = LogIndex()

    def _refresh(self, repair: bool) -> None:
        """Index the batches appended since the last look; with ``repair`` (lock held),
        initialise an empty log and cut away a torn tail left by a crashed writer."""
        fd = self._log_fd()
        head = os.pread(fd, FILE_HEADER.size, 0)
        if len(head) < FILE_HEADER.size:
            # new, or a crash cut the very first write: there is no data either way
            if not repair:
                self._reset_index(None)
                return
            os.ftruncate(fd, 0)
            os.pwrite(fd, new_file_header(), 0)
            head = os.pread(fd, FILE_HEADER.size, 0)
        magic, epoch = FILE_HEADER.unpack(head)
        if magic != FILE_MAGIC:
            raise CorruptionError(f"{self._log_path} is not a shuffle_kit store log (or another version)")
        if epoch != self._epoch:  # first look, or another handle dropped the store
            self._reset_index(epoch)
        size = os.fstat(fd).st_size
        if size < self._end:
            raise CorruptionError(
                f"{self._log_path} is shorter ({size} bytes) than the {self._end} bytes already indexed"
            )
        pos = self._end
        while pos < size:
            length = self._scan_batch(fd, pos, size)
            if length is None:
                break
            pos += length
        self._end = pos
        if pos < size and repair:
            logger.warning("%s: removing a torn write of %d bytes at offset %d", self._log_path, size - pos, pos)
            os.ftruncate(fd, pos)

    def _scan_batch(self, fd: int, pos: int, size: int) -> int | None:
        """Index the batch at ``pos``; return its length, or None if it is a torn tail."""
        if size - pos < BATCH_HEADER.size:
            return None
        chunk = os.pread(fd, min(size - pos, _SCAN_READ), pos)
        try:
            header = parse_header(chunk)
        except Damaged:
            if not any(chunk[: BATCH_HEADER.size]):
                return None  # zero-filled tail: a crash after the file grew, before data landed
            raise CorruptionError(f"{self._log_path}: damaged batch header at byte {pos}") from None
        if pos + header.size > size:
            return None
        table_end = BATCH_HEADER.size + header.table_len
        table = chunk[BATCH_HEADER.size : table_end] if len(chunk) >= table_end else os.pread(
            fd, header.table_len, pos + BATCH_HEADER.size
        )
        try:
            batch = parse_table(header, table)
        except Damaged as e:
            raise CorruptionError(f"{self._log_path}: damaged batch table at byte {pos}: {e}") from None
        self._index.apply(batch, pos + table_end)
        return header.size

    def _records(self, kbs: Sequence[bytes]) -> list[list[Record]]:
        # owned buffers (pread): the views may outlive the lock
        return self._gather(kbs, mapped=False).records()

    def _joined(self, kbs: Sequence[bytes]) -> list[bytes]:
        # while this thread holds the lock no process can truncate the log, so reading
        # through a map is safe and saves a copy; nothing of the map outlives the join
        return self._gather(kbs, mapped=self.lock.held()).joined()

    def iter_records(self, key: Key, max_bytes: int = 64 * 2**20, lock: bool = True) -> Iterator[list[Record]]:
        """The records of ``key`` in lists of about ``max_bytes``, each read (and checked)
        when reached: memory holds one list, however large the key.

        The records are those the key had when the first list was read. The lock is held
        for each read, not between them; a ``drop`` meanwhile raises ``CorruptionError``.
        """
        kb = encode_key(key)
        with self._locked(lock):
            self._refresh(repair=False)
            index = self._index
            sel = index.select([kb])
        for start, stop in size_groups(sel.length.tolist(), max_bytes):
            part = Selection([stop - start], sel.batch[start:stop], sel.offset[start:stop], sel.length[start:stop])
            with self._locked(lock):
                self._refresh(repair=False)
                if self._index is not index:  # dropped and written again by someone
                    raise CorruptionError(f"{self._log_path} was dropped while key {key!r:.80} was being read")
                records = self._gather([kb], mapped=False, sel=part).records()[0]
            yield records

    def _gather(self, kbs: Sequence[bytes], mapped: bool, sel: Selection | None = None) -> _Views | _Slices:
        """The checked records of every live value of ``kbs``, key by key (of the entries
        ``sel``, if given: a part of one key's)."""
        if sel is None:
            self._refresh(repair=False)
            sel = self._index.select(kbs)
        index = self._index
        if not len(sel.batch):
            return _Views(sel.counts, [])
        # the batches read, and the place of each value's batch among them
        n_batches = index.body_start.size
        if len(sel.batch) >= n_batches:  # many values: counting is cheaper than sorting
            present = np.bincount(sel.batch, minlength=n_batches) > 0
            numbers = np.flatnonzero(present)
            where = (np.cumsum(present) - 1)[sel.batch]
        else:
            numbers, where = np.unique(sel.batch, return_inverse=True)
        wanted = np.bincount(where, weights=sel.length, minlength=len(numbers))
        starts = index.body_start.values[numbers]
        lengths = index.body_len.values[numbers]
        whole = (4 * wanted >= lengths) | (lengths <= _SMALL_BODY)  # read and check these bodies whole
        checks: list[tuple[memoryview, int, int]] = []  # (bytes, batch, index of its first block)
        if mapped:
            # map only the span the read touches; a dense read prefaults it in one go
            base = int(starts[0]) // mmap.ALLOCATIONGRANULARITY * mmap.ALLOCATIONGRANULARITY
            end = int(starts[-1] + lengths[-1])
            flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if whole.all() else 0)
            data = memoryview(mmap.mmap(self._log_fd(), end - base, flags=flags, prot=mmap.PROT_READ, offset=base))
        elif whole.all() and (span := int(starts[-1] + lengths[-1] - starts[0])) <= 2 * int(lengths.sum()):
            base, data = int(starts[0]), self._pread(int(starts[0]), span)
        else:  # scattered: one read per body or per value
            base, data = 0, None
        for number, start, length in zip(numbers[whole].tolist(), starts[whole].tolist(), lengths[whole].tolist()):
            body = self._pread(start, length) if data is None else data[start - base : start - base + length]
            checks.append((body, number, 0))
        if data is not None and whole.all():  # the common case: one buffer holds every body
            self._verify(checks, sel, kbs)
            return _Slices(sel.counts, data, (starts - base)[where] + sel.offset, sel.length)
        bodies = {number: body for body, number, _ in checks}
        views = []
        for number, offset, length in zip(sel.batch.tolist(), sel.offset.tolist(), sel.length.tolist()):
            whole_body = bodies.get(number)
            if whole_body is None:  # a few values of a large batch: read only their checksum blocks
                start, body_len = index.body(number)
                shift = index.block_shift[number]
                lo = offset >> shift << shift
                hi = min(-(-(offset + length) >> shift) << shift, body_len)
                if data is None:
                    piece = self._pread(start + lo, hi - lo)
                else:
                    piece = data[start + lo - base : start + hi - base]
                checks.append((piece, number, lo >> shift))
                views.append(piece[offset - lo : offset - lo + length])
            else:
                views.append(whole_body[offset : offset + length])
        self._verify(checks, sel, kbs)
        return _Views(sel.counts, views)

    def _verify(self, checks: list[tuple[memoryview, int, int]], sel: Selection, kbs: Sequence[bytes]) -> None:
        """Compare every block read with its stored checksum; large reads use both cores
        (zlib releases the GIL on large blocks)."""
        pieces = []
        for data, number, first in checks:
            shift = self._index.block_shift[number]
            step = max(_VERIFY_PIECE >> shift, 1) << shift
            for lo in range(0, len(data), step):
                pieces.append((data[lo : lo + step], number, first + (lo >> shift)))
        total = sum(len(p[0]) for p in pieces)
        if total >= _PARALLEL_VERIFY and len(pieces) > 1:
            half = len(pieces) // 2
            other = _checksummer().submit(self._first_bad, pieces[half:])
            bad = self._first_bad(pieces[:half])
            bad = bad or other.result()
        else:
            bad = self._first_bad(pieces)
        if bad is not None:
            number, lo, hi = bad
            key = decode_key(sel.key_at(kbs, number, lo, hi))
            raise CorruptionError(
                f"data for key {key!r:.80} in {self._log_path} fails its checksum "
                f"(batch {number}, bytes {lo}-{hi} of its body)"
            )

    def _first_bad(self, pieces: list[tuple[memoryview, int, int]]) -> tuple[int, int, int] | None:
        """The first block (batch, start, end within its body) whose checksum is wrong."""
        crc32 = zlib.crc32
        for data, number, first in pieces:
            shift = self._index.block_shift[number]
            block = 1 << shift
            crcs = self._index.block_crcs[number]
            for j in range(-(-len(data) >> shift)):
                if crc32(data[j * block : (j + 1) * block]) != crcs[first + j]:
                    return number, (first + j) * block, (first + j + 1) * block
        return None

    def _pread(self, start: int, length: int) -> memoryview:
        data = os.pread(self._log_fd(), length, start)
        if len(data) < length:
            raise CorruptionError(
                f"{self._log_path} ended at byte {start + len(data)}, inside indexed data; "
                "was it dropped by another process during an unlocked read?"
            )
        return memoryview(data)

    # -- writing ------------------------------------------------------------------------
    def _write(self, kind: int, keys: Sequence[bytes], values: Sequence, batch_id: bytes | None = None) -> None:
        self._refresh(repair=True)
        if batch_id is not None and batch_id in self._index.batch_ids:
            return
        plan = BatchPlan(kind, keys, values, batch_id)
        fd = self._log_fd()
        start = self._end
        try:
            # the body goes first and the header last, so a crash in between leaves a
            # hole where the header belongs: a torn tail. Large bodies are checksummed
            # on another thread while the kernel copies them (both release the GIL).
            if plan.body_len >= _OVERLAP_BYTES:
                pending = _checksummer().submit(plan.checksums)
                try:
                    _pwrite_all(fd, plan.body, start + plan.prefix_len)
                finally:
                    crcs = pending.result()
            else:
                crcs = plan.checksums()
                _pwrite_all(fd, plan.body, start + plan.prefix_len)
            os.pwrite(fd, plan.prefix(crcs), start)
            if self._fsync:
                os.fsync(fd)
        except BaseException:
            # leave nothing of a failed call behind (disk full, interrupt, ...)
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            raise
        self._index.apply(plan.parsed(crcs), start + plan.prefix_len)
        self._end = start + plan.prefix_len + plan.body_len

    def _append(self, kbs: Sequence[bytes], values: Sequence[Record], batch_id: bytes | None) -> None:
        self._write(APPEND, kbs, values, batch_id)

    def _iset(self, kb: bytes, value: Record) -> None:
        self._refresh(repair=True)
        if not self._index.was_iset(kb):
            self._write(ISET, [kb], [value])

    def _delete(self, kbs: Sequence[bytes]) -> None:
        self._refresh(repair=True)
        present = [kb for kb in dict.fromkeys(kbs) if self._index.known(kb)]
        if present:
            self._write(DELETE, present, [b""] * len(present))

    def _drop(self) -> None:
        fd = self._log_fd()
        header = new_file_header()
        os.ftruncate(fd, 0)
        os.pwrite(fd, header, 0)
        if self._fsync:
            os.fsync(fd)
        self._reset_index(header[8:])

    def nbytes(self) -> int:
        """Bytes the log occupies on disk."""
        return os.fstat(self._log_fd()).st_size

    def usage(self) -> Usage:
        return Usage(0, self.nbytes())


_GATHER_MAX = 1 << 16  # values up to this size are joined by one numpy gather per key


@dataclass
class _Views:
    """Checked records, key by key, as separate views."""

    counts: list[int]
    views: list[memoryview]

    def records(self) -> list[list[Record]]:
        return _split(self.counts, self.views)

    def joined(self) -> list[bytes]:
        return [b"".join(v) for v in _split(self.counts, self.views)]


@dataclass
class _Slices:
    """Checked records, key by key, as slices of one buffer: ``data`` at ``first``, of
    ``length`` bytes."""

    counts: list[int]
    data: memoryview
    first: np.ndarray
    length: np.ndarray

    def records(self) -> list[list[Record]]:
        data = self.data
        ends = (self.first + self.length).tolist()
        return _split(self.counts, [data[a:b] for a, b in zip(self.first.tolist(), ends)])

    def joined(self) -> list[bytes]:
        # A key whose values all have one small size is gathered by numpy from a view
        # of the buffer as overlapping size-byte items, one call per key instead of a
        # slice object per value; other keys are joined from slices.
        data, first, length = self.data, self.first, self.length
        counts = np.asarray(self.counts, np.int64)
        ends = np.cumsum(counts)
        starts = ends - counts
        size = np.zeros(len(counts), np.int64)  # the size of each key's values, if one
        some = counts > 0
        if some.any():  # segments of the keys that have values tile ``length`` exactly
            size[some] = np.maximum.reduceat(length, starts[some])
            size[some] *= np.minimum.reduceat(length, starts[some]) == size[some]
        uniform = (counts > 1) & (size > 0) & (size <= _GATHER_MAX)
        a: list[int] = []
        b: list[int] = []
        if not uniform.all():
            a, b = first.tolist(), (first + length).tolist()
        items: dict[int, np.ndarray] = {}
        out = []
        for lo, hi, same, n in zip(starts.tolist(), ends.tolist(), uniform.tolist(), size.tolist()):
            if same:
                view = items.get(n)
                if view is None:
                    view = items[n] = np.ndarray((len(data) - n + 1,), ("V", n), data, strides=(1,))
                out.append(view[first[lo:hi]].tobytes())
            else:
                out.append(b"".join([data[i:j] for i, j in zip(a[lo:hi], b[lo:hi])]))
        return out


def _split(counts: list[int], views: list[Any]) -> list[list[Record]]:
    out, pos = [], 0
    for n in counts:
        out.append(views[pos : pos + n])
        pos += n
    return out


def _pwrite_all(fd: int, buffers: list, offset: int) -> None:
    """Write every buffer at ``offset`` with as few system calls as the OS allows."""
    views = [memoryview(b) for b in buffers if len(b)]
    i = 0
    while i < len(views):
        written = os.pwritev(fd, views[i : i + _IOV_MAX], offset)
        if written <= 0:
            raise OSError(f"pwritev wrote {written} bytes")
        offset += written
        while written:
            n = len(views[i])
            if written >= n:
                written -= n
                i += 1
            else:
                views[i] = views[i][written:]
                written = 0


def _refuse_partd_directory(path: str) -> None:
    """Refuse a directory that partd's File wrote: it keeps one file per key (and the same
    ``.lock``) and no log, so opening it here would show every key empty."""
    try:
        names = [n for n in os.listdir(path) if n not in _OWN_FILES]
    except OSError:
        return
    if names and os.path.exists(os.path.join(path, LOCK_NAME)):
        shown = ", ".join(repr(n) for n in sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
        raise JobError(
            f"{path} is a partd store (one file per key: {shown}), not a shuffle_kit File (one log, "
            f"{LOG_NAME}): read it with partd.File, or open another directory"
        )


_shipped: set[str] = set()  # temporary stores this process created and pickled


def sweep_temporary_stores(dir: str | None = None) -> list[str]:
    """Remove the temporary stores in ``dir`` (default: the temporary directory) that a
    dead process left: its creator is gone (however it died), no handle has it open, and
    it is older than :data:`STALE_SECONDS`. Return them."""
    return lifecycle.sweep(TEMPORARY_PREFIX, dir or tempfile.gettempdir(), TEMPORARY_SUFFIX, min_age=STALE_SECONDS)


def remove_temporary_stores() -> None:
    """Remove the temporary stores this process created (registered to run at exit)."""
    for handle in list(_temporary_handles):
        try:
            handle._cleanup_at_exit()
        except Exception:
            logger.debug("could not clean up %r", handle, exc_info=True)
    for path in list(_shipped):  # pickled, their original objects gone
        if not lifecycle.remove_if_unused(path):
            lifecycle.release(path)  # left to the last handle to close, or to a sweep


atexit.register(remove_temporary_stores)
