"""Arrow tables held in memory as they are, spilling whole appends, oldest first.

A shuffle appends each chunk's pieces (zero-copy slices of one sorted copy of the chunk)
in one call. Encoding and copying every piece into a byte store costs time on the
shuffle's critical path; holding the tables costs nothing. Beyond the memory limit the
oldest appends are encoded, whole, into an ``ArrowIPC`` store, so their memory is freed
at once (a slice keeps its whole chunk alive) and each key still reads back in append
order: its spilled pieces, then its pieces in memory.

A shuffle appends a chunk as one sorted table plus the rows of each integer key
(:meth:`TableBuffer.append_sorted`), so nothing is paid per piece when appending, and
``get`` of many such keys gathers their rows from every held table with one take and
converts them to pandas at once (:func:`~shuffle_kit.codecs.frames.table_to_frames`).
"""

from __future__ import annotations

import json
import numbers
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from ..stores import Store
from ..stores.base import get_nested
from ..stores.keys import Key, encode_key
from .arrow_ipc import ArrowIPC, _concat_tables
from .frames import PIECE_KEY, frame_to_table, table_to_frames, tables_to_frame


@dataclass
class _Sorted:
    """One ``append_sorted``: key ``k``'s rows are ``table[starts[k]:starts[k] + counts[k]]``."""

    table: pa.Table
    starts: np.ndarray
    counts: np.ndarray  # a deleted key's count becomes 0
    index_starts: np.ndarray | None

    def piece(self, k: int) -> pa.Table | None:
        if not 0 <= k < len(self.counts) or not self.counts[k]:
            return None
        rows = int(self.counts[k])
        piece = self.table.slice(int(self.starts[k]), rows)
        if self.index_starts is None:
            return piece
        start = int(self.index_starts[k])
        meta = dict(piece.schema.metadata or {})
        meta[PIECE_KEY] = json.dumps({"rows": rows, "start": start, "stop": start + rows, "step": 1}).encode()
        return piece.replace_schema_metadata(meta)


_Held = Union[dict[bytes, tuple[Key, pa.Table]], _Sorted]


def _int_key(key: Any) -> int | None:
    return int(key) if isinstance(key, numbers.Integral) and not isinstance(key, bool) else None


