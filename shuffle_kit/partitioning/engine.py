"""The partition engine: hash partitions written into their files while the input is read.

Each chunk read is hashed and split on worker threads (as :func:`shuffle_kit.shuffle`
does, so the same files come out); its pieces wait in per-partition buffers in memory.
Where they go from there depends on what fits, never on a partition-count threshold:

- **Open files** (:func:`keeps_files_open`): when every output file can stay open (the
  process's open-file limit, raised to its hard limit, allows it) and the writers' own
  buffers take at most a quarter of the budget, a partition whose buffer reaches half its
  share of the budget is encoded as a row group of its file at once (the other half keeps
  the reading going meanwhile); its first row group ends earlier, at a point of its own
  between half and all of that, so that partitions filling at one pace (evenly hashed
  keys) are written a few with each chunk, not all on the same one, with the next chunks'
  splits queued behind them. Reading, splitting and encoding overlap. Each open Parquet
  writer keeps about :data:`WRITER_BYTES` of Arrow buffers after its first row group, so
  this is counted against the budget.
- **Sorted runs** otherwise (many partitions, a small budget, or files by value): each
  time the chunks held fill half the budget, they are written, on a worker while the next
  half fills, as one *run*: an uncompressed Arrow IPC file under ``spill_dir`` holding
  the partitions in order, each as one record batch (or, when a partition's rows of each
  chunk are long, as those pieces, sliced from the chunks rather than copied together:
  :data:`SLICED_PIECE_ROWS`). At the end each partition is read back from every run (its
  batches only, never the whole run) and written whole, a few files at a time. Every
  file then has the fewest, largest row groups, and only those few writers are open at
  once.

Why both: writing row groups into open files overlaps the encoding with the reading
and costs no second pass over the data, but each row group has a fixed cost in the
Parquet writer and each open writer holds memory, so with many partitions the row groups
become tiny and the writers outgrow the budget. A run costs one uncompressed write and
read of the data (page cache speed) and turns thousands of tiny row groups into one
per file. The choice follows from the budget and the writers' memory, so the two meet
where their costs do rather than at a fixed count. Dictionary columns kept as dictionaries
weigh in too: each row group writes a dictionary page of its own, and the writer hashes its
values for the page and for the statistics, so open files whose row groups would hold fewer
rows than :data:`DICTIONARY_ROWS` times the dictionaries' values (those of the first chunk)
take sorted runs, with one or a few row groups per file.

Order: a partition's rows are written in input order (its writes are issued in order,
one at a time; runs are read back in the order they were written), unless the files ask
to be sorted (``Files.sort_keys``): then they go through sorted runs, whatever fits, and
each partition is sorted as it is read back: in memory when it and its sorted copy fit
in what the rows still held leave of the budget, else in batches under the runs'
directory (:mod:`~shuffle_kit.partitioning.sorting`). Files are written a few at a time,
as many as the threads can write and as the memory holds: what each holds is counted (a
whole file, or a batch), so a file sorted in memory may take most of the budget while
several small ones share it, and which way a file goes never depends on the thread count.

Writers that hold rows back for whole row groups (``Files.held_rows``) hold that many rows
each: with files open, all of them count against the budget (too many, and the job takes
sorted runs); from runs, a row group larger than a partition's batch is refused.

Columns read as dictionaries (``dictionary``) are written to Parquet as dictionaries, the
files keeping ``schema`` as Arrow's so that they read back as its values
(:func:`~shuffle_kit.partitioning.writers.parquet_dictionary_schema`); to other formats
they are decoded first.

Memory: a chunk's pieces are slices of one sorted copy of it, alive until its last piece is
written. When those copies exceed the budget, every partition still holding a piece of the
oldest chunk is written out (open files), or a run is written (runs): memory does not grow.
What is written when depends only on the chunks, never on how fast writes finish, so the
files are the same, byte for byte, for any thread count.

>>> import pyarrow as pa, tempfile, os, pyarrow.parquet as pq
>>> d = tempfile.mkdtemp()
>>> chunks = [pa.table({'k': [1, 2, 3, 1], 'v': [0, 1, 2, 3]})]
>>> files = PartFiles.of(d, chunks[0].schema, 'parquet', 'none')
>>> partition_into(chunks, ['k'], 2, files, Resources(budget=2**24))
4
>>> sorted(os.listdir(d))
['part-00000.parquet', 'part-00001.parquet']
>>> import shutil; shutil.rmtree(d)
"""

from __future__ import annotations

import itertools
import logging
import os
import resource
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import numpy as np
import pyarrow as pa

from .. import lifecycle
from ..byte_sizes import format_size
from ..io.provenance import Provenance
from ..kernels.arrow_numpy import arrow_array
from ..kernels.hashing import check_hashable, ids_of_hashes, partition_ids
from ..kernels.ranges import KeyOrder
from ..kernels.split import count_ids, sorted_runs, split
from ..limits import executor, resolve_threads
from .layout import DEFAULT_LAYOUT, Layout
from .sorting import key_order, sorted_stream, sorted_table
from .writers import (
    STAGED,
    FileSeries,
    Writer,
    conform,
    conformed_batches,
    file_name,
    naming,
    parquet_dictionary_schema,
)

