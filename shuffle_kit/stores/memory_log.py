"""An in-memory store that keeps each append whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Record, Store, Usage, immutable
from .logformat import APPEND, BLOCK_SHIFT, DELETE, ISET, Batch, starts_of
from .logindex import LogIndex

_NO_CRCS = np.empty(0, np.uint32)


class MemoryLog(Store):
    """Keep every append as one buffer and find values with a numpy index (``File``'s,
    in memory): no Python object per value, so many small values cost little to append
    and nothing to the garbage collector. A server's default memory store.

    Values stay in the buffer they came in. A buffer is freed with its last value; once
    removed values pin more than a quarter of the live bytes, the live values of partly
    dead buffers are copied out (``_compact``).

    >>> m = MemoryLog()
    >>> m.append({'a': b'1', 'b': b'x'}); m.append({'a': b'2'})
    >>> m.get(['a', 'b'])
    [b'12', b'x']
    """

    in_memory = True
    keeps_bodies = True

    def __init__(self) -> None:
        super().__init__()
        self._reset()

    def _reset(self) -> None:
        self._index = LogIndex()
        self._bodies: list[Any] = []  # per batch: the buffer holding its values, None once all are gone
        self._live: list[int] = []  # per batch: bytes of it still stored
        self.nbytes_live = 0  # bytes of stored values
        self.nbytes_held = 0  # bytes of the buffers kept for them

    # -- writing ------------------------------------------------------------------------
    def _append(self, kbs: Sequence[bytes], values: Sequence[Record], batch_id: bytes | None) -> None:
        lengths = np.fromiter(map(len, values), np.int64, len(values))
        self._append_bodies([(kbs, lengths, b"".join(values))], batch_id)

    def _append_bodies(self, parts: Sequence[tuple[Sequence[bytes], np.ndarray, Any]], batch_id: bytes | None) -> None:
        """Append values that lie back to back in buffers: ``(keys, lengths, buffer)`` for
        each buffer. Read-only buffers are kept as they are (the caller must not change
        them), others are copied."""
        if batch_id is not None:
            if batch_id in self._index.batch_ids:
                return
            self._index.batch_ids.add(batch_id)
        for kbs, lengths, body in parts:
            if not immutable(body):
                body = bytes(body)
            self._add(APPEND, kbs, np.asarray(lengths, np.int64), body)

    def _add(self, kind: int, kbs: Sequence[bytes], lengths: np.ndarray, body: Any) -> None:
        size = int(lengths.sum())
        self._index.apply(Batch(kind, None, kbs, starts_of(lengths), lengths, _NO_CRCS, BLOCK_SHIFT, size), 0)
        if type(body) is not np.ndarray and size:
            # reads slice it without copying, into arrays the garbage collector ignores
            body = np.frombuffer(body, np.uint8)
        self._bodies.append(body if size else None)
        self._live.append(size)
        self.nbytes_live += size
        self.nbytes_held += size

    def _iset(self, kb: bytes, value: Record) -> None:
        if self._index.was_iset(kb):
            return
        self._forget([kb])  # an iset replaces what was appended
        self._add(ISET, [kb], np.array([len(value)], np.int64), value if immutable(value) else bytes(value))

    def _delete(self, kbs: Sequence[bytes]) -> None:
        present = [kb for kb in dict.fromkeys(kbs) if self._index.known(kb)]
        if present:
            self._forget(present)
            self._add(DELETE, present, np.zeros(len(present), np.int64), None)
            self._compact()

    def _forget(self, kbs: Sequence[bytes]) -> None:
        """Account for the values of ``kbs`` going away; free buffers left empty."""
        sel = self._index.select(kbs)
        if not len(sel.batch):
            return
        gone = np.bincount(sel.batch, weights=sel.length)
        for number in np.flatnonzero(gone).tolist():
            self._live[number] -= int(gone[number])
            self.nbytes_live -= int(gone[number])
            if not self._live[number] and self._bodies[number] is not None:
                self.nbytes_held -= len(self._bodies[number])
                self._bodies[number] = None

    def _drop(self) -> None:
        self._reset()

    def usage(self) -> Usage:
        return Usage(self.nbytes_held, 0)

    def _compact(self) -> None:
        # Once dead values pin more than a quarter of the live bytes, copy the live values
        # of every partly dead buffer into one of their own, in place (the index keeps
        # its order). Memory held stays under 1.25x what is stored; a copy costs at most
        # four times the bytes removed since the last one; one buffer at a time is doubled.
        dead = self.nbytes_held - self.nbytes_live
        if not dead or 4 * dead <= self.nbytes_live:
            return
        index, bodies = self._index, self._bodies
        index.prune()  # every entry left is live
        batch, offset, length = index.entries()
        partial = np.array([b is not None and n < len(b) for b, n in zip(bodies, self._live)])
        where = np.flatnonzero(partial[batch])
        where = where[np.argsort(batch[where], kind="stable")]
        cuts = np.flatnonzero(np.diff(batch[where])) + 1
        for group in np.split(where, cuts):
            number = int(batch[group[0]])
            body = memoryview(bodies[number]).cast("B")
            kept = b"".join([body[a : a + n] for a, n in zip(offset[group].tolist(), length[group].tolist())])
            offset[group] = starts_of(length[group])
            self.nbytes_held += len(kept) - len(body)
            bodies[number] = np.frombuffer(kept, np.uint8) if kept else None

    # -- reading ------------------------------------------------------------------------
    def _records(self, kbs: Sequence[bytes]) -> list[list[Record]]:
        sel = self._index.select(kbs)
        bodies = self._bodies
        views = [
            bodies[b][o : o + n] if n else b""
            for b, o, n in zip(sel.batch.tolist(), sel.offset.tolist(), sel.length.tolist())
        ]
        out, pos = [], 0
        for count in sel.counts:
            out.append(views[pos : pos + count])
            pos += count
        return out

    def __getstate__(self) -> dict[str, Any]:
        index = self._index
        keys = [kb for kb in index.keys]
        records = self._records(keys)
        return {
            "data": [(kb, [bytes(r) for r in rs]) for kb, rs in zip(keys, records) if rs],
            "iset": [index.keys[i] for i in index.iset_seen],
            "batch_ids": index.batch_ids,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        for kb, records in state["data"]:
            self._append([kb] * len(records), records, None)
        self._index.iset_seen = {self._index.key_ids[kb] for kb in state["iset"]}
        self._index.batch_ids = set(state["batch_ids"])

    def __repr__(self) -> str:
        return f"MemoryLog(<{self.nbytes_live} bytes>)"