def _dictionaries(table: pa.Table) -> list:
    return [c.chunk(0).dictionary for c in table.columns if pa.types.is_dictionary(c.type) and c.num_chunks]


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

    def __init__(
        self, store: Store | str | None = None, memory_limit: float = 1e9, *, partd: Store | None = None,
        empty: bool = False,
    ):
        """``empty``: the store holds nothing yet (a new temporary one), so reads need not
        look in it until something spills."""
        super().__init__(store, partd=partd)
        self.memory_limit = memory_limit
        self.memory_usage = 0
        # each append: ({encoded key: (key, table)} or a sorted table, bytes)
        self._appends: deque[tuple[_Held, int]] = deque()
        self._batch_ids: set[bytes] = set()
        self._memory_lock = threading.RLock()
        self._store_empty = empty

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
            self._hold(pieces, size, lock)

    def append_sorted(self, table: pa.Table, counts: np.ndarray, *, index_starts: np.ndarray | None = None) -> None:
        """Append ``table``'s rows to the integer keys ``0..len(counts)-1`` as one record:
        key ``k`` gets the next ``counts[k]`` rows (the table is sorted by key).

        ``index_starts[k]``: where key ``k``'s RangeIndex continues, for a table whose
        index was dropped (each piece then reads back numbered from there).

        >>> import numpy as np, pyarrow as pa
        >>> from shuffle_kit import Dict
        >>> tb = TableBuffer(Dict())
        >>> tb.append_sorted(pa.table({'a': [5, 6, 7]}), np.array([1, 0, 2]))
        >>> tb.get(2)['a'].tolist(), len(tb.get(1))
        ([6, 7], 0)
        """
        counts = np.asarray(counts, dtype=np.int64)
        if int(counts.sum()) != table.num_rows:
            raise ValueError(f"counts add up to {int(counts.sum())} rows, the table has {table.num_rows}")
        starts = np.cumsum(counts) - counts
        index = None if index_starts is None else np.asarray(index_starts, dtype=np.int64).copy()
        with self._memory_lock:
            self._hold(_Sorted(table, starts, counts.copy(), index), table.nbytes, True)

    def _hold(self, held: _Held, size: int, lock: bool) -> None:
        self._appends.append((held, size))
        self.memory_usage += size
        while self.memory_usage > self.memory_limit and self._appends:
            self._spill_oldest(lock)

    def _spill_oldest(self, lock: bool = True) -> None:
        held, size = self._appends.popleft()
        self.memory_usage -= size
        self._store_empty = False
        if isinstance(held, _Sorted):
            pieces = {k: held.piece(k) for k in np.flatnonzero(held.counts).tolist()}
        else:
            pieces = dict(held.values())
        if pieces:
            super().append(pieces, lock=lock)

    def flush(self) -> None:
        """Encode everything held in memory into the store."""
        with self._memory_lock:
            while self._appends:
                self._spill_oldest()

    def iset(self, key: Key, value: Any, lock: bool = True, **kwargs: Any) -> None:
        self.flush()  # the store then decides set-once, with every earlier piece in it
        self._store_empty = False
        super().iset(key, value, lock=lock)

    # -- reading --------------------------------------------------------------------------
    def _held(self, key: Key, kb: bytes) -> list[pa.Table]:
        """The tables held in memory for ``key``, in append order (under the lock)."""
        k = _int_key(key)
        out = []
        for held, _ in self._appends:
            if isinstance(held, _Sorted):
                piece = held.piece(k) if k is not None else None
                if piece is not None:
                    out.append(piece)
            elif kb in held:
                out.append(held[kb][1])
        return out

    def get_pieces(self, keys: Sequence[Key], lock: bool = True) -> list[list[Any]]:
        """The tables appended to each key, one per append: spilled ones first."""
        with self._memory_lock:
            spilled = super().get_pieces(keys, lock=lock)
            return [s + self._held(k, encode_key(k)) for k, s in zip(keys, spilled)]

    def iter_pieces(self, key: Key, max_bytes: int = 64 * 2**20, lock: bool = True) -> Iterator[pa.Table]:
        """The tables appended to ``key`` in append order, spilled ones read about
        ``max_bytes`` at a time, then those held in memory."""
        kb = encode_key(key)
        with self._memory_lock:  # what is spilled and what is held, at one moment
            spilled = super().iter_pieces(key, max_bytes, lock=lock)
            first = next(spilled, None)
            held = self._held(key, kb)
        if first is not None:
            yield first
            yield from spilled
        yield from held

    def get(self, keys: Any, lock: bool = True, as_arrow: bool = False, **kwargs: Any) -> Any:
        """The DataFrame of a key (a ``pyarrow.Table`` with ``as_arrow=True``); a list of
        keys gives a list. Many integer keys held as sorted tables are converted at once."""

        def fetch(flat: list) -> list:
            if not as_arrow and len(flat) > 1:
                frames = self._sorted_frames(flat)
                if frames is not None:
                    return frames
            return [
                _concat_tables(tables) if as_arrow else tables_to_frame(tables)
                for tables in self.get_pieces(flat, lock=lock)
            ]

        return get_nested(keys, fetch)

    def _sorted_frames(self, keys: list) -> list[pd.DataFrame] | None:
        """The frames of ``keys`` from one gather and one conversion, or None where that
        would not equal converting each key alone (then the caller does that)."""
        ks = [_int_key(k) for k in keys]
        if None in ks:
            return None
        with self._memory_lock:
            if not self._store_empty:  # pieces may be in the store: read key by key
                return None
            held = [h for h, _ in self._appends]
        if not held or not all(isinstance(h, _Sorted) for h in held):
            return None
        n = len(held[0].counts)
        first = held[0].table
        dictionaries = _dictionaries(first)
        for h in held:
            if len(h.counts) != n or (h.index_starts is None) != (held[0].index_starts is None):
                return None
            if h is not held[0] and (
                not h.table.schema.equals(first.schema, check_metadata=True)
                or any(not d.equals(e) for d, e in zip(_dictionaries(h.table), dictionaries))
            ):
                return None  # a union of categories or a promotion: converted key by key
        idx = np.asarray(ks, dtype=np.int64)
        if idx.min() < 0 or idx.max() >= n:
            return None
        counts = np.stack([h.counts[idx] for h in held])  # (held, keys)
        rows = counts.sum(axis=0)
        if not rows.any():
            return None
        index_starts = None
        if held[0].index_starts is not None:
            # a key's pieces number its rows on from one another: its index is one range
            before = np.cumsum(counts, axis=0) - counts
            offset = np.stack([h.index_starts[idx] for h in held]) - before
            filled = counts > 0
            lo = np.where(filled, offset, np.iinfo(np.int64).max).min(axis=0)
            hi = np.where(filled, offset, np.iinfo(np.int64).min).max(axis=0)
            if np.any((lo != hi) & (rows > 0)):
                return None
            index_starts = np.where(rows > 0, lo, 0)
        # the rows of the keys, key by key and within a key in append order: one slice of
        # each held table, then one take
        slices, segment_starts, base = [], [], 0
        for h, c in zip(held, counts):
            s = h.starts[idx]
            lo_row, hi_row = int(s.min()), int((s + c).max())
            slices.append(h.table.slice(lo_row, hi_row - lo_row))
            segment_starts.append(s - lo_row + base)
            base += hi_row - lo_row
        lengths = counts.T.ravel()
        starts = np.stack(segment_starts).T.ravel()
        positions = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
        table = pa.concat_tables(slices).take(pa.array(positions))
        return table_to_frames(table, rows, index_starts)

    def get_records(self, keys: Sequence[Key], lock: bool = True) -> list[list[Any]]:
        self.flush()
        return super().get_records(keys, lock=lock)

    # -- removing -------------------------------------------------------------------------
    def delete(self, keys: Any, lock: bool = True, **kwargs: Any) -> None:
        super().delete(keys, lock=lock)
        kbs = {encode_key(k) for k in (keys if isinstance(keys, list) else [keys])}
        ints = {k for k in map(_int_key, keys if isinstance(keys, list) else [keys]) if k is not None}
        with self._memory_lock:
            for i, (held, size) in enumerate(self._appends):
                if isinstance(held, _Sorted):  # the table stays whole until it goes
                    held.counts[[k for k in ints if 0 <= k < len(held.counts)]] = 0
                    continue
                freed = sum(held.pop(kb)[1].nbytes for kb in kbs & held.keys())
                self._appends[i] = (held, size - freed)
                self.memory_usage -= freed

    def drop(self) -> None:
        with self._memory_lock:
            self._appends.clear()
            self._batch_ids.clear()
            self.memory_usage = 0
            super().drop()
            self._store_empty = True

    def __repr__(self) -> str:
        return f"TableBuffer({self.store!r}, memory_limit={self.memory_limit:g})"