logger = logging.getLogger(__name__)

# Arrow buffers an open Parquet writer keeps after its first row group (column encoders,
# the output stream), plus the file's footer entries; measured per writer, rounded up
WRITER_BYTES = 192 * 2**10
MIN_ROW_GROUP_BYTES = 256 * 2**10  # below this the writer's fixed cost per row group dominates
# each row group of a dictionary column writes its own dictionary page and hashes its values
# (for the page and for the statistics): row groups of fewer rows than this many times the
# values of the chunks' dictionaries cost more in those than sorted runs cost to write and
# read back their rows, and every file then gets one row group
DICTIONARY_ROWS = 5
SPARE_FILES = 64  # descriptors left for the inputs, the run files and the interpreter
# chunks being split at once, and files being written from runs at once: memory holds a
# few of each whatever the thread count (other threads encode row groups meanwhile)
MAX_IN_FLIGHT = 4
RUNS_PREFIX = ".shuffle_kit-runs-"  # sorted runs' directory: see shuffle_kit.lifecycle
# a run whose pieces (a partition's rows of one chunk) hold this many rows on average is
# written piece by piece, each a record batch sliced from its chunk: gathering them into
# one batch per partition would copy every row for a few batches fewer; shorter pieces
# are gathered, as each batch costs its own metadata and write
SLICED_PIECE_ROWS = 4096


def batch_bytes(budget: int) -> int:
    """What a partition written from runs holds in memory at a time, for ``budget``."""
    return max(2**20, budget // 16)


def part_name(p: int, fmt: str, token: str | None = None, series: int | str | None = None) -> str:
    """The file name of hash partition ``p`` in format ``fmt`` (with a job's ``token``, and
    the number of the file in the partition's ``series``, see :class:`PartFiles`).

    >>> part_name(3, 'parquet'), part_name(3, 'csv', 'x1', 0), part_name(3, 'arrow', None, '*')
    ('part-00003.parquet', 'part-00003-x1-00000.csv', 'part-00003-*.arrow')
    """
    return file_name(fmt, p, token, series)


def open_file_limit() -> int:
    """Files this process may have open: the soft limit, raised to the hard one first
    (the hard limit is what the administrator allows; the soft one is only a default)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def keeps_files_open(npartitions: int, budget: int, writer_bytes: int = WRITER_BYTES) -> bool:
    """Whether all ``npartitions`` files can stay open and receive row groups as the input
    is read, within ``budget`` bytes, each writer holding ``writer_bytes`` (see the
    module's docstring).

    >>> keeps_files_open(64, 500 * 2**20), keeps_files_open(100_000, 500 * 2**20)
    (True, False)
    """
    return why_not_open(npartitions, budget, writer_bytes) is None


def row_group_bytes(npartitions: int, budget: int, writer_bytes: int = WRITER_BYTES) -> int:
    """What a partition's buffer holds when it is written as a row group of its open file:
    half its share of ``budget`` once the writers' own buffers are counted (the other half
    keeps the reading going while row groups are encoded).

    >>> row_group_bytes(64, 500 * 2**20) // 2**20
    3
    """
    return (budget - npartitions * writer_bytes) // (2 * npartitions)


def why_not_open(npartitions: int, budget: int, writer_bytes: int = WRITER_BYTES, row_bytes: int = 0,
                 dictionary_values: int = 0) -> str | None:
    """Why the ``npartitions`` files cannot all stay open within ``budget``, each writer
    holding ``writer_bytes`` (one phrase), or None if they can. ``row_bytes``: the size of
    a row in memory, and ``dictionary_values``: the values of its dictionary columns'
    dictionaries, if the rows have any: row groups of fewer than :data:`DICTIONARY_ROWS`
    times as many rows are refused (see there).

    >>> why_not_open(64, 500 * 2**20) is None, why_not_open(100, 2**20)
    (True, "100 writers' buffers (19.7 MB) exceed a quarter of the budget 1.0 MB")
    >>> why_not_open(64, 128 * 2**20, row_bytes=28, dictionary_values=1_000) is None
    True
    >>> why_not_open(64, 128 * 2**20, row_bytes=28, dictionary_values=10_000)
    'row groups of about 33,938 rows would each write dictionaries of 10,000 values'
    """
    writers = npartitions * writer_bytes
    limit = open_file_limit()
    if npartitions + SPARE_FILES > limit:
        return f"the open-file limit ({limit:,}) is below {npartitions:,} files + {SPARE_FILES} spare"
    if writers > budget // 4:
        return (f"{npartitions:,} writers' buffers ({format_size(writers)}) exceed a quarter of the budget "
                f"{format_size(budget)}")
    if (budget - writers) // npartitions < MIN_ROW_GROUP_BYTES:
        share = (budget - writers) // npartitions
        return f"row groups of {format_size(share)} per file would be below {format_size(MIN_ROW_GROUP_BYTES)}"
    if row_bytes and dictionary_values:
        rows = row_group_bytes(npartitions, budget, writer_bytes) // row_bytes
        if rows < DICTIONARY_ROWS * dictionary_values:
            return f"row groups of about {rows:,} rows would each write dictionaries of {dictionary_values:,} values"
    return None


def dictionary_values(table: pa.Table) -> int:
    """The values of the dictionaries of ``table``'s dictionary columns, all together (of
    each column its largest).

    >>> d = pa.DictionaryArray.from_arrays(pa.array([0], pa.int32()), pa.array(['a', 'b', 'c']))
    >>> dictionary_values(pa.table({'s': d, 't': d, 'x': [1]}))
    6
    """
    return sum(max((len(c.dictionary) for c in column.chunks), default=0)
               for column in table.columns if pa.types.is_dictionary(column.type))


class Files(Protocol):
    """Where the engine writes partitions: the declared capabilities it reads instead of
    probing the object."""

    @property
    def schema(self) -> pa.Schema:
        """The chunks' schema (what runs hold)."""
        ...

    @property
    def row_groups(self) -> bool:
        """Whether a partition can be written as row groups while the input is read (then
        ``open(p)`` gives its writer), or only whole, by ``write``."""
        ...

    @property
    def sort_keys(self) -> KeyOrder | None:
        """The order each partition is to be written sorted in (None: input order)."""
        ...

    @property
    def dictionary_pages(self) -> bool:
        """Whether every row group writes its dictionary columns' dictionaries whole
        (Parquet's dictionary pages), and hashes their values for its statistics."""
        ...

    @property
    def held_rows(self) -> int:
        """Rows an open writer may hold back (an unfinished row group)."""
        ...

    def open(self, p: int) -> FileSeries: ...

    def write(self, p: int, pieces: Iterable[pa.Table], batch_bytes: int, rows: int | None = None) -> int:
        """Write partition ``p`` from ``pieces`` (in input order), a batch of about
        ``batch_bytes`` in memory at a time; return its rows. ``rows``: how many the pieces
        hold, if known."""
        ...


