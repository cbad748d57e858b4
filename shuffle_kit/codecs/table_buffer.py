"""Arrow tables held in memory as they are, spilling whole appends, oldest first.

Encoding and copying every appended table into a byte store costs time on a shuffle's
critical path; holding the tables costs nothing. Beyond the memory limit the oldest
appends are encoded, whole, into an ``ArrowIPC`` store, so their memory is freed at once
(a slice keeps its whole table alive) and each key still reads back in append order: its
spilled pieces, then its pieces in memory.

``append`` takes a table per key. A shuffle appends a chunk as one sorted table plus the
rows of each integer key (:meth:`TableBuffer.append_sorted`), so nothing is paid per
piece: beyond the memory
limit such a table spills as a few records of about ``SPILL_BLOCK_BYTES`` (each holds
the rows of consecutive keys, under a key of this buffer's own), and ``get`` of many
keys gathers their rows from every sorted table, held or spilled, with one take and
converts them to pandas at once (:func:`~shuffle_kit.frames.table_to_frames`).
``flush`` (and so pickling and ``get_records``) turns spilled blocks into records per key,
as for any other append.
"""

from __future__ import annotations

import numbers
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from ..byte_sizes import check_memory_limit
from ..errors import ArgumentTypeError, ConcurrentChange
from ..frames import Piece, concat_tables, frame_to_table, table_to_frames, tables_to_frame, with_piece
from ..stores import Store
from ..stores.base import get_nested
from ..stores.keys import Key, encode_key
from .arrow_ipc import ArrowIPC

SPILL_BLOCK_BYTES = 2**16  # a spilled sorted table's records: a read of a few keys reads a few of them
_BLOCK_KEY = "shuffle_kit.sorted"  # spilled blocks: (_BLOCK_KEY, buffer id, append number, block)

# reads the tables stored under some keys, one record each
_Reader = Callable[[list[Key]], list[pa.Table]]


@dataclass
class _Sorted:
    """One ``append_sorted``: key ``k``'s rows are rows ``starts[k]:starts[k] + counts[k]``
    of a sorted table, held in memory or spilled as blocks of rows of consecutive keys."""

    table: pa.Table | None  # None once spilled
    schema: pa.Schema
    dictionaries: list
    starts: np.ndarray
    counts: np.ndarray  # a deleted key's count becomes 0
    index_starts: np.ndarray | None
    blocks: list[Key] = field(default_factory=list)  # spilled: the store key of each block
    block_rows: np.ndarray | None = None  # spilled: each block's first row, then the end

    def rows(self, lo: int, hi: int, read: _Reader) -> pa.Table:
        """Rows ``lo:hi`` of the sorted table."""
        if self.table is not None:
            return self.table.slice(lo, hi - lo)
        bounds = self.block_rows
        assert bounds is not None  # (spilled)
        first = int(np.searchsorted(bounds, lo, "right")) - 1
        last = int(np.searchsorted(bounds, hi, "left"))
        tables = read(self.blocks[first:last])
        joined = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        return joined.slice(lo - int(bounds[first]), hi - lo)

    def piece(self, k: int | None, read: _Reader) -> pa.Table | None:
        if k is None or not 0 <= k < len(self.counts) or not self.counts[k]:
            return None
        rows = int(self.counts[k])
        start = int(self.starts[k])
        piece = self.rows(start, start + rows, read)
        if self.index_starts is None:
            return piece
        return with_piece(piece, Piece.numbered(rows, int(self.index_starts[k])))


_Held = dict[bytes, tuple[Key, pa.Table]] | _Sorted


