"""Arrow tables held in memory as they are, spilling whole appends, oldest first.

A shuffle appends each chunk's pieces (zero-copy slices of one sorted copy of the chunk)
in one call. Encoding and copying every piece into a byte store costs time on the
shuffle's critical path; holding the tables costs nothing. Beyond the memory limit the
oldest appends are encoded, whole, into an ``ArrowIPC`` store, so their memory is freed
at once (a slice keeps its whole chunk alive) and each key still reads back in append
order: its spilled pieces, then its pieces in memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from ..stores import Store
from ..stores.base import get_nested
from ..stores.keys import Key, encode_key
from .arrow_ipc import ArrowIPC, _concat_tables
from .frames import frame_to_table, tables_to_frame


def _as_table(key: Key, value: Any) -> pa.Table:
    if isinstance(value, pd.DataFrame):
        return frame_to_table(value)
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    raise TypeError(
        f"key {key!r:.80}: TableBuffer stores DataFrames, pyarrow Tables and RecordBatches, "
        f"not {type(value).__name__}"
    )


class TableBuffer(ArrowIPC):
    """An ``ArrowIPC`` codec that keeps up to ``memory_limit`` bytes of appended tables in
    memory, unencoded, and spills the oldest appends to ``store``.

    >>> import pandas as pd
    >>> from shuffle_kit import Dict
    >>> tb = TableBuffer(Dict(), memory_limit=20)
    >>> tb.append({'x': pd.DataFrame({'a': [1, 2]})})    # 16 bytes: kept in memory
    >>> tb.append({'x': pd.DataFrame({'a': [3]})})       # over the limit: the first spills
    >>> tb.get('x')['a'].tolist(), tb.memory_usage
    ([1, 2, 3], 8)
    """

    def __init__(self, store: Store | str | None = None, memory_limit: float = 1e9, *, partd: Store | None = None):
        super().__init__(store, partd=partd)
        self.memory_limit = memory_limit
        self.memory_usage = 0
        # each append: ({encoded key: (key, table)}, bytes)
        self._appends: deque[tuple[dict[bytes, tuple[Key, pa.Table]], int]] = deque()
        self._batch_ids: set[bytes] = set()
        self._memory_lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        self.flush()  # a copy elsewhere sees everything
        return {"store": self.store, "memory_limit": self.memory_limit}

    def __setstate__(self, state: dict[str, Any]) -> None:
        TableBuffer.__init__(self, state["store"], state["memory_limit"])

    # -- writing --------------------------------------------------------------------------
    def append(
        self, data: Mapping[Key, Any], lock: bool = True, *, batch_id: bytes | None = None, **kwargs: Any
    ) -> None:
        pieces = {encode_key(k): (k, _as_table(k, v)) for k, v in data.items()}
        if not pieces:
            return
        size = sum(t.nbytes for _, t in pieces.values())
        with self._memory_lock:
            if batch_id is not None:
                if batch_id in self._batch_ids:
                    return
                self._batch_ids.add(batch_id)
            self._appends.append((pieces, size))
            self.memory_usage += size
            while self.memory_usage > self.memory_limit and self._appends:
                self._spill_oldest(lock)

    def _spill_oldest(self, lock: bool = True) -> None:
        pieces, size = self._appends.popleft()
        self.memory_usage -= size
        if pieces:
            super().append(dict(pieces.values()), lock=lock)

    def flush(self) -> None:
        """Encode everything held in memory into the store."""
        with self._memory_lock:
            while self._appends:
                self._spill_oldest()

    def iset(self, key: Key, value: Any, lock: bool = True, **kwargs: Any) -> None:
        self.flush()  # the store then decides set-once, with every earlier piece in it
        super().iset(key, value, lock=lock)

    # -- reading --------------------------------------------------------------------------
    def get_pieces(self, keys: Sequence[Key], lock: bool = True) -> list[list[Any]]:
        """The tables appended to each key, one per append: spilled ones first."""
        with self._memory_lock:
            spilled = super().get_pieces(keys, lock=lock)
            kbs = [encode_key(k) for k in keys]
            return [
                s + [pieces[kb][1] for pieces, _ in self._appends if kb in pieces]
                for kb, s in zip(kbs, spilled)
            ]

    def iter_pieces(self, key: Key, max_bytes: int = 64 * 2**20, lock: bool = True) -> Iterator[pa.Table]:
        """The tables appended to ``key`` in append order, spilled ones read about
        ``max_bytes`` at a time, then those held in memory."""
        kb = encode_key(key)
        with self._memory_lock:  # what is spilled and what is held, at one moment
            spilled = super().iter_pieces(key, max_bytes, lock=lock)
            first = next(spilled, None)
            held = [pieces[kb][1] for pieces, _ in self._appends if kb in pieces]
        if first is not None:
            yield first
            yield from spilled
        yield from held

    def get(self, keys: Any, lock: bool = True, as_arrow: bool = False, **kwargs: Any) -> Any:
        def fetch(flat: list) -> list:
            return [
                _concat_tables(tables) if as_arrow else tables_to_frame(tables)
                for tables in self.get_pieces(flat, lock=lock)
            ]

        return get_nested(keys, fetch)

    def get_records(self, keys: Sequence[Key], lock: bool = True) -> list[list[Any]]:
        self.flush()
        return super().get_records(keys, lock=lock)

    # -- removing -------------------------------------------------------------------------
    def delete(self, keys: Any, lock: bool = True, **kwargs: Any) -> None:
        super().delete(keys, lock=lock)
        kbs = {encode_key(k) for k in (keys if isinstance(keys, list) else [keys])}
        with self._memory_lock:
            for i, (pieces, size) in enumerate(self._appends):
                freed = sum(pieces.pop(kb)[1].nbytes for kb in kbs & pieces.keys())
                self._appends[i] = (pieces, size - freed)
                self.memory_usage -= freed

    def drop(self) -> None:
        with self._memory_lock:
            self._appends.clear()
            self._batch_ids.clear()
            self.memory_usage = 0
        super().drop()

    def __repr__(self) -> str:
        return f"TableBuffer({self.store!r}, memory_limit={self.memory_limit:g})"