@dataclass(frozen=True)
class PartFiles:
    """One ``part-NNNNN`` file of ``fmt`` per partition that has rows (per partition, with
    ``layout.empty_files``) in ``directory``, with ``schema``
    (that of the chunks, dictionaries included) and ``plain`` (what the files read back
    as); ``encode``: more columns to store with a dictionary, ``values_only``: string columns
    to store without one (see :class:`~shuffle_kit.partitioning.writers.Writer`). With ``layout.max_rows_per_file``
    a series ``part-NNNNN-00000``, ``part-NNNNN-00001`` ... per partition; ``token`` (a
    job's, when it appends) goes after the partition's number; ``descending`` and
    ``na_position``: the order of ``layout.sort_by`` (see :func:`~shuffle_kit.partitioning.sorting.key_order`);
    ``provenance``: how the job partitions the rows, recorded in each file with its
    partition (:mod:`shuffle_kit.io.provenance`; None: no record)."""

    directory: str
    schema: pa.Schema
    plain: pa.Schema
    fmt: str
    compression: str
    encode: Sequence[str] = ()
    layout: Layout = DEFAULT_LAYOUT
    token: str | None = None
    descending: tuple[str, ...] = ()
    na_position: str = "last"
    provenance: Provenance | None = None
    values_only: tuple[str, ...] = ()
    row_groups = True

    @property
    def dictionary_pages(self) -> bool:
        return self.fmt == "parquet"

    @classmethod
    def of(
        cls, directory: str, schema: pa.Schema, fmt: str, compression: str, *, dictionary: Sequence[str] = (),
        encode: Sequence[str] = (), layout: Layout = DEFAULT_LAYOUT, token: str | None = None,
        descending: Sequence[str] = (), na_position: str = "last", provenance: Provenance | None = None,
        values_only: Sequence[str] = (),
    ) -> PartFiles:
        """The files for chunks that read back as ``schema`` but hold the columns
        ``dictionary`` as dictionaries (written to Parquet as dictionaries, the files
        keeping ``schema`` as Arrow's, and so to the join's staged sides; to other formats
        decoded first); ``encode``: more columns to store with a dictionary, ``values_only``:
        string columns to store without one (see :class:`~shuffle_kit.partitioning.writers.Writer`)."""
        encoded = parquet_dictionary_schema(schema, dictionary) if fmt in ("parquet", STAGED) else None
        return cls(directory, encoded or schema, schema, fmt, compression, encode, layout, token, tuple(descending),
                   na_position, provenance, tuple(values_only))

    @property
    def sort_keys(self) -> KeyOrder | None:
        if not self.layout.sort_by:
            return None
        return key_order(self.schema, self.layout.sort_by, self.descending, self.na_position)

    @property
    def held_rows(self) -> int:
        return self.layout.row_group_size or 0

    def open(self, p: int, schema: pa.Schema | None = None) -> FileSeries:
        # a file is made when the partition's first row comes, so a partition without rows
        # has none, unless the layout asks for one file per partition whatever it holds
        return FileSeries(lambda i: self._create(p, i, schema or self.schema), self.layout.max_rows_per_file,
                          eager=self.layout.empty_files)

    def _create(self, p: int, i: int, schema: pa.Schema) -> Writer:
        series = i if self.layout.max_rows_per_file is not None else None
        path = os.path.join(self.directory, part_name(p, self.fmt, self.token, series))
        # a file of dictionaries (some of them decoded: see file_schema) keeps the plain
        # schema as Arrow's, so that it reads back as values
        record = None if self.provenance is None else self.provenance.of_partition(p)
        return Writer(path, schema, self.fmt, self.compression, self.encode,
                      stored=None if self.schema is self.plain else self.plain,
                      row_group_size=self.layout.row_group_size, record=record, values_only=self.values_only)

    def write(self, p: int, pieces: Iterable[pa.Table], batch_bytes: int, rows: int | None = None) -> int:
        pieces = iter(pieces)
        first = next(pieces, None)
        schema = self.schema if first is None or rows is None else self.file_schema(first, rows)
        writer = self.open(p, schema)
        try:
            for table in conformed_batches(itertools.chain([] if first is None else [first], pieces), schema,
                                           batch_bytes):
                writer.write(table)
        finally:
            writer.close()
        return writer.rows

    def file_schema(self, first: pa.Table, rows: int) -> pa.Schema:
        """The schema of a file of ``rows`` rows whose first piece is ``first``: the
        files' schema, but a dictionary column whose dictionary (the job's, as ``first``
        has it) holds more values than the file has rows is decoded to its values.

        The writer's cost of a dictionary column grows with the dictionary (the entries
        the rows use are found and kept; the rest dropped) where that of the values grows
        with the rows (the Parquet writer hashes them into the file's own dictionary): a
        small file of a large dictionary is cheaper decoded, and reads back the same.

        >>> d = pa.DictionaryArray.from_arrays(pa.array([0, 2], pa.int32()), pa.array(['a', 'b', 'c']))
        >>> files = PartFiles.of('.', pa.schema({'s': pa.string()}), 'parquet', 'lz4', dictionary=['s'])
        >>> [str(files.file_schema(pa.table({'s': d}), rows).field('s').type) for rows in (2, 3)]
        ['string', 'dictionary<values=string, indices=int32, ordered=0>']
        """
        fields = []
        for f in self.schema:
            plain = self.plain.field(f.name)
            if pa.types.is_dictionary(f.type) and not pa.types.is_dictionary(plain.type):
                i = first.schema.get_field_index(f.name)
                column = first.column(i) if i >= 0 and pa.types.is_dictionary(first.schema.field(i).type) else None
                values = max((len(c.dictionary) for c in column.chunks), default=0) if column is not None else 0
                if rows < values:
                    f = plain
            fields.append(f)
        if all(a is b for a, b in zip(fields, self.schema)):
            return self.schema
        return pa.schema(fields, metadata=self.schema.metadata)


