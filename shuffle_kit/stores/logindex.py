"""The in-memory index of a ``File`` store's log: which bytes belong to which key.

Entries (one per value in an append or iset batch) live in numpy arrays, so indexing a
batch of a thousand values costs a few array operations, not a thousand Python objects.
Lookups group entries by key with one stable sort, redone only after the log grew.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .logformat import APPEND, DELETE, ISET, Batch


class _Column:
    """A numpy array that grows by doubling."""

    def __init__(self, dtype: type):
        self._data: np.ndarray = np.empty(64, dtype)
        self.size = 0

    def extend(self, values: np.ndarray | Sequence) -> None:
        values = np.asarray(values, self._data.dtype)
        end = self.size + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : end] = values
        self.size = end

    def set(self, i: int, value: int) -> None:
        self._data[i] = value

    def keep(self, mask: np.ndarray) -> None:
        self._data = self.values[mask]
        self.size = len(self._data)

    @property
    def values(self) -> np.ndarray:
        return self._data[: self.size]


class Selection:
    """The entries of some keys: arrays in key order, log order within a key."""

    def __init__(self, counts: list[int], batch: np.ndarray, offset: np.ndarray, length: np.ndarray):
        self.counts = counts  # entries per requested key
        self.batch = batch  # batch number of each entry
        self.offset = offset  # offset of the value within its batch body
        self.length = length

    def key_at(self, kbs: Sequence[bytes], batch: int, lo: int, hi: int) -> bytes:
        """The first of ``kbs`` with a selected value in bytes [lo, hi) of ``batch``."""
        owner = np.repeat(np.arange(len(kbs)), self.counts)
        hits = np.flatnonzero((self.batch == batch) & (self.offset < hi) & (self.offset + self.length > lo))
        return kbs[int(owner[hits[0]])]


class LogIndex:
    def __init__(self) -> None:
        self.key_ids: dict[bytes, int] = {}
        self.keys: list[bytes] = []
        self.valid_from = _Column(np.int64)  # per key: entries before this one are deleted
        self.iset_seen: set[int] = set()
        self.batch_ids: set[bytes] = set()
        # per entry
        self._key = _Column(np.int64)
        self._batch = _Column(np.int64)
        self._offset = _Column(np.int64)
        self._length = _Column(np.int64)
        # per batch
        self.body_start = _Column(np.int64)
        self.body_len = _Column(np.int64)
        self.block_shift: list[int] = []
        self.block_crcs: list[np.ndarray] = []
        self._grouped: tuple[np.ndarray, np.ndarray] | None = None
        self._recent: dict[object, tuple[list[bytes], np.ndarray]] = {}  # recent key lists and their ids

    def _ids(self, keys: Sequence[bytes]) -> np.ndarray:
        # appends repeat their keys (see keys._recent); comparing equal lists of the same
        # bytes objects costs a fraction of looking each key up
        tag = (len(keys), keys[0], keys[-1]) if keys else None
        known = self._recent.get(tag)
        if known is not None and known[0] == keys:
            return known[1]
        ids = list(map(self.key_ids.get, keys))
        if None in ids:  # keys never seen before get the next ids
            start = len(self.keys)
            for j, kb in enumerate(keys):
                if ids[j] is None:
                    i = self.key_ids.get(kb)
                    if i is None:
                        i = self.key_ids[kb] = len(self.keys)
                        self.keys.append(kb)
                    ids[j] = i
            self.valid_from.extend(np.zeros(len(self.keys) - start, np.int64))
        found = np.array(ids, np.int64)
        if len(self._recent) >= 16:
            self._recent.clear()
        self._recent[tag] = (list(keys), found)
        return found

    def apply(self, batch: Batch, body_start: int) -> None:
        """Add a batch found at ``body_start`` (the file offset of its body)."""
        if batch.batch_id is not None:
            if batch.batch_id in self.batch_ids:
                return  # a retried writer's duplicate
            self.batch_ids.add(batch.batch_id)
        number = self.body_start.size
        self.body_start.extend([body_start])
        self.body_len.extend([batch.body_len])
        self.block_shift.append(batch.block_shift)
        self.block_crcs.append(batch.block_crcs)
        ids = self._ids(batch.keys)
        if batch.kind == APPEND:
            self._add_entries(ids, number, batch.offsets, batch.lengths)
        elif batch.kind == ISET:
            for i, key_id in enumerate(ids.tolist()):
                if key_id not in self.iset_seen:
                    self.iset_seen.add(key_id)
                    self.valid_from.set(key_id, self._key.size)
                    self._add_entries([key_id], number, batch.offsets[i : i + 1], batch.lengths[i : i + 1])
        elif batch.kind == DELETE:
            for key_id in ids.tolist():
                self.valid_from.set(key_id, self._key.size)
                self.iset_seen.discard(key_id)

    def _add_entries(
        self, ids: np.ndarray | Sequence[int], number: int, offsets: np.ndarray, lengths: np.ndarray
    ) -> None:
        self._key.extend(ids)
        self._batch.extend(np.full(len(ids), number))
        self._offset.extend(offsets)
        self._length.extend(lengths)
        self._grouped = None

    def prune(self) -> None:
        """Forget the entries of deleted or replaced values; the rest keep their order."""
        keys = self._key.values
        alive = np.arange(len(keys)) >= self.valid_from.values[keys]
        if alive.all():
            return
        for column in (self._key, self._batch, self._offset, self._length):
            column.keep(alive)
        self.valid_from.values[:] = 0
        self._grouped = None

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(batch, offset, length) of every entry, as writable views."""
        return self._batch.values, self._offset.values, self._length.values

    def body(self, number: int) -> tuple[int, int]:
        """File offset and length of batch ``number``'s body."""
        return int(self.body_start.values[number]), int(self.body_len.values[number])

    def known(self, kb: bytes) -> bool:
        return kb in self.key_ids

    def was_iset(self, kb: bytes) -> bool:
        i = self.key_ids.get(kb)
        return i is not None and i in self.iset_seen

    def select(self, kbs: Sequence[bytes]) -> Selection:
        """The live entries of each key in ``kbs``."""
        if self._grouped is None:
            # entries grouped by key, log order kept within a key
            order = np.argsort(self._key.values, kind="stable")
            starts = np.searchsorted(self._key.values[order], np.arange(len(self.keys) + 1))
            self._grouped = (order, starts)
        order, starts = self._grouped
        starts_l = starts.tolist()
        valid_from = self.valid_from.values
        parts, counts = [], []
        for kb in kbs:
            i = self.key_ids.get(kb)
            if i is None or i + 1 >= len(starts_l):
                counts.append(0)
                continue
            entries = order[starts_l[i] : starts_l[i + 1]]
            if valid_from[i]:
                entries = entries[entries >= valid_from[i]]
            parts.append(entries)
            counts.append(len(entries))
        chosen = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return Selection(counts, self._batch.values[chosen], self._offset.values[chosen], self._length.values[chosen])
