"""An in-memory store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Record, Store, Usage, immutable


def _owned(value: Record) -> Record:
    """``value`` itself if it cannot change, else a copy: the caller may reuse a writable
    buffer after ``append`` returns."""
    return value if immutable(value) else bytes(value)


def _viewed(record: Record) -> Any:
    """The object whose memory ``record`` views, if it is a view."""
    if type(record) is memoryview:
        return record.obj
    if type(record) is np.ndarray:
        return record.base
    return None


def _partial_views(data: dict[bytes, list[Record]]) -> dict[int, list[tuple[list[Record], int]]]:
    """Where the views that cover only part of their buffer are, by buffer."""
    sizes: dict[int, int] = {}
    places: dict[int, list[tuple[list[Record], int]]] = {}
    for records in data.values():
        for i, r in enumerate(records):
            viewed = _viewed(r)
            if viewed is not None:
                owner = id(viewed)
                size = sizes.get(owner)
                if size is None:
                    size = sizes[owner] = memoryview(viewed).nbytes
                if len(r) < size:  # records are flat bytes
                    places.setdefault(owner, []).append((records, i))
    return places


class Dict(Store):
    """Keep every record in a Python dict; fast, and gone with the process.

    Writable buffers (bytearray, numpy arrays) are copied at ``append``; read-only ones
    (bytes, Arrow buffers, read-only numpy arrays) are kept as they are, so their owner
    must not change them afterwards through a writable alias.

    >>> d = Dict()
    >>> d.append({'a': b'1'}); d.append({'a': b'2'})
    >>> d.get('a')
    b'12'
    """

    in_memory = True

    def __init__(self) -> None:
        super().__init__()
        self._data: dict[bytes, list[Record]] = {}
        self._iset_seen: set[bytes] = set()
        self._batch_ids: set[bytes] = set()

    def _append(self, kbs: Sequence[bytes], values: Sequence[Record], batch_id: bytes | None) -> None:
        if batch_id is not None:
            if batch_id in self._batch_ids:
                return
            self._batch_ids.add(batch_id)
        if not all(map(immutable, values)):
            values = list(map(_owned, values))
        data = self._data
        get = data.get
        for kb, value in zip(kbs, values):
            records = get(kb)
            if records is None:
                data[kb] = [value]
            else:
                records.append(value)

    def _records(self, kbs: Sequence[bytes]) -> list[list[Record]]:
        data = self._data
        return [list(data.get(kb, ())) for kb in kbs]

    def _iset(self, kb: bytes, value: Record) -> None:
        if kb in self._iset_seen:
            return
        self._iset_seen.add(kb)
        self._data[kb] = [_owned(value)]

    def _delete(self, kbs: Sequence[bytes]) -> None:
        for kb in kbs:
            self._data.pop(kb, None)
            self._iset_seen.discard(kb)

    def _drop(self) -> None:
        self._data.clear()
        self._iset_seen.clear()
        self._batch_ids.clear()

    def _compact(self) -> None:
        # Records may be read-only views of a larger buffer (a server keeps values as
        # views of the message they came in); once other values of that buffer are
        # deleted, a view would keep all of it alive. Copy such views out one buffer at
        # a time, so each buffer is freed as soon as its last view is replaced.
        for places in _partial_views(self._data).values():
            for records, i in places:
                records[i] = bytes(records[i])

    def nbytes(self, kb: bytes) -> int:
        return sum(len(r) for r in self._data.get(kb, ()))

    def usage(self) -> Usage:
        return Usage(sum(len(r) for records in self._data.values() for r in records), 0)

    def __getstate__(self) -> dict[str, Any]:
        data = {kb: [bytes(r) for r in records] for kb, records in self._data.items()}
        return {"data": data, "iset_seen": self._iset_seen, "batch_ids": self._batch_ids}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__init__()
        self._data = state["data"]
        self._iset_seen = state["iset_seen"]
        self._batch_ids = state["batch_ids"]

    def __repr__(self) -> str:
        return f"Dict(<{len(self._data)} keys>)"