PartitionIds = Callable[[pa.Table], np.ndarray]  # the partition of each of a table's rows


@dataclass(frozen=True)
class HashedChunk:
    """A chunk for :func:`partition_into` with the documented hash of its key columns
    already computed, one per row (:func:`~shuffle_kit.kernels.hashing.hash_columns` of
    ``on``, as whoever made the chunk had them: a join's lookup hashes its keys), so the
    engine's hash partition ids come from them instead of hashing the keys again. Other
    partition ids (``ids=``) ignore them.

    >>> t = pa.table({'k': ['a', 'b', 'a']})
    >>> from shuffle_kit.kernels.hashing import hash_array
    >>> chunk = HashedChunk(t, hash_array(t.column('k')), ('k',))
    >>> hash_ids(['k'], 4)(chunk).tolist() == partition_ids(t, ['k'], 4).tolist()
    True
    """

    table: pa.Table
    hashes: np.ndarray
    on: tuple[str, ...]  # the columns hashed: partition ids by other columns hash those

    def __post_init__(self) -> None:
        if len(self.hashes) != self.table.num_rows:
            raise ValueError(f"{len(self.hashes):,} hashes for a chunk of {self.table.num_rows:,} rows")


Chunk: TypeAlias = "pa.Table | HashedChunk"
ChunkIds = Callable[[Chunk], np.ndarray]  # a chunk's partition of each row


def rows_of(chunk: Chunk) -> pa.Table:
    """The rows of ``chunk`` (a :class:`HashedChunk`'s without their hashes)."""
    return chunk.table if isinstance(chunk, HashedChunk) else chunk


def hash_ids(on: Sequence[str], n: int) -> ChunkIds:
    """Hash partition ids: :func:`shuffle_kit.kernels.hashing.partition_ids` of the key
    columns ``on`` into ``n`` partitions (those of :func:`shuffle_kit.shuffle`), from a
    :class:`HashedChunk`'s hashes when it has them."""
    on = tuple(on)
    return lambda chunk: (ids_of_hashes(chunk.hashes, n) if isinstance(chunk, HashedChunk) and chunk.on == on
                          else partition_ids(rows_of(chunk), on, n))


def _of_rows(ids: PartitionIds) -> ChunkIds:
    return lambda chunk: ids(rows_of(chunk))


def _split(chunk: Chunk, ids_of: ChunkIds, n: int) -> tuple[dict[int, pa.Table], int]:
    ids, table = ids_of(chunk), rows_of(chunk)
    return split(table, ids, n, count_ids(ids, n)), table.nbytes


