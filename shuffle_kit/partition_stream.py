"""Hash partitions written straight into their files, while the input is still being read.

The partition job takes this path when every output file can stay open and each partition
can buffer a row group of a sensible size within the memory budget (:func:`fits`). Each
chunk read is hashed and split on worker threads, as :func:`shuffle_kit.shuffle` does; its
pieces wait in per-partition buffers, and a partition whose buffer reaches its share of
the budget is encoded as one row group on the same threads. Reading, splitting and encoding
overlap, and nothing goes through a temporary store.

Order: a partition's writes are issued in input order and one at a time, so every file
keeps its rows in input order.

Columns read as dictionaries (``dictionary``) are written to Parquet as dictionaries, when
the files then read back with ``schema`` (:func:`~shuffle_kit.output_files.parquet_dictionary_schema`);
otherwise they are decoded first.

Memory: a chunk's pieces are slices of one sorted copy of it, alive until its last piece is
written. When those copies exceed the budget, every partition still holding a piece of the
oldest chunk is written out (row groups get smaller; memory does not grow).

>>> import pyarrow as pa, tempfile, os, pyarrow.parquet as pq
>>> d = tempfile.mkdtemp()
>>> chunks = [pa.table({'k': [1, 2, 3, 1], 'v': [0, 1, 2, 3]})]
>>> write_partitions(chunks, ['k'], 2, chunks[0].schema, d, 'parquet', 'none', 2**24)
4
>>> sorted(os.listdir(d))
['part-00000.parquet', 'part-00001.parquet']
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from .output_files import (
    FORMATS,
    MAX_OPEN_FILES,
    Writer,
    conform,
    parquet_dictionary_schema,
)
from .shuffle.hashing import check_hashable, partition_ids
from .shuffle.split import split

MIN_ROW_GROUP_BYTES = 2 * 2**20  # smaller row groups make slow files: use the temporary store
THREADS = 2  # splitting and encoding (Arrow and NumPy release the GIL)


def fits(npartitions: int, budget: int) -> bool:
    """Whether ``npartitions`` files can be written this way within ``budget`` bytes."""
    return npartitions <= MAX_OPEN_FILES and _threshold(npartitions, budget) >= MIN_ROW_GROUP_BYTES


def _threshold(npartitions: int, budget: int) -> int:
    # half the budget for full buffers: sorted copies are freed only when all their pieces
    # are written, and partitions fill at different times
    return budget // (2 * npartitions)


def _split(table: pa.Table, on: Sequence[str], n: int) -> tuple[dict[int, pa.Table], int]:
    ids = partition_ids(table, on, n)
    return split(table, ids, n, np.bincount(ids, minlength=n)), table.nbytes


def _write(writer: Writer, pieces: list[pa.Table], schema: pa.Schema) -> int:
    table = pa.concat_tables([conform(p, schema) for p in pieces])
    writer.write(table)
    return table.num_rows


class _Partitions:
    """Per-partition buffers, their writers, and the bookkeeping of what memory is pinned."""

    def __init__(self, pool: ThreadPoolExecutor, directory: str, schema: pa.Schema, n: int,
                 fmt: str, compression: str, budget: int, written: Callable[[int], None],
                 dictionary: Sequence[str] = (), encode: Sequence[str] = ()):
        self.pool, self.encode, self.budget, self.written = pool, encode, budget, written
        encoded = parquet_dictionary_schema(schema, dictionary) if fmt == "parquet" else None
        self.schema = encoded or schema  # what the files are written as
        self.store_schema = encoded is None
        self.threshold = _threshold(n, budget)
        self.paths = [os.path.join(directory, f"part-{p:05d}{FORMATS[fmt]}") for p in range(n)]
        self.fmt, self.compression = fmt, compression
        self.buffers: list[list[tuple[int, pa.Table]]] = [[] for _ in range(n)]
        self.sizes = np.zeros(n, dtype=np.int64)
        self.writers: list[Writer | None] = [None] * n
        self.last: dict[int, Future] = {}  # partition -> its latest write
        self.pending: deque[tuple[Future, list[int]]] = deque()  # writes, with their chunks
        self.chunks: dict[int, list[int]] = {}  # chunk -> [bytes, pieces not yet written]
        self.pinned = 0
        self.rows = 0

    def add(self, index: int, pieces: dict[int, pa.Table], nbytes: int) -> None:
        if not pieces:
            return
        self.chunks[index] = [nbytes, len(pieces)]
        self.pinned += nbytes
        rows = sum(t.num_rows for t in pieces.values())
        for p, piece in pieces.items():
            self.buffers[p].append((index, piece))
            self.sizes[p] += nbytes * piece.num_rows // rows
            if self.sizes[p] >= self.threshold:
                self.flush(p)
        self.reap(block=False)
        while self.pinned > self.budget and self.pending:
            oldest = next(iter(self.chunks))
            for p, buffer in enumerate(self.buffers):
                if buffer and buffer[0][0] == oldest:
                    self.flush(p)
            self.reap(block=True)

    def _open(self, p: int) -> Writer:
        return Writer(self.paths[p], self.schema, self.fmt, self.compression, self.encode, self.store_schema)

    def _write(self, p: int, pieces: list[pa.Table]) -> int:
        # on a worker thread: the thread that reads and hands out chunks should not wait
        # for a file to be created and its writer set up
        writer = self.writers[p]
        if writer is None:
            writer = self.writers[p] = self._open(p)
        return _write(writer, pieces, self.schema)

    def flush(self, p: int) -> None:
        if not self.buffers[p]:
            return
        previous = self.last.get(p)
        if previous is not None:
            previous.result()  # one write per file at a time, in input order
        items, self.buffers[p] = self.buffers[p], []
        self.sizes[p] = 0
        future = self.pool.submit(self._write, p, [t for _, t in items])
        self.last[p] = future
        self.pending.append((future, [i for i, _ in items]))

    def reap(self, block: bool) -> None:
        """Account for finished writes (the oldest first; ``block``: wait for one)."""
        while self.pending and (block or self.pending[0][0].done()):
            future, indexes = self.pending.popleft()
            rows = future.result()
            self.rows += rows
            self.written(rows)
            for i in indexes:
                entry = self.chunks[i]
                entry[1] -= 1
                if not entry[1]:
                    self.pinned -= entry[0]
                    del self.chunks[i]
            block = False

    def finish(self) -> int:
        for p in range(len(self.buffers)):
            self.flush(p)
        while self.pending:
            self.reap(block=True)
        for p, writer in enumerate(self.writers):
            if writer is None:  # an empty partition still gets its (empty) file
                writer = self.writers[p] = self._open(p)
            writer.close()
        return self.rows

    def abort(self) -> None:
        for future, _ in self.pending:
            future.cancel()
        for future, _ in self.pending:
            if not future.cancelled():
                future.exception()  # wait: its writer is closed next
        for writer in self.writers:
            if writer is not None:
                try:
                    writer.close()
                except Exception:  # the job is failing already; its directory is removed
                    pass


def write_partitions(
    chunks: Iterable[pa.Table], on: Sequence[str], n: int, schema: pa.Schema, directory: str,
    fmt: str, compression: str, budget: int, written: Callable[[int], None] = lambda rows: None,
    dictionary: Sequence[str] = (), encode: Sequence[str] = (),
) -> int:
    """Hash-partition ``chunks`` on columns ``on`` into ``n`` files ``part-NNNNN`` in
    ``directory``, each reading back as ``schema``; return the number of rows written.
    ``dictionary``: columns that ``schema`` declares plain but chunks hold as dictionaries;
    ``encode``: more columns to store with a dictionary (see :class:`~shuffle_kit.output_files.Writer`).

    Partition ids are :func:`shuffle_kit.shuffle.hashing.partition_ids`, the same as
    :func:`shuffle_kit.shuffle`'s. ``written(rows)`` is called after each row group.
    """
    for name in on:
        check_hashable(schema.field(name).type, name)
    with ThreadPoolExecutor(THREADS, thread_name_prefix="shuffle_kit-partition") as pool:
        parts = _Partitions(pool, directory, schema, n, fmt, compression, budget, written, dictionary, encode)
        try:
            inflight: deque[tuple[int, Future]] = deque()
            for index, chunk in enumerate(chunks):
                inflight.append((index, pool.submit(_split, chunk, on, n)))
                del chunk
                if len(inflight) == THREADS:
                    i, future = inflight.popleft()
                    parts.add(i, *future.result())
            while inflight:
                i, future = inflight.popleft()
                parts.add(i, *future.result())
            return parts.finish()
        except BaseException:
            for _, future in inflight:
                future.cancel()
            parts.abort()
            raise
