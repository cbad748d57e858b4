"""``merge``: a join larger than memory, as two hash shuffles joined a partition pair at a time.

Both sides go through :func:`~shuffle_kit.shuffle` with the same number of partitions and
the same hash of their key columns (:mod:`shuffle_kit.kernels.hashing` hashes values, not
storage types, so keys pandas would join, ``int64`` with ``Int64`` or ``float64``, every
string type, a categorical with its values, land in the same partition); partition ``i``
of the left is then joined with partition ``i`` of the right by pandas' ``merge``
(:mod:`shuffle_kit.kernels.joins`), one pair in memory at a time.

Two pandas DataFrames that together fit the memory of one pair (below) are not shuffled:
they are the one pair, joined as pandas' ``merge`` joins them (:meth:`Join.join`; a join
that fits is not a larger-than-memory join: DuckDB and polars also partition only what
does not fit).

A side that is already a :class:`~shuffle_kit.ShuffleResult` of the documented hash
(``partitioner='hash'``) on exactly that side's join keys, in their order, is co-partitioned
with anything else hashed so: it is taken as it is (:class:`Reused`, never closed by the
join: the user owns it) and only the other side is shuffled, into its partition count; two
such results of the same count are joined without any shuffle. A result on other keys, in
another count than ``npartitions`` asks for (or than a reused left's), or of another
partitioner is shuffled again as any input is. So is the output of the partition job
(``shuffle-kit partition``, :func:`shuffle_kit.partition`) given as a side: paths, a glob
or a directory (local or an object store's) whose every file records that hash on exactly
that side's keys, in order, and one partition count
(:mod:`shuffle_kit.io.provenance`, read by :mod:`shuffle_kit.io.partitioned`) is read file
by file as its partitions (:class:`~shuffle_kit.io.partitioned.PartitionedFiles`, which
checks that the rows it reads are of the partition their file's record names); any file
without that record (CSV, by value, by range, another run's count) means a shuffle.

Memory: each side's store keeps a quarter of ``memory_limit`` in memory (the rest spills
to a temporary directory under ``tmp``, as do the stores of pairs split again), and a pair
whose two sides together hold more than an eighth of it (Arrow's bytes) is not read whole:
its pieces are shuffled again into smaller pairs with another seed of the hash, as many
times as needed (:data:`MAX_RESPLITS`). A pair that splitting no longer shrinks holds one
key with too many rows, perhaps on both sides: it is joined block by block
(:mod:`shuffle_kit.kernels.block_join`), never by loading a side whole. Its smaller side is
read once, in blocks of half a pair's share (and no more rows of one key than a step may
join); for each block the larger side is streamed again, piece by piece (read an eighth of
a pair at a time from its store), and each piece is cut so that its join with the block
takes at most a quarter of a pair's share (a single row at least). A smaller side that
fits is one block, so the larger side is read once; a key hot on both sides costs a read of
the larger side per block. Rows left unmatched (left, right, outer joins) come out once: a
block's after the whole larger side went by, the larger side's during the last block's pass
(a bit per row remembers what any block matched). Row widths are the pair's averages
(Arrow's bytes), so a pair of rows of very different widths is held to the budget only
roughly. Every key of such a pair whose rows on both sides take more than a pair's share,
and at least the one with the most rows, is named with its rows on each side in
:attr:`MergeResult.skew`.

The dtypes of a pair depend on its rows (an ``int64`` column of the side that may be
missing becomes ``float64`` only where a row is missing), so for a left, right or outer
join whose columns could change this way, a first pass over the key columns finds whether
any row is unmatched, and every pair is cast to the whole join's dtypes.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from ..byte_sizes import check_memory_limit, format_size, parse_size
from ..defaults import CHUNK_BYTES, default_npartitions, shuffle_memory_limit
from ..errors import ArgumentTypeError, JobError, PartitionIndexError
from ..io import polars_frames
from ..io.partitioned import PartitionedFiles, recognise
from ..io.readers import ReadOptions, open_source
from ..kernels.arrow_join import ArrowJoin
from ..kernels.block_join import join_blocks
from ..kernels.hashing import HASH_VERSION, partition_ids
from ..kernels.joins import HOWS, Found, Join, resolve_keys
from ..kernels.key_counts import KeyCounts, hot_keys
from ..kernels.keys import check_npartitions
from ..limits import resolve_threads
from ..partition_sizes import HotKey
from .api import shuffle
from .result import ShuffleResult

# times a pair may be split again before its largest key is taken to be one key
MAX_RESPLITS = 3
# pairs read together are about this many bytes at most (one read of many small ones)
BATCH_BYTES = 32 * 2**20


def _seeded(seed: int) -> Any:
    def ids(table: pa.Table, fields: list, n: int) -> np.ndarray:
        return partition_ids(table, fields, n, seed=seed)

    return ids


def _known(data: Any, read: ReadOptions) -> tuple[list | None, int | None]:
    """The columns and in-memory bytes of an input, when they are known without reading
    it (a frame, a table, files); (None, None) for a stream that can be read only once."""
    in_memory = isinstance(data, (pd.DataFrame, pa.Table)) or polars_frames.is_polars_frame(data)
    if isinstance(data, Iterator) or hasattr(data, "__arrow_c_stream__") and not in_memory:
        return None, None
    try:
        source = open_source(data, 2**20, read=read)
    except Exception:  # shuffle() reports what is wrong with it, in its own words
        return None, None
    return source.columns, source.nbytes


class Side(Protocol):
    """What a join reads of each side: a :class:`~shuffle_kit.ShuffleResult`, or a frame
    held whole (:class:`Whole`)."""

    npartitions: int

    @property
    def sizes(self) -> list[int]: ...
    @property
    def nbytes(self) -> list[int]: ...
    def read(self, indices: Sequence[int]) -> list[pd.DataFrame]: ...
    def pieces(self, i: int, max_bytes: int = ...) -> Iterator[pd.DataFrame]: ...
    def partition(self, i: int) -> pd.DataFrame: ...
    def empty(self) -> pd.DataFrame: ...
    def close(self) -> None: ...


class TableSide(Side, Protocol):
    """A side that can also give its partitions as Arrow tables (the join job's, which
    are Arrow files): what :class:`MergeResult` reads when it joins pairs as Arrow."""

    def read_tables(self, indices: Sequence[int]) -> list[pa.Table]: ...


class Whole:
    """A DataFrame already in memory as the one partition of a side: a join of two frames
    that fit the memory of one pair needs no shuffle (pandas' own merge of the two)."""

    npartitions = 1

    def __init__(self, frame: pd.DataFrame, nbytes: int):
        self.frame = frame
        self._nbytes = nbytes

    @property
    def sizes(self) -> list[int]:
        return [len(self.frame)]

    @property
    def nbytes(self) -> list[int]:
        return [self._nbytes]

    def read(self, indices: Sequence[int]) -> list[pd.DataFrame]:
        return [self.partition(i) for i in indices]

    def pieces(self, i: int, max_bytes: int = 64 * 2**20) -> Iterator[pd.DataFrame]:
        if len(self.frame):
            yield self.partition(i)

    def partition(self, i: int) -> pd.DataFrame:
        if i not in (0, -1):
            raise PartitionIndexError(f"partition {i} out of range for 1 partition")
        return self.frame

    def empty(self) -> pd.DataFrame:
        return self.frame.iloc[:0]

    def close(self) -> None:
        pass


class Reused:
    """A user's hash-partitioned :class:`~shuffle_kit.ShuffleResult` taken as a side as it
    is: its partitions read without an index (as a shuffle with ``keep_index=False`` reads
    them), and :meth:`close` leaves it open (the user closes it).

    >>> import pandas as pd, shuffle_kit
    >>> parts = shuffle_kit.shuffle(pd.DataFrame({'k': [1, 2]}, index=[7, 8]), 'k', 2, progress=False)
    >>> side = Reused(parts)
    >>> side.close(); side.partition(0).index.tolist(), parts.partition(0).index.tolist()
    ([0], [8])
    >>> parts.close()
    """

    def __init__(self, result: ShuffleResult):
        self.result = result
        self.npartitions = result.npartitions

    @property
    def sizes(self) -> list[int]:
        return self.result.sizes

    @property
    def nbytes(self) -> list[int]:
        return self.result.nbytes

    def read(self, indices: Sequence[int]) -> list[pd.DataFrame]:
        return [_unindexed(f) for f in self.result.read(indices)]

    def pieces(self, i: int, max_bytes: int = 64 * 2**20) -> Iterator[pd.DataFrame]:
        return (_unindexed(f) for f in self.result.pieces(i, max_bytes))

    def partition(self, i: int) -> pd.DataFrame:
        return _unindexed(self.result.partition(i))

    def empty(self) -> pd.DataFrame:
        return _unindexed(self.result.empty())

    def close(self) -> None:
        pass


TAKEN = (Reused, PartitionedFiles)  # the sides taken as they are: never shuffled by the join


def _unindexed(frame: pd.DataFrame) -> pd.DataFrame:
    # a kept index is no column of the join (pandas' merge on columns drops it)
    return frame if type(frame.index) is pd.RangeIndex else frame.reset_index(drop=True)


def _taken(data: Any, result: ShuffleResult | None, keys: list, read: ReadOptions,
           piece_bytes: int) -> Reused | PartitionedFiles | None:
    """A side hash-partitioned on exactly ``keys`` in their order, taken as it is: a user's
    shuffle result (``result``), or the partition job's files recognised by their records
    (:func:`~shuffle_kit.io.partitioned.recognise`); None for anything else."""
    if result is not None:
        return Reused(result) if result.on == keys else None
    return recognise(data, keys, hash_version=HASH_VERSION, read=read, piece_bytes=piece_bytes, ids=partition_ids)


def _reusable(data: Any) -> ShuffleResult | None:
    """``data`` if it is a result of the documented hash on columns (not index levels)."""
    if isinstance(data, ShuffleResult) and data.partitioner == "hash" and all(
            k in data.empty().columns for k in data.on):
        return data
    return None


class _Pair(NamedTuple):
    """Partition ``i`` of two shuffle results: their rows and bytes."""

    left: Side
    right: Side
    i: int
    left_rows: int
    right_rows: int
    left_bytes: int
    right_bytes: int

    @property
    def nbytes(self) -> int:
        return self.left_bytes + self.right_bytes

    def joins_rows(self, how: str) -> bool:
        """Whether the pair's join may have rows."""
        return {"inner": self.left_rows and self.right_rows, "left": self.left_rows,
                "right": self.right_rows}.get(how, self.left_rows or self.right_rows) > 0


def _pairs_of(left: Side, right: Side) -> list[_Pair]:
    return [_Pair(left, right, *row) for row in zip(range(left.npartitions), left.sizes, right.sizes, left.nbytes,
                                                     right.nbytes)]


class MergeResult:
    """The joined rows of :func:`merge`, joined one partition pair at a time when asked for.

    Iterating gives DataFrames in partition order: one per pair of partitions with rows
    (pairs that yield no rows are skipped), or several for a pair split again for skew.
    Within a pair the rows are in pandas' ``merge`` order for that pair (``sort=False``:
    the left's order for inner and left joins, the right's for right joins; an outer join
    orders the pair's keys as pandas does); with ``nulls_equal=False`` a pair's rows with
    null keys come after its others. A pair joined in chunks (:attr:`skew`) gives its rows
    block by block of its smaller side, in the larger side's order within a block.
    ``to_pandas()`` concatenates them (``ignore_index``): pandas' ``merge`` up to row
    order, with its values and dtypes.

    Use it as a context manager (or call :meth:`close`) to remove the temporary stores.
    ``reused``: (left, right), whether each side was taken as it was, without a shuffle: a
    user's shuffle result (the join does not close it) or the partition job's files.

    >>> import pandas as pd, shuffle_kit
    >>> left = pd.DataFrame({'k': [1, 2, 2], 'a': [10, 20, 30]})
    >>> right = pd.DataFrame({'k': [2, 3], 'b': ['x', 'y']})
    >>> with shuffle_kit.merge(left, right, on='k', how='outer', npartitions=2, progress=False) as joined:
    ...     joined.to_pandas().sort_values(['k', 'a']).values.tolist()
    [[1, 10.0, nan], [2, 20.0, 'x'], [2, 30.0, 'x'], [3, nan, 'y']]
    """

    def __init__(
        self, left: Side, right: Side, join: Join, *, pair_bytes: int, store_bytes: int,
        threads: int | None, tmp: str | None = None, arrow: ArrowJoin | None = None,
    ):
        self.left = left
        self.right = right
        self.join = join
        self.npartitions = left.npartitions
        self.reused = (isinstance(left, TAKEN), isinstance(right, TAKEN))
        self.pair_bytes = pair_bytes
        self.store_bytes = store_bytes
        self.threads = threads
        self.tmp = tmp  # where pairs split again spill (None: the system's temporary directory)
        # pairs that fit joined as Arrow tables (both sides then TableSides; see pairs())
        self.arrow = arrow
        # the stored pieces of a pair too large for memory are read this many bytes at a time
        self.read_bytes = max(1, pair_bytes // 8)
        self._hot: dict[int, list[HotKey]] = {}  # pair -> its keys joined in chunks
        self._variants: list[pd.DataFrame] | None = None
        self._sizes: list[int] | None = None

    # -- the pairs --------------------------------------------------------------------------
    def _pairs(self) -> Iterator[tuple[int, Iterator[pd.DataFrame]]]:
        """(i, the joined frames of pair i) for every pair with rows, in order. Pairs that
        fit are read in batches, one batch ahead on a thread, and joined on ``threads``
        workers (pandas' merge releases the GIL in its hash tables) while the pairs in
        flight hold at most a side's share of memory; the order is the pairs' whatever
        the thread count."""
        pairs = _pairs_of(self.left, self.right)
        workers = resolve_threads(self.threads)
        inflight: deque[tuple[int, Future, int]] = deque()
        held = 0

        def done() -> tuple[int, Iterator[pd.DataFrame]]:
            nonlocal held
            i, future, nbytes = inflight.popleft()
            held -= nbytes
            return i, iter([future.result()])

        with ThreadPoolExecutor(workers + 1, thread_name_prefix="shuffle_kit-merge") as pool:
            def read_ahead(batch: Any) -> Future | None:
                return pool.submit(self._read, batch) if batch is not None and batch[0] is not None else None

            batches = iter(self._batches(pairs))
            batch = next(batches, None)
            ahead = read_ahead(batch)
            while batch is not None:
                following = next(batches, None)
                if batch[0] is None:  # a pair too large: split again, or joined in chunks
                    while inflight:
                        yield done()
                    ahead = read_ahead(following)
                    yield batch[1].i, self._large(batch[1], 1, batch[1].i)
                else:
                    assert ahead is not None
                    frames = ahead.result()
                    ahead = read_ahead(following)
                    for i, lf, rf in frames:
                        nbytes = pairs[i].nbytes
                        while inflight and (len(inflight) >= workers or held + nbytes > self.store_bytes):
                            yield done()
                        inflight.append((i, pool.submit(self._join_pair, lf, rf), nbytes))
                        held += nbytes
                    del frames
                batch = following
            while inflight:
                yield done()

    def _batches(self, pairs: list[_Pair]) -> Iterator[Any]:
        """Runs of consecutive pairs that fit, about ``BATCH_BYTES`` each, as ``(indices,
        None)``; a pair too large for memory alone as ``(None, pair)``."""
        run: list[int] = []
        size = 0
        for pair in pairs:
            if not pair.joins_rows(self.join.how):
                continue
            if pair.nbytes > self.pair_bytes:
                if run:
                    yield run, None
                    run, size = [], 0
                yield None, pair
                continue
            if run and size + pair.nbytes > min(BATCH_BYTES, self.pair_bytes):
                yield run, None
                run, size = [], 0
            run.append(pair.i)
            size += pair.nbytes
        if run:
            yield run, None

    def _read(self, batch: tuple[list[int], None]) -> list[tuple[int, Any, Any]]:
        indices = batch[0]
        if self.arrow is not None:
            tables = cast(TableSide, self.left), cast(TableSide, self.right)
            return list(zip(indices, tables[0].read_tables(indices), tables[1].read_tables(indices)))
        return list(zip(indices, self.left.read(indices), self.right.read(indices)))

    def _join_pair(self, left: Any, right: Any) -> pd.DataFrame | pa.Table:
        """The join of a pair read whole: as Arrow if it was read so, else by pandas."""
        if self.arrow is None:
            return self.join.join(left, right)
        return self.arrow.join(left, right)

    def _large(self, pair: _Pair, seed: int, top: int) -> Iterator[pd.DataFrame]:
        """The joined frames of a pair larger than a pair's share of memory (part of pair
        ``top``): its pieces shuffled again with hash seed ``seed`` into pairs that fit (and
        those that still do not, again), or, when splitting no longer shrinks it, joined in
        chunks."""
        if seed == 1:
            self._hot[top] = []  # (found again when the pairs are read again)
        total = pair.nbytes
        n = min(1 << 12, 2 * math.ceil(total / max(1, self.pair_bytes)))
        if seed > MAX_RESPLITS or n < 2:
            yield from self._chunked(pair, top)
            return
        keys = (self.join.left_on, self.join.right_on)
        sides = []
        unshrunk = False
        try:
            for result, on in zip((pair.left, pair.right), keys):
                pieces = result.pieces(pair.i, self.read_bytes)
                first = next(pieces, None)
                sides.append(shuffle(
                    itertools.chain([result.empty() if first is None else first], pieces), on, n,
                    memory_limit=max(2**20, self.store_bytes // 2), partitioner=_seeded(seed), keep_index=False,
                    progress=False, threads=self.threads, tmp=self.tmp,
                ))
            left, right = sides
            subs = _pairs_of(left, right)
            # one key (or keys that always collide): joined in chunks, once the stores of
            # the split are gone
            unshrunk = max(p.nbytes for p in subs) > 0.9 * total
            for sub in [] if unshrunk else subs:
                if not sub.joins_rows(self.join.how):
                    continue
                if sub.nbytes > self.pair_bytes:
                    yield from self._large(sub, seed + 1, top)
                else:
                    yield self.join.join(left.partition(sub.i), right.partition(sub.i))
        finally:
            for side in sides:
                side.close()
        if unshrunk:
            yield from self._chunked(pair, top)

    def _chunked(self, pair: _Pair, top: int) -> Iterator[pd.DataFrame]:
        """A pair holding one key with too many rows, joined block by block (module
        docstring): its smaller side read once in blocks that fit, its larger side streamed
        piece by piece against each block. The keys are counted as the pieces go by
        (:attr:`skew`)."""
        left_big = pair.left_bytes >= pair.right_bytes
        big, small = (pair.left, pair.right) if left_big else (pair.right, pair.left)
        big_rows, small_rows = (pair.left_rows, pair.right_rows) if left_big else (pair.right_rows, pair.left_rows)
        big_bytes, small_bytes = (pair.left_bytes, pair.right_bytes) if left_big else (pair.right_bytes,
                                                                                         pair.left_bytes)
        big_keys, small_keys = ((self.join.left_on, self.join.right_on) if left_big
                                else (self.join.right_on, self.join.left_on))
        big_width, small_width = big_bytes / max(1, big_rows), small_bytes / max(1, small_rows)
        # a step holds a block of the smaller side (half a pair's share at most) and its join
        # with a cut of a streamed piece (a quarter; pandas' merge keeps two row numbers an
        # output row besides); a block holds no more rows of a key than a step's, so that
        # one streamed row's join fits too
        out_rows = max(1, int(self.pair_bytes // 4 // (big_width + small_width + 16)))
        block_rows = max(1, int(self.pair_bytes // 2 // max(1.0, small_width)))
        counted, other = KeyCounts(), KeyCounts()
        passes = 0

        def stream() -> Iterator[pd.DataFrame]:
            nonlocal passes
            passes += 1
            pieces = big.pieces(pair.i, self.read_bytes)
            return counted.tally(pieces, big_keys) if passes == 1 else pieces

        yield from join_blocks(
            self.join, other.tally(small.pieces(pair.i, self.read_bytes), small_keys), block_rows, stream,
            "right" if left_big else "left", (pair.left.empty(), pair.right.empty()), out_rows)
        for key, rows, other_rows in hot_keys(counted, other, (big_width, small_width), self.pair_bytes):
            lrows, rrows = (rows, other_rows) if left_big else (other_rows, rows)
            self._hot.setdefault(top, []).append(HotKey(top, tuple(self.join.left_on), key, lrows, rrows))

    @property
    def skew(self) -> list[HotKey]:
        """The keys joined in chunks so far, in pair order (most rows first within a pair),
        each with its rows on both sides: in every pair that splitting again could not
        shrink (joined block by block), each key whose rows on both sides take more than a
        pair's share of memory, and the pair's key with the most rows on its larger side
        in any case. They are what makes a pair, and its file, large. Read the rows first.

        >>> import pandas as pd, shuffle_kit
        >>> left = pd.DataFrame({'k': [7] * 150_000 + [1, 2], 'a': range(150_002)})
        >>> right = pd.DataFrame({'k': [7, 1], 'b': [0, 1]})
        >>> with shuffle_kit.merge(left, right, on='k', memory_limit='1MiB', npartitions=2, progress=False) as joined:
        ...     len(joined.to_pandas()), [hot.warning() for hot in joined.skew]
        (150001, ['skew: key k=7 holds 150,000 left rows and 1 right row (pair 1, joined in chunks)'])
        """
        return [hot for i in sorted(self._hot) for hot in self._hot[i]]

    # -- dtypes ----------------------------------------------------------------------------
    def variants(self) -> list[pd.DataFrame]:
        """The joins of unmatched rows the whole join holds (their dtypes are cast into
        every pair's: :meth:`Join.conform`); a first pass over the key columns finds them,
        only for joins whose dtypes could depend on it."""
        if self._variants is not None:
            return self._variants
        if isinstance(self.left, Whole):  # one pair, the whole join: pandas' own dtypes
            self._variants = []
            return self._variants
        lrow, rrow = self._first_row(self.left), self._first_row(self.right)
        matched = self.join.matched(lrow, rrow)
        possible = self.join.variants(lrow, rrow, True, True)
        base = (matched[0] if matched else self.join.join(lrow.iloc[:0], rrow.iloc[:0])).dtypes
        if all(v.dtypes.equals(base) for v in possible):
            self._variants = matched
        else:
            found = self._found()
            # a matched row's dtypes only where some row matches: pandas gives a join
            # without one the dtypes of its unmatched rows alone
            self._variants = (matched if found.matched else []) + self.join.variants(
                lrow, rrow, found.left_only, found.right_only)
        return self._variants

    def _first_row(self, side: Side) -> pd.DataFrame:
        for i in np.flatnonzero(side.sizes).tolist():
            for piece in side.pieces(i):
                if len(piece):
                    return piece.iloc[:1].reset_index(drop=True)
        return side.empty()

    def _found(self) -> Found:
        """Whether the whole join holds matched rows, left rows without a match and right
        rows without one (key columns only, a pair at a time, until all are known)."""
        want_left = self.join.how in ("left", "outer")
        want_right = self.join.how in ("right", "outer")
        matched = found_left = found_right = False
        for i in range(self.npartitions):
            lsize, rsize = self.left.sizes[i], self.right.sizes[i]
            if not lsize and not rsize:
                continue
            if not rsize or not lsize:
                found_left, found_right = found_left or bool(lsize), found_right or bool(rsize)
            else:
                f = self.join.found(_keys(self.left, i, self.join.left_on), _keys(self.right, i, self.join.right_on))
                matched, found_left = matched or f.matched, found_left or f.left_only
                found_right = found_right or f.right_only
            if matched and (found_left or not want_left) and (found_right or not want_right):
                break
        return Found(matched, found_left, found_right)

    # -- reading ---------------------------------------------------------------------------
    def pairs(self) -> Generator[tuple[int, Iterator[pd.DataFrame]], None, None]:
        """``(i, the joined frames of pair i)`` for every pair that may have rows, in pair
        order whatever the thread count, each frame with rows and in the whole join's dtypes
        (one frame for a pair that fits; several for a pair split again or joined in chunks).
        Read a pair's frames before asking for the next pair. Given an ``arrow`` plan (the
        join job: sides of Arrow files, read and written as Arrow), a pair that fits comes as
        one ``pyarrow.Table`` in the plan's schema.

        >>> import pandas as pd, shuffle_kit
        >>> left, right = pd.DataFrame({'k': [1, 2, 3]}), pd.DataFrame({'k': [2, 3, 4]})
        >>> with shuffle_kit.merge(left, right, on='k', npartitions=2, progress=False) as joined:
        ...     sum(len(f) for _, frames in joined.pairs() for f in frames)
        2
        """
        variants = self.variants()
        for i, frames in self._pairs():
            yield i, (frame if isinstance(frame, pa.Table) else self.join.conform(frame, variants)
                      for frame in frames if len(frame))

    def __iter__(self) -> Iterator[pd.DataFrame]:
        variants = self.variants()
        sizes = np.zeros(self.npartitions, dtype=np.int64)
        for i, frames in self._pairs():
            for frame in frames:
                sizes[i] += len(frame)
                if len(frame):
                    yield self.join.conform(frame, variants)
        self._sizes = [int(s) for s in sizes]

    def iter_polars(self) -> Iterator[Any]:
        """The joined frames as ``polars.DataFrame`` (needs polars)."""
        polars_frames.require("iter_polars()")
        return (polars_frames.to_polars(pa.Table.from_pandas(f, preserve_index=False)) for f in self)

    def empty(self) -> pd.DataFrame:
        """The joined columns with their dtypes, without rows (pandas' dtypes for a join
        without rows depend on which sides have rows: a row of each that has is joined)."""
        frame = self.join.join(self._first_row(self.left), self._first_row(self.right)).iloc[:0]
        return self.join.conform(frame, self.variants())

    def to_pandas(self) -> pd.DataFrame:
        """Every joined row as one DataFrame (needs it all in memory): ``pandas.merge`` of
        the two sides, up to row order."""
        if isinstance(self.left, Whole) and isinstance(self.right, Whole):  # pandas' merge of the frames
            return self.join.join(self.left.frame, self.right.frame)
        frames = list(self)
        if not frames:
            return self.empty()
        if len(frames) == 1:
            return frames[0].reset_index(drop=True)
        return pd.concat(frames, ignore_index=True)

    def to_arrow(self) -> pa.Table:
        """Every joined row as one ``pyarrow.Table``."""
        return pa.Table.from_pandas(self.to_pandas(), preserve_index=False)

    def to_polars(self) -> Any:
        """Every joined row as one ``polars.DataFrame`` (needs polars)."""
        polars_frames.require("to_polars()")
        return polars_frames.to_polars(self.to_arrow())

    def write_parquet(self, directory: Any, **kwargs: Any) -> list[str]:
        """Write the rows of pair ``i`` to ``directory/part-{i:05d}.parquet`` (a pair split
        for skew as several row groups of its file), one pair in memory at a time; pairs
        without rows write no file. Return the paths; ``kwargs`` go to ``pq.ParquetWriter``."""
        import os

        import pyarrow.parquet as pq

        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        variants = self.variants()
        paths = []
        sizes = np.zeros(self.npartitions, dtype=np.int64)
        for i, frames in self._pairs():
            writer = None
            path = os.path.join(directory, f"part-{i:05d}.parquet")
            try:
                for frame in frames:
                    if not len(frame):
                        continue
                    sizes[i] += len(frame)
                    frame = self.join.conform(frame, variants)
                    if writer is None:
                        table = pa.Table.from_pandas(frame, preserve_index=False)
                        schema = table.schema
                        writer = pq.ParquetWriter(path, schema, **kwargs)
                    else:  # the file's types (a column all null in one piece is typed by the first)
                        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                    writer.write_table(table)
            finally:
                if writer is not None:
                    writer.close()
                    paths.append(path)
        self._sizes = [int(s) for s in sizes]
        return paths

    @property
    def sizes(self) -> list[int]:
        """Joined rows per partition pair (joins every pair once, a pair at a time, the
        first time it is asked for without the rows having been read)."""
        if self._sizes is None:
            sizes = np.zeros(self.npartitions, dtype=np.int64)
            for i, frames in self._pairs():
                for frame in frames:
                    sizes[i] += len(frame)
            self._sizes = [int(s) for s in sizes]
        return list(self._sizes)

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Remove both sides' temporary stores (a reused shuffle result stays open)."""
        self.left.close()
        self.right.close()

    def __enter__(self) -> MergeResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<MergeResult {self.join.how} on {self.join.left_on!r}"
            f"{'' if self.join.on else f' = {self.join.right_on!r}'}: {self.npartitions} partition pairs, "
            f"{sum(self.left.sizes):,} x {sum(self.right.sizes):,} rows, "
            f"{format_size(sum(self.left.nbytes) + sum(self.right.nbytes))}"
            f"{''.join(f', {side} reused' for side, r in zip(('left', 'right'), self.reused) if r)}>"
        )


def _keys(side: Side, i: int, keys: list) -> pd.DataFrame:
    """The key columns of partition ``i``, read piece by piece."""
    frames = [piece[keys] for piece in side.pieces(i)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)


def merge(
    left: Any,
    right: Any,
    on: Any = None,
    *,
    left_on: Any = None,
    right_on: Any = None,
    how: str = "inner",
    suffixes: tuple[str | None, str | None] = ("_x", "_y"),
    nulls_equal: bool = True,
    npartitions: int | None = None,
    memory_limit: int | str | None = None,
    progress: bool | None = None,
    chunk_bytes: int | str | None = None,
    threads: int | None = None,
    read: ReadOptions | None = None,
    tmp: str | None = None,
) -> MergeResult:
    """Join ``left`` and ``right`` on key columns as ``pandas.merge`` does, larger than memory.

    Both sides are hash-partitioned by their keys into ``npartitions`` pairs of partitions
    (two :func:`~shuffle_kit.shuffle` runs with the same hash), and the pairs are joined
    one at a time when the result is read (:class:`MergeResult`). Concatenated, the result
    is ``pandas.merge(left, right, on=..., how=..., suffixes=...)`` up to row order: the
    same rows, values, dtypes and column names; null keys (None, NaN, NaT, NA) match each
    other as in pandas, or nothing with ``nulls_equal=False`` (SQL's rule).

    Parameters
    ----------
    left, right : anything :func:`~shuffle_kit.shuffle` takes (frames, Arrow, polars,
        Parquet/CSV paths and datasets, streams); their index is not kept, as pandas'
        ``merge`` on columns does not keep it. A side already hash-partitioned on its keys
        (a :class:`~shuffle_kit.ShuffleResult` of ``partitioner='hash'``, or the files of
        :func:`shuffle_kit.partition` in Parquet or Arrow, recognised by the record each
        carries) is taken as it is, and the other side shuffled into its partition count
        (module docstring; :attr:`MergeResult.reused` says which).
    on, left_on, right_on : key columns as pandas has them: ``on`` (both sides), or
        ``left_on`` and ``right_on`` (each side keeps its own columns), or none (the
        columns both sides have; the sides' columns must be known: a frame, table or files).
        Keys of different dtypes are joined where pandas joins them (``int64`` with
        ``Int64`` or ``float64``, every string type); where pandas refuses (``int64`` with
        ``str``) a :class:`~shuffle_kit.errors.JobError` names both columns.
    how : 'inner', 'left', 'right' or 'outer'.
    suffixes : added to the column names both sides have, as in pandas.
    nulls_equal : whether null keys match each other (pandas: True).
    npartitions : pairs of partitions; default: a side taken as it is gives its count (the
        left's first); else enough for a pair to take an eighth of
        ``memory_limit``, and one per 100 MB of both sides when their size is known; two
        DataFrames within an eighth of ``memory_limit`` are one pair, not shuffled.
    memory_limit : bytes (or '2GB'): each side's store keeps a quarter of it in memory, and
        a pair larger than an eighth of it is split again (module docstring). Default: as
        for :func:`~shuffle_kit.shuffle`.
    progress, chunk_bytes, threads, read : as for :func:`~shuffle_kit.shuffle`.
    tmp : the directory both sides' stores, and pairs split again, spill to (default: the
        system's temporary directory), as :func:`~shuffle_kit.shuffle`'s ``tmp``.

    >>> import pandas as pd
    >>> flights = pd.DataFrame({'tailnum': ['N1', 'N2', 'N1', None], 'dep': [5, 7, 9, 1]})
    >>> planes = pd.DataFrame({'tailnum': ['N1', 'N2'], 'seats': [150, 90]})
    >>> with merge(flights, planes, on='tailnum', how='left', progress=False) as joined:
    ...     joined.to_pandas().sort_values('dep')['seats'].tolist()
    [nan, 150.0, 90.0, 150.0]

    The partition job's output on the join keys is joined as it is, partition by partition:

    >>> import os, shutil, tempfile, shuffle_kit
    >>> d = tempfile.mkdtemp()
    >>> flights.to_parquet(os.path.join(d, 'flights.parquet'))
    >>> _ = shuffle_kit.partition(os.path.join(d, 'flights.parquet'), 'tailnum', os.path.join(d, 'by_tail'),
    ...                           npartitions=2, progress=False)
    >>> with merge(os.path.join(d, 'by_tail'), planes, on='tailnum', progress=False) as joined:
    ...     joined.reused, joined.npartitions, sorted(joined.to_pandas()['dep'])
    ((True, False), 2, [5, 7, 9])
    >>> shutil.rmtree(d)
    """
    if how not in HOWS:
        raise JobError(f"how must be one of {', '.join(map(repr, HOWS))}, not {how!r}")
    if not isinstance(suffixes, (tuple, list)) or len(suffixes) != 2:
        raise ArgumentTypeError(f"suffixes must be a pair of strings (or None), not {suffixes!r}")
    if not isinstance(nulls_equal, bool):
        raise ArgumentTypeError(f"nulls_equal must be True or False, not {nulls_equal!r}")
    check_npartitions(npartitions)
    limit = shuffle_memory_limit() if memory_limit is None else check_memory_limit(memory_limit)
    read = read or ReadOptions()
    lreused, rreused = _reusable(left), _reusable(right)
    lcolumns, lbytes = _known(left, read) if lreused is None else (list(lreused.empty().columns), sum(lreused.nbytes))
    rcolumns, rbytes = _known(right, read) if rreused is None else (list(rreused.empty().columns), sum(rreused.nbytes))
    if on is None and left_on is None and right_on is None and (lcolumns is None or rcolumns is None):
        raise JobError("on: give the key columns (the columns of a stream are not known before it is read)")
    lkeys, rkeys, given_on = resolve_keys(on, left_on, right_on, lcolumns, rcolumns)
    join = Join(lkeys, rkeys, how, tuple(suffixes), on=given_on, nulls_equal=nulls_equal)

    store_bytes = max(2**20, limit // 4)
    pair_bytes = max(2**20, limit // 8)
    if npartitions is None and isinstance(left, pd.DataFrame) and isinstance(right, pd.DataFrame) and (
            (lbytes or 0) + (rbytes or 0) <= pair_bytes):
        # two frames that fit one pair: pandas' merge of the frames themselves
        sides: tuple[Side, Side] = (Whole(left, lbytes or 0), Whole(right, rbytes or 0))
        join.check(sides[0].empty(), sides[1].empty())
        return MergeResult(*sides, join, pair_bytes=pair_bytes, store_bytes=store_bytes, threads=threads, tmp=tmp)
    # a side already hashed on its keys (a user's shuffle result, the partition job's files)
    # is co-partitioned with the other side shuffled into its count: it is taken as it is
    piece_bytes = parse_size(chunk_bytes) if chunk_bytes is not None else min(CHUNK_BYTES, max(2**20, store_bytes // 8))
    ltaken = _taken(left, lreused, lkeys, read, piece_bytes)
    rtaken = _taken(right, rreused, rkeys, read, piece_bytes)
    if npartitions is None:
        npartitions = next((side.npartitions for side in (ltaken, rtaken) if side is not None), None)
    if ltaken is not None and ltaken.npartitions != npartitions:
        ltaken = None
    if rtaken is not None and rtaken.npartitions != npartitions:
        rtaken = None
    if npartitions is None:
        known = (lbytes or 0) + (rbytes or 0)
        npartitions = max(default_npartitions(known or None), math.ceil(known / pair_bytes)) if known else None
    kwargs: dict[str, Any] = dict(memory_limit=store_bytes, progress=progress, keep_index=False,
                                  chunk_bytes=chunk_bytes, threads=threads, read=read, tmp=tmp)
    left_parts: Side = ltaken if ltaken is not None else shuffle(left, lkeys, npartitions, **kwargs)
    try:
        right_parts: Side = rtaken if rtaken is not None else shuffle(right, rkeys, left_parts.npartitions, **kwargs)
    except BaseException:
        left_parts.close()
        raise
    try:
        join.check(left_parts.empty(), right_parts.empty())
    except BaseException:
        left_parts.close()
        right_parts.close()
        raise
    return MergeResult(left_parts, right_parts, join, pair_bytes=pair_bytes, store_bytes=store_bytes,
                       threads=threads, tmp=tmp)