def _sort(chunk: Chunk, ids_of: ChunkIds, n: int) -> tuple[list[tuple[pa.Table, np.ndarray]], int]:
    """``chunk``'s rows ordered by partition id (stably) and the rows of each partition, as
    one or more runs (see :func:`~shuffle_kit.kernels.split.sorted_runs`)."""
    table = rows_of(chunk)
    return sorted_runs(table, ids_of(chunk), n), table.nbytes


def _write(writer: FileSeries, pieces: list[pa.Table], schema: pa.Schema) -> int:
    table = pa.concat_tables([conform(p, schema) for p in pieces])
    writer.write(table)
    return table.num_rows


class _OpenFiles:
    """Every file open: per-partition buffers written as row groups when they fill, and
    the bookkeeping of what memory is pinned."""

    prepare = staticmethod(_split)

    def __init__(self, pool: Executor, out: Files, n: int, budget: int, written: Callable[[int], None],
                 writer_bytes: int = WRITER_BYTES):
        self.pool, self.out, self.written = pool, out, written
        self.budget = budget - n * writer_bytes  # the writers' own buffers count against it
        self.threshold = row_group_bytes(n, budget, writer_bytes)
        # each partition's first row group ends at a point of its own, spread evenly
        # from all of the threshold (partition 0: one file is as before) down to about half
        # of it: partitions that fill at one pace then reach it on different chunks, so
        # their writes come a few with each chunk instead of all on one, with the chunks'
        # splits waiting behind them
        self.due = self.threshold - self.threshold * np.arange(n, dtype=np.int64) // (2 * n)
        self.buffers: list[list[tuple[int, pa.Table]]] = [[] for _ in range(n)]
        self.sizes = np.zeros(n, dtype=np.int64)
        self.writers: list[FileSeries | None] = [None] * n
        self.closed = [False] * n
        self.last: dict[int, Future] = {}  # partition -> its latest write
        self.pending: deque[tuple[Future, list[int]]] = deque()  # writes, with their chunks
        self.chunks: dict[int, list[int]] = {}  # chunk -> [bytes, pieces not yet written]
        self.unflushed: dict[int, list[int]] = {}  # chunk -> [bytes, pieces not yet handed to a writer]
        self.pinned = 0
        self.rows = 0
        self.partition_rows = np.zeros(n, dtype=np.int64)

    def add(self, index: int, pieces: dict[int, pa.Table], nbytes: int) -> None:
        if not pieces:
            return
        self.chunks[index] = [nbytes, len(pieces)]
        self.unflushed[index] = [nbytes, len(pieces)]
        self.pinned += nbytes
        rows = sum(t.num_rows for t in pieces.values())
        for p, piece in pieces.items():
            self.buffers[p].append((index, piece))
            self.sizes[p] += nbytes * piece.num_rows // rows
            if self.sizes[p] >= self.due[p]:
                self.flush(p)
        # what is written when depends only on the chunks added so far (never on how fast
        # writes finish), so the files are the same for any thread count
        while sum(size for size, _ in self.unflushed.values()) > self.budget * 3 // 4:
            oldest = next(iter(self.unflushed))
            for p, buffer in enumerate(self.buffers):
                if buffer and buffer[0][0] == oldest:
                    self.flush(p)
        self.reap(block=False)
        while self.pinned > self.budget and self.pending:
            self.reap(block=True)

    def _write(self, p: int, pieces: list[pa.Table], last: bool) -> int:
        # on a worker thread: the thread that reads and hands out chunks should not wait
        # for a file to be created and its writer set up, nor for its footer
        writer = self.writers[p]
        if writer is None:
            writer = self.writers[p] = self.out.open(p)
        rows = _write(writer, pieces, self.out.schema) if pieces else 0
        if last:
            writer.close()
            self.closed[p] = True
        return rows

    def flush(self, p: int, last: bool = False) -> None:
        """Hand partition ``p``'s buffer to a writer (``last``: and close its file)."""
        if not self.buffers[p] and not last:
            return
        previous = self.last.get(p)
        if previous is not None:
            previous.result()  # one write per file at a time, in input order
        items, self.buffers[p] = self.buffers[p], []
        self.sizes[p] = 0
        self.due[p] = self.threshold
        for i, _ in items:
            entry = self.unflushed[i]
            entry[1] -= 1
            if not entry[1]:
                del self.unflushed[i]
        future = self.pool.submit(self._write, p, [t for _, t in items], last)
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
        for p in range(len(self.buffers)):  # (an empty partition gets a file only if the files ask for one)
            self.flush(p, last=True)
        while self.pending:
            self.reap(block=True)
        self.partition_rows[:] = [0 if writer is None else writer.rows for writer in self.writers]
        return self.rows

    def abort(self) -> None:
        for future, _ in self.pending:
            future.cancel()
        for future, _ in self.pending:
            if not future.cancelled():
                future.exception()  # wait: its writer is closed next
        for writer, closed in zip(self.writers, self.closed):
            if writer is not None and not closed:
                try:
                    writer.close()
                except Exception:  # the job is failing already; its directory is removed
                    pass


