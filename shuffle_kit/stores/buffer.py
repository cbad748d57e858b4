"""A store that keeps recent appends in a fast store and spills to a slow one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..byte_sizes import check_memory_limit
from ..defaults import STORE_MEMORY_LIMIT
from ..errors import JobError
from .base import Record, Store, Usage
from .keys import encode_key


class Buffer(Store):
    """Hold appends in ``fast`` until ``memory_limit`` bytes (or a size such as ``'2GB'``;
    0 spills every append), then move the largest keys to ``slow``. Reads return each key's
    records in append order (spilled first). ``available_memory`` is partd's name for
    ``memory_limit``, kept for its programs.

    >>> from shuffle_kit import Dict
    >>> b = Buffer(Dict(), Dict(), memory_limit=4)
    >>> b.append({'a': b'123'}); b.append({'a': b'45', 'b': b'6'})   # 'a' spills
    >>> b.get(['a', 'b']), b.memory_usage
    ([b'12345', b'6'], 1)
    """

    def __init__(
        self, fast: Store, slow: Store, memory_limit: float | str | None = None, *,
        available_memory: float | str | None = None,
    ):
        self.fast = fast
        self.slow = slow
        if memory_limit is not None and available_memory is not None:
            raise JobError("Buffer: give memory_limit or its partd name available_memory, not both")
        given, name = (available_memory, "available_memory") if available_memory is not None else (
            memory_limit, "memory_limit")
        self.memory_limit = check_memory_limit(STORE_MEMORY_LIMIT if given is None else given, name, minimum=0)
        super().__init__()
        self._init_state()

    @property
    def available_memory(self) -> int:
        """partd's name for :attr:`memory_limit`."""
        return self.memory_limit

    @property
    def in_memory(self) -> bool:
        return self.fast.in_memory and self.slow.in_memory

    @property
    def keeps_bodies(self) -> bool:
        return self.fast.keeps_bodies

    def _init_state(self) -> None:
        self.memory_usage = 0  # bytes held in fast
        self._removed = 0  # bytes removed from fast since it last compacted
        self._in_fast: set[bytes] = set()
        self._iset_seen: set[bytes] = set()
        self._batch_ids: set[bytes] = set()

    def _sizes(self, kbs: Sequence[bytes]) -> list[int]:
        """Bytes each key holds in fast. Computed when needed (spills are rare next to
        appends), so an append costs no per-value bookkeeping in Python."""
        with self.fast.lock:
            return [sum(map(len, records)) for records in self.fast._records(kbs)]

    def _append(self, kbs: Sequence[bytes], values: Sequence[Record], batch_id: bytes | None) -> None:
        if self._seen(batch_id):
            return
        with self.fast.lock:
            self.fast._append(kbs, values, None)
        self._added([kbs], sum(map(len, values)))

    def _append_bodies(self, parts: Sequence[tuple[Sequence[bytes], np.ndarray, Any]], batch_id: bytes | None) -> None:
        """Values lying back to back in buffers (a server's received messages), handed to
        the fast store as they are: it keeps them whole if it ``keeps_bodies``."""
        if self._seen(batch_id):
            return
        with self.fast.lock:
            self.fast._append_bodies(parts, None)
        self._added([kbs for kbs, _, _ in parts], sum(int(lengths.sum()) for _, lengths, _ in parts))

    def _seen(self, batch_id: bytes | None) -> bool:
        """Whether a batch with this id was appended already (and remember it)."""
        if batch_id is None:
            return False
        if batch_id in self._batch_ids:
            return True
        self._batch_ids.add(batch_id)
        return False

    def _added(self, keys: Sequence[Sequence[bytes]], nbytes: int) -> None:
        for kbs in keys:
            self._in_fast.update(kbs)
        self.memory_usage += nbytes
        if self.memory_usage > self.memory_limit:
            self._spill_largest()

    def _spill_largest(self) -> None:
        # free at least a tenth of the budget, so a key at the limit does not spill
        # on every append
        target = min(self.memory_usage - self.memory_limit * 0.9, self.memory_usage)
        kbs = list(self._in_fast)
        chosen, freed = [], 0
        for size, kb in sorted(zip(self._sizes(kbs), kbs), reverse=True):
            if freed >= target:
                break
            chosen.append(kb)
            freed += size
        self._flush(chosen)

    def usage(self) -> Usage:
        return Usage(int(self.memory_usage), self.slow.usage().disk)

    def flush(self, keys: Sequence[Any] | None = None) -> None:
        """Move keys (default: all) from fast to slow."""
        with self.lock:
            self._flush(list(self._in_fast) if keys is None else [encode_key(k) for k in keys])

    def _flush(self, kbs: Sequence[bytes]) -> None:
        kbs = [kb for kb in dict.fromkeys(kbs) if kb in self._in_fast]
        if not kbs:
            return
        with self.fast.lock:
            records = self.fast._records(kbs)
        # one slow record per fast record: codecs read record boundaries
        with self.slow.lock:
            self.slow._append([kb for kb, rs in zip(kbs, records) for _ in rs], [r for rs in records for r in rs], None)
        self._forget(kbs, sum(len(r) for rs in records for r in rs))

    def _forget(self, kbs: Sequence[bytes], nbytes: int) -> None:
        """Remove ``kbs`` (holding ``nbytes``) from fast."""
        with self.fast.lock:
            self.fast._delete(kbs)
        self._in_fast.difference_update(kbs)
        self.memory_usage -= nbytes
        # what stays may share buffers with what left (values received as views of one
        # message); compacting after each tenth of the budget removed bounds that waste
        self._removed += nbytes
        if self._removed >= 0.1 * self.memory_limit:
            self._compact()

    def _compact(self) -> None:
        self._removed = 0
        for store in (self.fast, self.slow):
            with store.lock:
                store._compact()

    def _records(self, kbs: Sequence[bytes]) -> list[list[Record]]:
        with self.slow.lock:
            slow = self.slow._records(kbs)
        with self.fast.lock:
            fast = self.fast._records(kbs)
        return [s + f for s, f in zip(slow, fast)]

    def _iset(self, kb: bytes, value: Record) -> None:
        if kb in self._iset_seen:
            return
        self._iset_seen.add(kb)
        self._delete_everywhere([kb])
        self._append([kb], [value], None)

    def _delete(self, kbs: Sequence[bytes]) -> None:
        self._delete_everywhere(kbs)
        for kb in kbs:
            self._iset_seen.discard(kb)

    def _delete_everywhere(self, kbs: Sequence[bytes]) -> None:
        held = [kb for kb in dict.fromkeys(kbs) if kb in self._in_fast]
        self._forget(held, sum(self._sizes(held)))
        with self.slow.lock:
            self.slow._delete(kbs)

    def _drop(self) -> None:
        self.fast.drop()
        self.slow.drop()
        self._init_state()

    def close(self) -> None:
        self.fast.close()
        self.slow.close()

    def __exit__(self, *exc: object) -> None:
        # each store's own exit: a temporary File removes its directory there
        self.fast.__exit__(*exc)
        self.slow.__exit__(*exc)

    def __repr__(self) -> str:
        return f"Buffer({self.fast!r}, {self.slow!r}, memory_limit={self.memory_limit:g})"
