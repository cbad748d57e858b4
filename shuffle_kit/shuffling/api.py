"""``shuffle`` and ``groupby_shuffle``: partition frames by key through a store.

The pipeline, per input chunk (:mod:`shuffle_kit.io.readers`): convert to Arrow, hash the
key columns to a partition id (:mod:`shuffle_kit.kernels.hashing`), sort row positions by
id and take the rows once (:mod:`shuffle_kit.kernels.split`),
then append the chunk to the store in ONE call: to the default ``TableBuffer`` as the
sorted table and the rows per partition (nothing per piece), to any other store as one
piece per partition. Worker threads (one per CPU by default) partition that many chunks
at once (Arrow and NumPy release the GIL) while the main thread reads the next chunk and
appends finished ones in input order, so results never depend on the thread count and
memory holds about three chunks more than there are threads, plus what the store keeps
in memory. A DataFrame that fits the memory limit skips the store: it is shuffled whole
(:mod:`.hashed_frame`).
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from ..byte_sizes import check_memory_limit, parse_size
from ..codecs import ArrowIPC, Codec, TableBuffer
from ..defaults import default_npartitions, show_progress, shuffle_memory_limit
from ..errors import ArgumentTypeError, JobError
from ..frames import Piece, tables_to_frame, with_piece
from ..io import polars_frames
from ..io.readers import DEFAULT_CHUNK_BYTES, Chunk, ReadOptions, Source, open_source
from ..kernels.keys import (
    check_columns,
    check_key_types,
    check_npartitions,
    check_partitioner,
    drop_null_keys,
    normalize_on,
    to_table,
)
from ..kernels.ranges import KeyOrder
from ..kernels.split import count_ids, sorted_runs, split
from ..limits import resolve_threads
from ..stores import File, Store
from . import by_range, hashed_frame
from .assign import Partitioner, assign
from .by_range import Converted, RangePlan
from .result import BATCH_BYTES, ShuffleResult

# -- arguments -------------------------------------------------------------------------------




# -- stores ----------------------------------------------------------------------------------


def check_store(store: Any) -> None:
    """Refuse a ``store`` argument :func:`shuffle` cannot write partitions to, before any work.

    >>> from shuffle_kit import Dict, Pickle
    >>> check_store(Dict()); check_store(None)
    >>> try:
    ...     check_store(Pickle(Dict()))
    ... except TypeError as e:
    ...     print(str(e).replace('; ', ';\\n'))
    store: Pickle does not store DataFrames;
    give a store (it gets an ArrowIPC codec) or a codec stack that does
    """
    if store is None or isinstance(store, (str, os.PathLike, Store)):
        return
    if isinstance(store, Codec):
        if not store.stores_frames:
            raise ArgumentTypeError(
                f"store: {type(store).__name__} does not store DataFrames; give a store (it gets an "
                "ArrowIPC codec) or a codec stack that does"
            )
        return
    # a Server is not a store either: it serves one to other processes
    raise ArgumentTypeError(
        f"store must be a shuffle_kit store, a codec stack or a path, not {type(store).__name__}"
    )


def _open_store(store: Any, memory_limit: int, tmp: str | None = None) -> tuple[Codec, list[Callable[[], None]], bool]:
    """(codec, cleanups, owned) for a ``store`` argument :func:`check_store` accepted (the
    default store's directory made under ``tmp``)."""
    if store is None:
        slow = File(dir=tmp)  # a temporary directory, removed by the cleanups below

        def remove() -> None:
            slow.__exit__(None, None, None)  # drop, then remove the directory

        # chunks stay sorted Arrow tables in memory (no encoding, no copy) up to the
        # limit; beyond it the oldest are encoded to the File, a few blocks per chunk
        tables = TableBuffer(slow, memory_limit=memory_limit, empty=True)
        return tables, [remove, tables.drop], True
    if isinstance(store, (str, os.PathLike)):
        return ArrowIPC(File(store)), [], False
    if isinstance(store, Store):
        return ArrowIPC(store), [], False
    return store, [], False


# -- chunks ----------------------------------------------------------------------------------


def _renumber(pieces: dict[int, pa.Table], before: np.ndarray) -> dict[int, pa.Table]:
    """Give each piece of a dropped RangeIndex the rows it will have in its partition,
    so the codec joins them into one RangeIndex 0..n-1."""
    return {p: with_piece(t, Piece.numbered(t.num_rows, int(before[p]))) for p, t in pieces.items()}



# -- the shuffle -------------------------------------------------------------------------------


def shuffle(
    data: Any,
    on: Any,
    npartitions: int | None = None,
    *,
    store: Any = None,
    memory_limit: int | str | None = None,
    progress: bool | None = None,
    partitioner: Partitioner = "hash",
    dropna: bool = False,
    keep_index: bool | None = None,
    chunk_bytes: int | str | None = None,
    threads: int | None = None,
    read: ReadOptions | None = None,
    ascending: bool | Sequence[bool] | None = None,
    na_position: str | None = None,
    tmp: str | None = None,
) -> ShuffleResult:
    """Partition ``data`` by the key columns ``on`` into ``npartitions`` partitions.

    Every row lands in exactly one partition, rows with equal keys share a partition,
    and rows keep their input order within a partition.

    Parameters
    ----------
    data : a DataFrame; an iterable of DataFrames / Arrow tables (streamed, one chunk
        in memory at a time); a ``pyarrow.Table``, ``RecordBatchReader`` or dataset; a
        polars DataFrame or LazyFrame (a LazyFrame streamed in batches, never collected
        whole); any object with ``__arrow_c_stream__`` (read once); or a path, glob or
        list of paths of Parquet, CSV or Arrow files (read in batches).
    on : a column name or a list of names (index level names too).
    npartitions : default: the data's size / 100 MB when known, else 64.
    store : where pieces go: a store (given an ``ArrowIPC`` codec), a codec stack that
        stores DataFrames (its ``stores_frames``), or a path (a ``File`` store there).
        Default: a temporary ``TableBuffer(File())`` keeping up to ``memory_limit``
        bytes of pieces in memory as Arrow tables and spilling the oldest to disk, removed
        when the result is closed or garbage collected. Partition ``i`` is stored under the key ``i``.
    tmp : the directory the default store spills into (a private directory is made in
        it); default: the system's temporary directory (``tempfile``'s: ``TMPDIR``).
    memory_limit : bytes (or '2GB') the default store keeps in memory; also bounds the
        size of the input chunks. At least 1 MiB, as for ``shuffle_kit.partition`` and the
        command line (:func:`~shuffle_kit.byte_sizes.check_memory_limit`). Default: a quarter
        of the memory this process may use (a container's cgroup limit counts, not the
        host's memory), at most 4 GiB.
    progress : a ``tqdm.auto`` bar; None shows it only on a terminal or in a notebook.
    partitioner : ``'hash'`` (the documented hash of :mod:`shuffle_kit.kernels.hashing`), ``'dask'`` (dask's
        own assignment, to be co-partitioned with a dask DataFrame), ``'range'`` (partitions in
        key order: every key of partition ``i`` sorts no later than those of partition ``i + 1``;
        the result's ``boundaries`` are the last key of each partition but the last) or a
        function ``f(table, key_field_names, npartitions) -> ids``. A range shuffle reads the
        input twice when it is in memory (a DataFrame, an Arrow or polars table) and else holds
        its chunks between the passes (in memory up to ``memory_limit``, the rest on disk); its
        boundaries split a sample of ``max(1000, 100 * npartitions)`` keys (the whole input if
        it has no more rows) into partitions of equal rows, a key holding more than a
        partition's share in one partition of its own (:mod:`shuffle_kit.shuffling.by_range`).
    dropna : drop rows whose key has a null (kept, as their own group, by default).
    keep_index : keep a pandas input's index; None keeps it unless it is an unnamed
        RangeIndex.
    chunk_bytes : in-memory size of the chunks the input is cut into.
    threads : chunks partitioned (columns of a frame shuffled whole taken) at once; None:
        the CPUs this process may use (:func:`shuffle_kit.limits.available_cpus`). The
        result is the same for any number.
    read : how files are read (:class:`~shuffle_kit.ReadOptions`: hive partitioning, the
        CSV delimiter), as for :func:`shuffle_kit.partition`.
    ascending, na_position : the order of ``partitioner='range'`` as pandas' ``sort_values``
        has them (default: ascending, nulls and NaN last); refused with another partitioner.

    A pandas DataFrame whose shuffled copy fits ``memory_limit`` (with a copy of its keys
    and ~24 bytes per row), with ``partitioner`` ``'hash'`` or ``'dask'`` and no ``store``,
    is shuffled whole in memory instead (:mod:`~shuffle_kit.shuffling.hashed_frame`): the
    same partitions, its columns taken once in partition order, each partition a slice.

    Through the store, peak memory is about ``threads`` + 3 chunks (one being read, ``threads`` being
    partitioned, one being appended and its encoded pieces) plus ``memory_limit`` plus a
    fixed ~160 MB for the interpreter, Arrow's thread pools and allocator arenas.

    >>> import pandas as pd
    >>> df = pd.DataFrame({'user': ['a', 'b', 'a', 'c'], 'x': [1, 2, 3, 4]})
    >>> parts = shuffle(df, 'user', 3, progress=False)
    >>> [p['x'].tolist() for p in parts]
    [[1, 3], [2], [4]]
    >>> parts.close()
    """
    keys = normalize_on(on)
    workers = resolve_threads(threads)
    check_npartitions(npartitions)
    check_partitioner(partitioner)
    if partitioner != "range" and (ascending is not None or na_position is not None):
        raise JobError("ascending and na_position order the partitions of partitioner='range' only")
    limit = shuffle_memory_limit() if memory_limit is None else check_memory_limit(memory_limit)
    if chunk_bytes is None:
        chunk = int(min(DEFAULT_CHUNK_BYTES, max(2**20, limit // 8)))
    else:
        chunk = parse_size(chunk_bytes)
    check_store(store)
    if store is None and partitioner in ("hash", "dask") and isinstance(data, pd.DataFrame):
        whole = _in_memory(data, keys, npartitions, partitioner, dropna, keep_index, workers, limit, progress)
        if whole is not None:
            return whole

    source = open_source(data, chunk, read=read or ReadOptions())
    check_columns(keys, source.columns)
    chunks = source.chunks()
    # read and check the first chunk before anything is written
    first = next(chunks, None)
    if first is None:
        first = source.schema.empty_table() if source.schema is not None else None
    if first is None:
        raise JobError("the input holds no chunks: nothing to shuffle")
    first_table, fields, renumber = to_table(first, keys, keep_index)
    check_key_types(first_table, fields)
    order = None
    if partitioner == "range":  # a key without an order is refused before anything is written
        order = KeyOrder.of(first_table, fields, True if ascending is None else ascending,
                            "last" if na_position is None else na_position)
    schema = first_table.schema
    empty_piece = first_table.slice(0, 0)
    if renumber:
        empty_piece = _renumber({0: empty_piece}, np.zeros(1, dtype=np.int64))[0]
    empty = tables_to_frame([empty_piece])

    if npartitions is None:
        npartitions = default_npartitions(source.nbytes)
    n = int(npartitions)

    codec, cleanups, owned = _open_store(store, limit, tmp)
    sizes = np.zeros(n, dtype=np.int64)
    nbytes = np.zeros(n, dtype=np.float64)
    # a codec that takes sorted tables (the default store) gets a chunk as its sorted
    # table(s); any other, piece by piece, as Arrow tables if it stores them
    how = Splitting(keys, n, partitioner, dropna, keep_index, schema, codec.sorted_appends)
    plan = None
    try:
        from tqdm.auto import tqdm

        with tqdm(total=source.nrows, unit="rows", unit_scale=True, desc="shuffle",
                  disable=not show_progress(progress), leave=False) as bar:
            converted = Converted(first_table, fields, renumber)
            sink = Appends(codec, sizes, nbytes)
            if order is None:
                _run(itertools.chain([first], chunks), converted, how, sink, bar, workers)
            else:
                budget = _budget(codec, limit) if owned else None
                plan = _by_range(data, source, first, chunks, converted, order, how, sink, limit, budget, bar, workers)
    except BaseException:
        for step in reversed(cleanups):
            try:
                step()
            except Exception:
                pass
        raise
    return ShuffleResult(
        codec, n, sizes, nbytes.astype(np.int64), on=keys, empty=empty, schema=schema,
        source=source.description, cleanups=cleanups, owns_store=owned,
        # a batch read ahead, one handed out, each also briefly as Arrow: two chunks' worth
        batch_bytes=min(BATCH_BYTES, chunk // 2),
        boundaries=None if plan is None else plan.frame(keys, empty), order=None if plan is None else plan.order,
        partitioner=partitioner if isinstance(partitioner, str) else None,
    )


def _in_memory(
    df: pd.DataFrame, on: list, npartitions: int | None, partitioner: Partitioner, dropna: bool,
    keep_index: bool | None, threads: int, limit: int, progress: bool | None,
) -> ShuffleResult | None:
    """``df`` shuffled whole in memory (:mod:`.hashed_frame`) if that fits ``limit``, else None."""
    check_columns(on, list(df.columns) + [k for k in df.index.names if k is not None])
    nbytes, key_bytes = hashed_frame.frame_bytes(df, on)
    if not hashed_frame.fits(len(df), nbytes, key_bytes, limit):
        return None
    from tqdm.auto import tqdm

    n = default_npartitions(nbytes) if npartitions is None else int(npartitions)
    with tqdm(total=len(df), unit="rows", unit_scale=True, desc="shuffle (in memory)",
              disable=not show_progress(progress), leave=False) as bar:
        result = hashed_frame.shuffle_frame(df, on, n, partitioner=partitioner, dropna=dropna,
                                            keep_index=keep_index, threads=threads, nbytes=nbytes)
        bar.update(len(df))
    return result


def _budget(codec: Any, limit: int) -> Callable[[int], None]:
    """While a range shuffle's staged chunks still hold ``held`` bytes, the default store
    keeps only the rest of the limit in memory (the two never hold more than it together)."""

    def held(nbytes: int) -> None:
        codec.memory_limit = max(0, limit - nbytes)

    return held


def _read_again(data: Any, source: Source) -> Callable[[], Iterator[Chunk]] | None:
    """The source's chunks anew, for an input held in memory (reading it twice costs no
    I/O); None for one to read once (streams, iterators, files)."""
    if isinstance(data, pd.DataFrame | pa.Table) or polars_frames.is_polars_frame(data):
        return source.chunks
    return None


def _key_columns(chunk: Chunk, on: list, keep_index: bool | None) -> Converted:
    """The key columns of a chunk as Arrow, converted as :func:`to_table` converts them
    (a DataFrame's other columns are left out)."""
    if isinstance(chunk, pd.DataFrame):
        present = [k for k in on if k in chunk.columns]
        if len(present) == len(on):
            return Converted(*to_table(chunk[present], on, keep_index=False))
        return Converted(*to_table(chunk[present], on, keep_index))  # keys in the index: it is kept
    return Converted(*to_table(chunk, on, keep_index))


def _by_range(
    data: Any, source: Source, first: Chunk, chunks: Iterator[Chunk], converted: Converted, order: KeyOrder,
    how: Splitting, sink: Appends, limit: int, budget: Callable[[int], None] | None, bar: Any, threads: int,
) -> RangePlan:
    """The two passes of a range shuffle: the boundaries from a sample of the keys
    (:mod:`.by_range`), then the hash path's split and appends with range ids."""
    again = _read_again(data, source)
    sample = by_range.KeySample(order, how.n, how.dropna)
    staging = None if again is not None else by_range.Staging(limit)
    try:
        bar.set_description("shuffle: sampling", refresh=False)
        by_range.first_pass(
            converted, chunks, sample=sample, staging=staging, convert=how.convert,
            keys_of=lambda chunk, index: _key_columns(chunk, how.on, how.keep_index), threads=threads,
            progress=bar.update,
        )
        plan = sample.plan(by_range.key_table(converted.table, converted.fields, order.fields))
        bar.reset()
        bar.set_description("shuffle", refresh=False)
        second: Iterator[Any]
        if staging is None:
            assert again is not None
            second = itertools.chain([first], itertools.islice(again(), 1, None))
        else:
            second = staging.drain(budget)
        _run(second, converted, replace(how, partitioner=plan.ids), sink, bar, threads)
    finally:
        if staging is not None:
            staging.close()
    return plan


@dataclass(frozen=True)
class Splitting:
    """How a chunk becomes pieces: hashed on the keys ``on`` into ``n`` partitions by
    ``partitioner``, rows with a null key dropped if ``dropna``, a pandas index kept as
    ``keep_index`` says; every chunk must concatenate with ``schema`` (the first chunk's).
    ``sorted``: the chunk is given as sorted table(s) with rows per partition (for a codec
    that takes them), else as a table per partition."""

    on: list
    n: int
    partitioner: Partitioner
    dropna: bool
    keep_index: bool | None
    schema: pa.Schema
    sorted: bool

    def convert(self, chunk: Chunk | Converted, index: int) -> Converted:
        """Chunk number ``index`` as Arrow, checked to concatenate with the first (a chunk
        a range shuffle's first pass converted is taken as it is)."""
        converted = chunk if isinstance(chunk, Converted) else Converted(*to_table(chunk, self.on, self.keep_index))
        if index and converted.table.schema != self.schema:
            _check_concat(self.schema, converted.table.schema, index)
            check_key_types(converted.table, converted.fields)
        return converted

    def split(self, chunk: Chunk | Converted, index: int, converted: Converted | None = None) -> Split:
        """Convert, hash and split chunk number ``index`` (on a worker thread: Arrow and
        NumPy release the GIL, so several chunks are split at once); ``converted``: the
        chunk already converted to Arrow (the first one, checked before anything ran)."""
        table, fields, renumber = converted if converted is not None else self.convert(chunk, index)
        rows = table.num_rows
        if self.dropna:
            table = drop_null_keys(table, fields)
        if not table.num_rows:
            return Split(rows, None, {}, renumber, 0.0)
        ids = assign(chunk, table, self.on, fields, self.n, self.partitioner)
        counts = count_ids(ids, self.n)
        parts = sorted_runs(table, ids, self.n, counts) if self.sorted else split(table, ids, self.n, counts)
        return Split(rows, counts, parts, renumber, table.nbytes / table.num_rows)


class Split(NamedTuple):
    """One chunk, split: its rows (before ``dropna``), rows per partition (None: none
    left), the pieces, whether their index is to be renumbered, and bytes per row."""

    rows: int
    counts: np.ndarray | None
    parts: Any
    renumber: bool
    row_bytes: float


@dataclass
class Appends:
    """Appends split chunks to ``codec`` in input order (rows keep their order in a
    partition), counting rows and bytes per partition into ``sizes`` and ``nbytes``."""

    codec: Codec
    sizes: np.ndarray
    nbytes: np.ndarray

    def add(self, done: Split) -> None:
        if done.counts is None:
            return
        self.nbytes[:] += done.counts * done.row_bytes
        if self.codec.sorted_appends:
            for table, run_counts in done.parts:
                self.codec.append_sorted(table, run_counts, index_starts=self.sizes if done.renumber else None)
                self.sizes[:] += run_counts
            return
        parts: dict[Any, Any] = _renumber(done.parts, self.sizes) if done.renumber else done.parts
        self.sizes[:] += done.counts
        self.codec.append(parts if self.codec.stores_arrow else {p: tables_to_frame([t]) for p, t in parts.items()})


def _run(chunks: Iterator[Chunk], first: Converted, how: Splitting, sink: Appends, bar: Any, threads: int) -> None:
    """Split ``chunks`` (the first already converted, as ``first``) on ``threads`` workers,
    and append them in order to ``sink``: at most ``threads`` chunks are split while one
    more is appended."""
    with ThreadPoolExecutor(threads, thread_name_prefix="shuffle_kit-partition") as pool:
        inflight: deque[Future] = deque()
        for index, chunk in enumerate(chunks):
            inflight.append(pool.submit(how.split, chunk, index, first if index == 0 else None))
            del chunk
            if len(inflight) == threads:
                done = inflight.popleft().result()
                sink.add(done)
                bar.update(done.rows)
        while inflight:
            done = inflight.popleft().result()
            sink.add(done)
            bar.update(done.rows)


def _check_concat(first: pa.Schema, other: pa.Schema, index: int) -> None:
    try:
        pa.unify_schemas([first, other], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise JobError(
            f"chunk {index} of the input cannot be concatenated with the first chunk: {e}"
        ) from None


# -- groupby ---------------------------------------------------------------------------------


class GroupedShuffle:
    """The groups of a shuffled input, one partition in memory at a time.

    Iterating yields ``(key, DataFrame)`` for every distinct key exactly once, with all
    of its rows in input order; keys are scalars for one column name and tuples for a
    list of names, as in pandas.

    >>> import pandas as pd
    >>> df = pd.DataFrame({'k': ['a', None, 'a', 'b'], 'x': [1, 2, 3, 4]})
    >>> g = groupby_shuffle(df, on='k', npartitions=2, progress=False)
    >>> sorted((str(k), grp['x'].tolist()) for k, grp in g)
    [('a', [1, 3]), ('b', [4]), ('nan', [2])]
    >>> g.apply(len).sort_index().tolist()
    [2, 1, 1]
    """

    def __init__(self, result: ShuffleResult, on: Any, *, dropna: bool, sort: bool):
        self.result = result
        self.on = on
        self.dropna = dropna
        self.sort = sort

    def _groups(self, df: pd.DataFrame) -> Any:
        return df.groupby(self.on, dropna=self.dropna, sort=self.sort, observed=True)

    def __iter__(self) -> Iterator[tuple[Any, pd.DataFrame]]:
        parts = (part for _, part in self.result.nonempty())
        for part in self._ranges() if self.sort else parts:
            yield from self._groups(part)

    def _ranges(self) -> Iterator[pd.DataFrame]:
        """The rows again, in partitions of consecutive keys in pandas' own sort order.

        One pass ranks the distinct keys (pandas sorts them, exactly as ``groupby``
        would); a second moves each hash partition's rows into the partition of their
        key's rank range. Memory: one partition, the distinct keys, and the store's
        buffer, which spills to a temporary ``File``.
        """
        filled = [i for i, size in enumerate(self.result.sizes) if size]
        if not filled:
            return
        # group keys as groupby gives them (None read as NaN, categories observed), so
        # that the keys of one partition are found among all of them
        keys = [self._groups(part).size().index for _, part in self.result.nonempty()]
        distinct = keys[0].append(keys[1:]) if len(keys) > 1 else keys[0]
        levels = list(range(distinct.nlevels))
        order = pd.DataFrame(index=distinct).groupby(level=levels, sort=True, dropna=False, observed=True).size().index
        n = len(filled)
        ranges = TableBuffer(File(), memory_limit=shuffle_memory_limit())
        try:
            for _, part in self.result.nonempty():
                grouped = self._groups(part)
                rank = order.get_indexer(grouped.size().index)[grouped.ngroup().to_numpy()]
                # rows of one key all come from this partition: their order is kept
                ranges.append(dict(iter(part.groupby(rank * n // len(order), sort=False))))
            for r in range(n):
                part = ranges.get(r)
                if len(part):
                    yield part
        finally:
            ranges.drop()
            ranges.store.__exit__(None, None, None)

    def apply(self, func: Callable[[pd.DataFrame], Any]) -> Any:
        """``func(group)`` for every group, combined like pandas' ``groupby().apply``."""
        keys, results = [], []
        for key, group in self:
            keys.append(key)
            results.append(func(group))
        names = self.on if isinstance(self.on, list) else [self.on]
        if not results:
            return pd.Series([], dtype=object)
        multi = isinstance(self.on, list)
        index = (
            pd.MultiIndex.from_tuples(keys, names=names) if multi else pd.Index(keys, name=self.on)
        )
        if all(isinstance(r, pd.DataFrame) for r in results):
            return pd.concat(results, keys=index)
        if all(isinstance(r, pd.Series) for r in results):
            return pd.DataFrame(results, index=index)
        return pd.Series(results, index=index)

    def close(self) -> None:
        self.result.close()

    def __enter__(self) -> GroupedShuffle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GroupedShuffle on={self.on!r} of {self.result!r}>"

    def _repr_html_(self) -> str:
        return self.result._repr_html_().replace("ShuffleResult", f"GroupedShuffle on {self.on!r}", 1)


def groupby_shuffle(
    data: Any,
    on: Any,
    *,
    store: Any = None,
    dropna: bool = False,
    sort: bool = False,
    npartitions: int | None = None,
    threads: int | None = None,
    **kwargs: Any,
) -> GroupedShuffle:
    """Shuffle ``data`` by ``on`` and return its exact groups (see :class:`GroupedShuffle`).

    Unlike pandas' default, null keys form their own group unless ``dropna=True``.
    ``sort=True`` yields the groups in key order (pandas' order), at the cost of a second
    pass that re-partitions the rows by ranges of sorted keys. ``threads``: as for
    :func:`shuffle` (the groups are the same for any number). Other arguments go to
    :func:`shuffle`; the index is kept, so groups equal pandas' groups, labels included.
    """
    kwargs.setdefault("keep_index", True)
    result = shuffle(data, on, npartitions, store=store, dropna=dropna, threads=threads, **kwargs)
    return GroupedShuffle(result, on, dropna=dropna, sort=sort)