class _SortedRuns:
    """Chunks held sorted by partition; each half of the budget they fill is written as one
    run on a worker thread while the next half fills; at the end each file is written whole
    from every run and what is still held."""

    prepare = staticmethod(_sort)

    def __init__(self, pool: Executor, out: Files, n: int, budget: int, written: Callable[[int], None],
                 directory: str, threads: int):
        self.pool, self.out, self.n, self.budget, self.written = pool, out, n, budget, written
        self.directory, self.threads = directory, threads
        self.held: list[tuple[pa.Table, np.ndarray]] = []  # sorted chunks, and rows per partition
        self.pinned = 0
        self.seen = [0, 0]  # rows and bytes of every chunk: the size of a row
        self.spilling: deque[Future] = deque()  # runs being written, in input order
        self.runs: list[_SpilledRun] = []
        self.partition_rows = np.zeros(n, dtype=np.int64)

    def add(self, index: int, runs: list[tuple[pa.Table, np.ndarray]], nbytes: int) -> None:
        runs = [run for run in runs if run[0].num_rows]
        if not runs:
            return
        self.held += runs
        self.pinned += nbytes
        self.seen[0] += sum(t.num_rows for t, _ in runs)
        self.seen[1] += nbytes
        if self.pinned > self.budget // 2:  # the other half: the run being written
            self.spill()

    def spill(self) -> None:
        """Hand everything held to a worker that writes it as one run."""
        while self.spilling:  # one run at a time: memory holds at most two halves
            self.runs.append(self.spilling.popleft().result())
        path = os.path.join(self.directory, f"run-{len(self.runs):05d}.arrow")
        logger.info("spilling run %d: %s rows (%s in memory) to %s", len(self.runs),
                    f"{sum(t.num_rows for t, _ in self.held):,}", format_size(self.pinned), path)
        self.spilling.append(
            self.pool.submit(_SpilledRun.write, path, self.held, self.out.schema, batch_bytes(self.budget))
        )
        self.held, self.pinned = [], 0

    def _whole_bytes(self) -> int:
        """The largest file (in memory) held whole: one written as it is, a batch; one
        sorted, what lets it and its sorted copy fit in what the rows still held leave of
        the budget (a larger one is sorted through runs on disk). A function of the chunks
        alone, never of the thread count."""
        batch = batch_bytes(self.budget)
        return max(batch, (self.budget - self.pinned) // 2) if self.out.sort_keys else batch

    def _bytes(self, rows: int) -> int:
        """The size in memory of ``rows`` rows, at the average row's size."""
        return rows * self.seen[1] // max(1, self.seen[0])

    def _write_file(self, p: int, tail: list[pa.Table], whole: bool, rows: int) -> int:
        """Partition ``p`` (``rows`` rows) from every run, then ``tail``, in input order:
        ``whole`` in one table, else a bounded batch at a time (a skewed partition is never
        held whole)."""
        limit = batch_bytes(self.budget)
        pieces: Iterable[pa.Table] = itertools.chain((piece for run in self.runs for piece in run.read(p)), tail)
        if whole:
            # held whole: one table, not a size estimate of every piece; sorted in memory
            # (never cut into runs on disk because it is more than a batch)
            table = pa.concat_tables([conform(t, self.out.schema) for t in pieces])
            pieces = [sorted_table(table, self.out.sort_keys) if self.out.sort_keys else table]
            del table  # (the sorted copy is what is written)
        elif self.out.sort_keys:
            pieces = sorted_stream(pieces, self.out.sort_keys, self.out.schema, limit, self.directory)
        return self.out.write(p, pieces, limit, rows)

    def finish(self) -> int:
        while self.spilling:
            self.runs.append(self.spilling.popleft().result())
        if self.runs:
            logger.info("writing %d files from %d runs and %s rows held", self.n, len(self.runs),
                        f"{sum(t.num_rows for t, _ in self.held):,}")
        starts = [np.concatenate([[0], np.cumsum(counts)]) for _, counts in self.held]
        inflight: deque[tuple[int, int, Future]] = deque()  # partition, what it holds, its write
        batch, whole_bytes = batch_bytes(self.budget), self._whole_bytes()
        room = self.budget - self.pinned  # what the rows still held leave for the files being written
        rows = 0

        def collect() -> int:
            p, _, future = inflight.popleft()
            done = self.partition_rows[p] = future.result()
            self.written(done)
            return done

        try:
            for p in range(self.n):
                tail = [
                    t.slice(int(s[p]), int(s[p + 1] - s[p])) for (t, _), s in zip(self.held, starts) if s[p + 1] > s[p]
                ]
                n = sum(int(run.rows[p]) for run in self.runs) + sum(t.num_rows for t in tail)
                whole = 0 < n and self._bytes(n) <= whole_bytes
                # what a file holds while it is written: whole, its size, or a batch at a
                # time; twice that when it is sorted (and its sorted copy)
                cost = (self._bytes(n) if whole else batch) * (2 if self.out.sort_keys else 1)
                # as many files at once as the threads can write and the memory holds (which
                # changes when files are written, never what is in them)
                while inflight and (len(inflight) >= 2 * min(self.threads, MAX_IN_FLIGHT)
                                    or sum(c for _, c, _ in inflight) + cost > room):
                    rows += collect()
                inflight.append((p, cost, self.pool.submit(self._write_file, p, tail, whole, n)))
            while inflight:
                rows += collect()
        finally:
            for _, _, future in inflight:
                future.cancel()
            self.abort()
        return rows

    def abort(self) -> None:
        for future in self.spilling:
            future.cancel()
            if not future.cancelled():
                future.exception()  # wait: its file is removed next
        for run in self.runs:
            run.close()


class _SpilledRun:
    """One spilled run: an Arrow IPC file holding, for each partition in order that has
    rows in it (``rows[p]``), those rows as ``pieces[p]`` record batches (one, or one per
    chunk of the run that has rows of it: see :data:`SLICED_PIECE_ROWS`). Each thread that
    reads it keeps its own open reader."""

    def __init__(self, path: str, rows: np.ndarray, pieces: np.ndarray | None = None):
        self.path, self.rows = path, rows
        self.pieces = (rows > 0).astype(np.int64) if pieces is None else pieces
        self.first = np.cumsum(self.pieces) - self.pieces  # partition p's first batch
        self._local = threading.local()
        self._files: list[pa.OSFile] = []
        self._lock = threading.Lock()

    @classmethod
    def write(
        cls, path: str, chunks: list[tuple[pa.Table, np.ndarray]], schema: pa.Schema, group_bytes: int
    ) -> _SpilledRun:
        """Write sorted ``chunks`` as a run: each partition's slice of every chunk as a
        batch of its own when those slices are long (nothing is copied), else a group of
        partitions of about ``group_bytes`` at a time, their rows gathered into partition
        order with one take."""
        counts = np.stack([c for _, c in chunks])  # [chunk, partition]
        starts = np.cumsum(counts, axis=1) - counts  # of each partition within its chunk
        per_partition = counts.sum(axis=0)
        # one dictionary per column for the whole file (IPC files cannot replace one):
        # indices are remapped, the data stays where it is
        whole = pa.concat_tables([conform(t, schema) for t, _ in chunks]).unify_dictionaries()
        offsets = np.concatenate([[0], np.cumsum([t.num_rows for t, _ in chunks])])
        # (a slice of a view column would take the chunk's whole data buffers into its batch)
        views = any(pa.types.is_string_view(t) or pa.types.is_binary_view(t) for t in whole.schema.types)
        if not views and int(offsets[-1]) >= SLICED_PIECE_ROWS * max(1, int(np.count_nonzero(counts))):
            batches = np.zeros(len(per_partition), dtype=np.int64)  # of each partition
            with naming(path), pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, whole.schema) as writer:
                for p in np.flatnonzero(per_partition):
                    for c in np.flatnonzero(counts[:, p]):
                        piece = whole.slice(int(offsets[c] + starts[c, p]), int(counts[c, p]))
                        for batch in piece.to_batches():
                            if batch.num_rows:
                                writer.write_batch(batch)
                                batches[p] += 1
            return cls(path, per_partition, batches)
        row_bytes = max(1, sum(t.nbytes for t, _ in chunks) // max(1, int(offsets[-1])))
        bounds = _groups(per_partition, max(1, group_bytes // row_bytes))
        with naming(path), pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, whole.schema) as writer:
            for a, b in zip(bounds, bounds[1:]):
                # the group's rows of each chunk are one contiguous slice of it
                lo, hi = starts[:, a], starts[:, b - 1] + counts[:, b - 1]
                group = pa.concat_tables(
                    [whole.slice(int(offsets[c] + lo[c]), int(hi[c] - lo[c])) for c in range(len(chunks))]
                )
                block = counts[:, a:b].T.ravel()  # rows of (partition, chunk), partition-major
                first = (np.cumsum(hi - lo) - (hi - lo))[None, :] + (starts[:, a:b] - lo[:, None]).T
                order = np.repeat(first.ravel() - (np.cumsum(block) - block), block) + np.arange(block.sum())
                taken = group.take(arrow_array(order)).combine_chunks()
                batch = taken.to_batches()[0] if taken.num_rows else None
                at = 0
                for rows in per_partition[a:b]:
                    if rows:
                        writer.write_batch(batch.slice(at, int(rows)))  # type: ignore[union-attr]
                        at += int(rows)
        return cls(path, per_partition)

    def read(self, p: int) -> Iterator[pa.Table]:
        if not self.rows[p]:
            return
        reader = getattr(self._local, "reader", None)
        if reader is None:
            f = pa.OSFile(self.path, "rb")  # reads of one batch at a time, not a mapping
            with self._lock:
                self._files.append(f)
            reader = self._local.reader = pa.ipc.open_file(f)
        first = int(self.first[p])
        table = pa.Table.from_batches([reader.get_batch(i) for i in range(first, first + int(self.pieces[p]))])
        if table.num_columns and table.column(0).num_chunks > 1:
            # a dictionary column's pieces (of one dictionary) joined: their indices end to
            # end, where each piece would count the dictionary again in the table's size
            for i, t in enumerate(table.schema.types):
                if pa.types.is_dictionary(t):
                    table = table.set_column(i, table.schema.field(i), table.column(i).combine_chunks())
        yield table

    def close(self) -> None:
        with self._lock:
            for f in self._files:
                f.close()
            self._files.clear()


def _groups(rows: np.ndarray, target: int) -> list[int]:
    """Bounds of consecutive groups of partitions of at most ``target`` rows each (or of
    one partition, if it alone has more).

    >>> _groups(np.array([3, 0, 5, 1, 9]), 6)
    [0, 2, 4, 5]
    """
    ends = np.cumsum(rows)
    bounds, start = [0], 0
    while start < len(rows):
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + target, side="right")))
        bounds.append(min(stop, len(rows)))
        start = bounds[-1]
    return bounds