def _block_bounds(starts: np.ndarray, nrows: int, row_bytes: float) -> np.ndarray:
    """Row bounds of blocks of about ``SPILL_BLOCK_BYTES``, cut between keys.

    >>> _block_bounds(np.array([0, 2, 2, 5]), 9, SPILL_BLOCK_BYTES / 3).tolist()
    [0, 5, 9]
    """
    step = max(1, int(SPILL_BLOCK_BYTES // max(row_bytes, 1)))
    bounds = np.append(starts, nrows)
    cuts = bounds[np.searchsorted(bounds, np.arange(step, nrows, step))]
    return np.unique(np.concatenate([[0], cuts, [nrows]]))


def _int_key(key: Any) -> int | None:
    return int(key) if isinstance(key, numbers.Integral) and not isinstance(key, bool) else None


def _dictionaries(table: pa.Table) -> list:
    return [chunk.dictionary for c in table.columns if pa.types.is_dictionary(c.type) for chunk in c.chunks]


def _as_table(key: Key, value: Any) -> pa.Table:
    if isinstance(value, pd.DataFrame):
        return frame_to_table(value)
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    raise ArgumentTypeError(
        f"key {key!r:.80}: TableBuffer stores DataFrames, pyarrow Tables and RecordBatches, "
        f"not {type(value).__name__}"
    )


class TableBuffer(ArrowIPC):
    """An ``ArrowIPC`` codec that keeps up to ``memory_limit`` bytes of appended tables in
    memory, unencoded, and spills the oldest appends to ``store``. It takes sorted tables
    (``sorted_appends``); it is ``in_memory`` when its store is.

    >>> import pandas as pd
    >>> from shuffle_kit import Dict
    >>> tb = TableBuffer(Dict(), memory_limit=20)
    >>> tb.append({'x': pd.DataFrame({'a': [1, 2]})})    # 16 bytes: kept in memory
    >>> tb.append({'x': pd.DataFrame({'a': [3]})})       # over the limit: the first spills
    >>> tb.get('x')['a'].tolist(), tb.memory_usage
    ([1, 2, 3], 8)
    """

    sorted_appends = True

    def __init__(
        self, store: Store | str | None = None, memory_limit: float | str = 1e9, *, partd: Store | None = None,
        empty: bool = False,
    ):
        """``empty``: the store holds nothing yet (a new temporary one), so reads need not
        look in it until something spills."""
        super().__init__(store, partd=partd)
        # bytes or a size such as '2GB'; 0 spills every append
        self.memory_limit = check_memory_limit(memory_limit, "memory_limit", minimum=0)
        self.memory_usage = 0
        # each append: ({encoded key: (key, table)} or a sorted table, bytes)
        self._appends: deque[tuple[_Held, int]] = deque()
        self._batch_ids: set[bytes] = set()
        self._memory_lock = threading.RLock()
        self._store_empty = empty  # no record per key in the store (blocks aside)
        self._spilled_sorted: list[_Sorted] = []  # older than anything held
        self._id = uuid.uuid4().hex
        self._sorted_appends = 0

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
        sorted_table = _Sorted(table, table.schema, _dictionaries(table), starts, counts.copy(), index)
        with self._memory_lock:
            self._hold(sorted_table, table.nbytes, True)

    def _hold(self, held: _Held, size: int, lock: bool) -> None:
        self._appends.append((held, size))
        self.memory_usage += size
        while self.memory_usage > self.memory_limit and self._appends:
            self._spill_oldest(lock)

    def _spill_oldest(self, lock: bool = True, per_key: bool = False) -> None:
        held, size = self._appends.popleft()
        self.memory_usage -= size
        if isinstance(held, _Sorted) and not per_key:
            self._spill_blocks(held, lock)
            return
        # records per key come after every spilled block in the store: blocks go first
        self._unblock(lock)
        self._store_empty = False
        pieces: dict[Key, Any]
        if isinstance(held, _Sorted):
            pieces = {k: held.piece(k, self._reader(lock)) for k in np.flatnonzero(held.counts).tolist()}
        else:
            pieces = dict(held.values())
        if pieces:
            super().append(pieces, lock=lock)

    def _spill_blocks(self, held: _Sorted, lock: bool) -> None:
        table = held.table
        assert table is not None
        self._sorted_appends += 1
        bounds = _block_bounds(held.starts, table.num_rows, table.nbytes / max(1, table.num_rows))
        keys: list[Key] = [(_BLOCK_KEY, self._id, self._sorted_appends, b) for b in range(len(bounds) - 1)]
        super().append({key: table.slice(a, b - a) for key, a, b in zip(keys, bounds[:-1], bounds[1:])}, lock=lock)
        held.table, held.blocks, held.block_rows = None, keys, bounds
        self._spilled_sorted.append(held)

    def _unblock(self, lock: bool = True) -> None:
        """Rewrite the spilled blocks as records per key, in append order."""
        read = self._reader(lock)
        while self._spilled_sorted:
            held = self._spilled_sorted[0]
            pieces: dict[Key, Any] = {k: held.piece(k, read) for k in np.flatnonzero(held.counts).tolist()}
            if pieces:
                self._store_empty = False
                super().append(pieces, lock=lock)
            self.store.delete(held.blocks, lock=lock)
            self._spilled_sorted.pop(0)

    def _reader(self, lock: bool = True) -> _Reader:
        """Reads blocks, each once per reader."""
        cache: dict[Key, pa.Table] = {}

        def read(keys: list[Key]) -> list[pa.Table]:
            missing = [k for k in keys if k not in cache]
            for k, records in zip(missing, self.store.get_records(missing, lock=lock)):
                cache[k] = self._decode_record(k, records[-1])
            return [cache[k] for k in keys]

        return read

    def flush(self) -> None:
        """Encode everything held in memory into the store, a record per key."""
        with self._memory_lock:
            self._unblock()
            while self._appends:
                self._spill_oldest(per_key=True)

    def iset(self, key: Key, value: Any, lock: bool = True, **kwargs: Any) -> None:
        self.flush()  # the store then decides set-once, with every earlier piece in it
        self._store_empty = False
        super().iset(key, value, lock=lock)

    # -- reading --------------------------------------------------------------------------
    def _held(self, key: Key, kb: bytes, read: _Reader) -> list[pa.Table]:
        """The tables of ``key`` in spilled blocks and in memory, in append order (under
        the lock)."""
        k = _int_key(key)
        out = []
        for held in [*self._spilled_sorted, *(h for h, _ in self._appends)]:
            if isinstance(held, _Sorted):
                piece = held.piece(k, read)
                if piece is not None:
                    out.append(piece)
            elif kb in held:
                out.append(held[kb][1])
        return out

    def get_pieces(self, keys: Sequence[Key], lock: bool = True) -> list[list[Any]]:
        """The tables appended to each key, one per append: spilled ones first."""
        with self._memory_lock:
            spilled = super().get_pieces(keys, lock=lock)
            read = self._reader(lock)
            return [s + self._held(k, encode_key(k), read) for k, s in zip(keys, spilled)]

    def iter_pieces(self, key: Key, max_bytes: int = 64 * 2**20, lock: bool = True) -> Iterator[pa.Table]:
        """The tables appended to ``key`` in append order, spilled ones read about
        ``max_bytes`` at a time, then those in spilled sorted blocks and in memory, a
        sorted append's rows read only when their turn comes (a key's rows spilled as
        sorted blocks are never read at once). The appends are those of the moment of the
        call; a flush meanwhile, which moves the rows of sorted blocks, raises
        :class:`~shuffle_kit.errors.ConcurrentChange` when they are reached."""
        kb = encode_key(key)
        k = _int_key(key)
        with self._memory_lock:  # what is spilled and what is held, at one moment
            spilled = super().iter_pieces(key, max_bytes, lock=lock)
            first = next(spilled, None)
            held = [*self._spilled_sorted, *(h for h, _ in self._appends)]
        if first is not None:
            yield first
            yield from spilled
        for h in held:
            if isinstance(h, _Sorted):
                with self._memory_lock:
                    if h.table is None and not any(s is h for s in self._spilled_sorted):
                        raise ConcurrentChange("the buffer was flushed while the pieces of a key were read")
                    piece = h.piece(k, self._reader(lock))
                if piece is not None:
                    yield piece
            elif kb in h:
                yield h[kb][1]

    def get(self, keys: Any, lock: bool = True, as_arrow: bool = False, **kwargs: Any) -> Any:
        """The DataFrame of a key (a ``pyarrow.Table`` with ``as_arrow=True``); a list of
        keys gives a list. Many integer keys held as sorted tables are converted at once."""

        def fetch(flat: list) -> list:
            if not as_arrow and len(flat) > 1:
                frames = self._sorted_frames(flat)
                if frames is not None:
                    return frames
            return [
                concat_tables(tables) if as_arrow else tables_to_frame(tables)
                for tables in self.get_pieces(flat, lock=lock)
            ]

        return get_nested(keys, fetch)

    def _sorted_frames(self, keys: list) -> list[pd.DataFrame] | None:
        """The frames of ``keys`` from one gather and one conversion, or None where that
        would not equal converting each key alone (then the caller does that)."""
        found = [_int_key(k) for k in keys]
        ks = [k for k in found if k is not None]
        if len(ks) != len(found):
            return None
        with self._memory_lock:
            if not self._store_empty:  # pieces may be in the store: read key by key
                return None
            appended = [h for h, _ in self._appends]
            held = [*self._spilled_sorted, *(h for h in appended if isinstance(h, _Sorted))]
            if not held or len(held) != len(self._spilled_sorted) + len(appended):
                return None
            return self._gather(ks, held)

    def _gather(self, ks: list[int], held: list[_Sorted]) -> list[pd.DataFrame] | None:
        n = len(held[0].counts)
        first = held[0]
        for h in held:
            if len(h.counts) != n or (h.index_starts is None) != (first.index_starts is None):
                return None
            if h is not first and (
                not h.schema.equals(first.schema, check_metadata=True)
                or any(not d.equals(e) for d, e in zip(h.dictionaries, first.dictionaries))
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
            offset = np.stack([cast(np.ndarray, h.index_starts)[idx] for h in held]) - before
            filled = counts > 0
            lo = np.where(filled, offset, np.iinfo(np.int64).max).min(axis=0)
            hi = np.where(filled, offset, np.iinfo(np.int64).min).max(axis=0)
            if np.any((lo != hi) & (rows > 0)):
                return None
            index_starts = np.where(rows > 0, lo, 0)
        # the rows of the keys, key by key and within a key in append order: one slice of
        # each held table, then one take
        read = self._reader()
        slices, segment_starts, base = [], [], 0
        for h, c in zip(held, counts):
            s, filled = h.starts[idx], c > 0
            if not filled.any():  # nothing of these keys: leave this table unread
                segment_starts.append(s)
                continue
            lo_row, hi_row = int(s[filled].min()), int((s + c)[filled].max())
            slices.append(h.rows(lo_row, hi_row, read))
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
            for spilled in self._spilled_sorted:
                spilled.counts[[k for k in ints if 0 <= k < len(spilled.counts)]] = 0
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
            self._spilled_sorted.clear()
            self.memory_usage = 0
            super().drop()
            self._store_empty = True

    def __repr__(self) -> str:
        return f"TableBuffer({self.store!r}, memory_limit={self.memory_limit:g})"