@dataclass(frozen=True)
class Resources:
    """What a run of the engine may use: ``budget`` bytes of rows held in memory, ``threads``
    workers (None: the CPUs this process may use; the files are the same for any number)
    and ``spill_dir`` for sorted runs, if they are needed (None: the system's temporary
    directory; they are removed before the run returns)."""

    budget: int
    threads: int | None = None
    spill_dir: str | None = None


def partition_into(
    chunks: Iterable[Chunk], on: Sequence[str], n: int, out: Files, use: Resources, *,
    written: Callable[[int], None] = lambda rows: None, sizes: np.ndarray | None = None,
    ids: PartitionIds | None = None,
) -> int:
    """Hash-partition ``chunks`` on columns ``on`` into ``n`` partitions written by ``out``
    (:class:`PartFiles`: a ``part-NNNNN`` file per partition; ``ValueFiles``: hive
    directories by value), within ``use``; return the number of rows written.

    Partition ids are ``ids(chunk)``, by default :func:`hash_ids` (the same as
    :func:`shuffle_kit.shuffle`'s); any other function of a chunk's rows (range ids, from
    :mod:`~shuffle_kit.partitioning.by_range`) goes through the same engine, as long as it
    depends on nothing but the rows. ``written(rows)`` is called after each write. ``sizes``:
    an array of ``n`` integers that receives the rows written to each partition (as
    NumPy's ``out=``; the writers counted them, nothing is read again). A chunk may be a
    :class:`HashedChunk`: its keys' hashes, computed already, give its hash partition ids.
    """
    if ids is None:
        for name in on:
            check_hashable(out.schema.field(name).type, name)
        ids_of = hash_ids(on, n)
    else:
        ids_of = _of_rows(ids)
    budget, spill_dir = use.budget, use.spill_dir
    threads = resolve_threads(use.threads)
    chunks = iter(chunks)
    writer_bytes = WRITER_BYTES
    # the first chunk tells the size of a row and of the dictionaries (the same for any
    # thread count)
    first = next(chunks, None)
    row_bytes = values = 0
    if first is not None:
        chunks = itertools.chain([first], chunks)
        table = rows_of(first)
        row_bytes, values = max(1, table.nbytes // max(1, table.num_rows)), dictionary_values(table)
        del table
        if out.held_rows:
            held = out.held_rows * row_bytes
            if held > batch_bytes(budget):
                raise ValueError(
                    f"--row-group-size {out.held_rows:,}: a row group of these rows takes about "
                    f"{held / 2**20:,.0f} MiB, more than the {batch_bytes(budget) / 2**20:,.0f} MiB "
                    "a file's writer may hold under --memory-limit; "
                    f"use at most {out.held_rows * batch_bytes(budget) // held:,} rows or a larger --memory-limit"
                )
            writer_bytes += held
    del first
    if not out.row_groups:
        why: str | None = "a partition's files are known once it is whole"
    elif out.sort_keys:
        why = f"files sorted by {', '.join(out.sort_keys.fields)} are written whole"
    else:
        kept = out.dictionary_pages and any(pa.types.is_dictionary(t) for t in out.schema.types)
        why = why_not_open(n, budget, writer_bytes, row_bytes, values if kept else 0)
    runs = None if why is None else lifecycle.make(RUNS_PREFIX, spill_dir)
    if runs is None:
        logger.info("open files: every partition's file takes row groups as the input is read (%d partitions, "
                    "budget %s)", n, format_size(budget))
    else:
        logger.info("sorted runs in %s, each partition written whole at the end (%d partitions): %s", runs, n, why)
    try:
        with executor(threads, "shuffle_kit-partition") as pool:
            sink: _OpenFiles | _SortedRuns = (
                _OpenFiles(pool, out, n, budget, written, writer_bytes) if runs is None
                else _SortedRuns(pool, out, n, budget, written, runs, threads)
            )
            inflight: deque[tuple[int, Future]] = deque()
            try:
                for index, chunk in enumerate(chunks):
                    inflight.append((index, pool.submit(sink.prepare, chunk, ids_of, n)))
                    del chunk
                    if len(inflight) >= min(threads, MAX_IN_FLIGHT):
                        i, future = inflight.popleft()
                        sink.add(i, *future.result())
                while inflight:
                    i, future = inflight.popleft()
                    sink.add(i, *future.result())
                rows = sink.finish()
                if sizes is not None:
                    sizes[:] = sink.partition_rows
                return rows
            except BaseException:
                for _, future in inflight:
                    future.cancel()
                sink.abort()
                raise
    finally:
        if runs is not None:
            lifecycle.remove(runs)
