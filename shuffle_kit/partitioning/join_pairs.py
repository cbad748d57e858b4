"""A join's sides staged and its pairs joined: the join job's way
(:func:`~shuffle_kit.partitioning.join_job.join`) when the right side is not held whole.

Each side is partitioned by the engine into uncompressed Arrow IPC streams, one per
partition (:func:`stage`, :class:`StagedSide`); pair ``i`` is joined and written into its
file (:func:`pairs_written`): as Arrow, pair after pair, for an inner join Arrow computes
exactly of inputs pandas did not describe whose every pair fits its share of memory; else
by :class:`shuffle_kit.shuffling.merge.MergeResult`'s pair loop (pandas' ``merge``
semantics, as Arrow where the result cannot differ; a pair larger than its share split
again, a hot key joined in chunks). Here too is pandas' idea of a join's columns
(:func:`pandas_schema`, :func:`check`), which the job asks only of inputs pandas described.

pandas and the in-memory merge are imported only for the second way, or when pandas is
asked: a join of Arrow, polars or DuckDB files whose pairs fit never loads pandas.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..io.partitioned import PartitionedFiles
from ..io.readers import Source
from ..kernels.arrow_join import ArrowJoin
from ..kernels.joins import Join
from ..limits import executor
from ..partition_sizes import HotKey
from . import destination, engine
from .job import Budget, Place, Reading, progress_bar, shared_dictionaries
from .options import Options
from .writers import STAGED, conform

if TYPE_CHECKING:
    import pandas as pd


def stage(name: str, source: Source, keys: list, n: int, directory: str, budget: Budget, threads: int,
          place: Place, show: bool) -> tuple[StagedSide, int, int]:
    """One side partitioned by ``keys`` into ``n`` Arrow IPC streams in ``directory`` (its
    string columns read as dictionaries staying so, in one dictionary per column for the
    side); the side, its rows read and its rows written."""
    os.mkdir(directory)
    files = engine.PartFiles.of(directory, source.schema, STAGED, "none", dictionary=source.dictionary)
    rows = np.zeros(n, dtype=np.int64)
    reading = Reading(source, threads, show, f"read {name}")
    held = budget.held_bytes - shared_dictionaries(reading, source, budget)
    written = engine.partition_into(reading, keys, n, files, engine.Resources(held, threads, place.tmp), sizes=rows)
    return StagedSide(directory, files.schema, source.schema, rows, budget.chunk_bytes), reading.rows, written


def pairs_written(left: StagedSide | PartitionedFiles, right: StagedSide | PartitionedFiles, joined: Join,
                  schemas: tuple[pa.Schema, pa.Schema], pandas_metadata: bool, staging: str, opts: Options,
                  place: Place, threads: int, budget: Budget, pair_bytes: int, spill: str, show: bool
                  ) -> tuple[np.ndarray, pa.Schema, list[HotKey]]:
    """Every pair of the sides ``left`` and ``right`` (staged, or recognised as partitioned
    already) joined and written into ``staging``, a file per pair; the rows of each pair,
    the files' schema and the keys joined in chunks. ``schemas``: the inputs'.

    Inputs with pandas' metadata (``pandas_metadata``) make files of pandas' dtypes for the
    whole join, with that metadata. Without it, an inner join Arrow computes exactly keeps
    its inputs' types (:meth:`ArrowJoin.of_inputs`), as with a side held whole: pandas'
    dtypes would depend on the rows (an integer column with a null reads as float64).
    Other joins take pandas' dtypes without its metadata: a reader finds them in Arrow's."""
    store_bytes = max(2**20, budget.limit // 4)
    own = None if pandas_metadata else ArrowJoin.of_inputs(joined, *schemas)
    if own is not None and _fit(left, right, pair_bytes):
        schema = own.schema.remove_metadata()
        plan = ArrowJoin.plan(joined, left.schema, right.schema, schema)
        if plan is not None:
            if place.appending:
                destination.check_append(place.out, schema, opts)
            pairs = _arrow_pairs(left, right, plan, threads, store_bytes)
            return (_write_pairs(pairs, left.npartitions, _dictionaries(plan, left, right), staging, schema, opts,
                                 place, threads, budget, show), schema, [])
    from ..shuffling.merge import MergeResult  # (pandas: for pairs split again, or pandas' dtypes)

    result = MergeResult(left, right, joined, pair_bytes=pair_bytes, store_bytes=store_bytes, threads=threads,
                         tmp=spill)  # (pairs split again spill under --tmp)
    schema = own.schema if own is not None else arrow_schema(result.empty(), *schemas, joined)
    if not pandas_metadata:
        schema = schema.remove_metadata()
    # Arrow in, Arrow out: pairs joined without pandas where the join allows
    result.arrow = ArrowJoin.plan(joined, left.schema, right.schema, schema)
    if place.appending:
        destination.check_append(place.out, schema, opts)
    dictionaries = [] if result.arrow is None else _dictionaries(result.arrow, left, right)
    written = _write_pairs(result.pairs(), left.npartitions, dictionaries, staging, schema, opts, place, threads,
                           budget, show)
    return written, schema, result.skew


def _fit(left: StagedSide | PartitionedFiles, right: StagedSide | PartitionedFiles, pair_bytes: int) -> bool:
    """Whether every pair of an inner join whose sides both have rows fits a pair's share
    of memory (no pair is split again)."""
    return all(lb + rb <= pair_bytes for lrows, rrows, lb, rb in zip(left.sizes, right.sizes, left.nbytes,
                                                                     right.nbytes) if lrows and rrows)


def _arrow_pairs(left: StagedSide | PartitionedFiles, right: StagedSide | PartitionedFiles, plan: ArrowJoin,
                 threads: int, store_bytes: int) -> Generator[tuple[int, Iterator[pa.Table]], None, None]:
    """(i, pair i's joined rows) for every pair whose sides both have rows, in pair order
    whatever the thread count: each pair read and joined as Arrow on one of ``threads``
    workers, the pairs in flight holding at most ``store_bytes`` of their sides."""
    inflight: deque[tuple[int, Future, int]] = deque()
    held = 0

    def joined(i: int) -> list[pa.Table]:
        table = plan.join(left.table(i), right.table(i))
        return [table] if table.num_rows else []  # (keys that never meet: no file)

    with executor(threads, "shuffle_kit-join-pairs") as pool:
        try:
            for i, (lrows, rrows, lbytes, rbytes) in enumerate(zip(left.sizes, right.sizes, left.nbytes,
                                                                   right.nbytes)):
                if not (lrows and rrows):
                    continue
                while inflight and (len(inflight) >= threads or held + lbytes + rbytes > store_bytes):
                    j, future, nbytes = inflight.popleft()
                    held -= nbytes
                    yield j, iter(future.result())
                inflight.append((i, pool.submit(joined, i), lbytes + rbytes))
                held += lbytes + rbytes
            while inflight:
                j, future, _ = inflight.popleft()
                yield j, iter(future.result())
        finally:
            for _, future, _ in inflight:
                future.cancel()


def empty_frame(schema: pa.Schema) -> pd.DataFrame:
    """The empty DataFrame pandas reads of ``schema``."""
    from ..frames import tables_to_frame

    return tables_to_frame([schema.empty_table()])


def pandas_schema(joined: Join, left: pa.Schema, right: pa.Schema) -> pa.Schema:
    """The files' schema of ``joined`` of inputs of schemas ``left`` and ``right`` as pandas
    has it (:func:`arrow_schema` of pandas' join of two empty frames)."""
    return arrow_schema(joined.join(empty_frame(left), empty_frame(right)), left, right, joined)


def check(joined: Join, left: pa.Schema, right: pa.Schema) -> None:
    """Refuse, in one line naming both columns, keys pandas would not join."""
    joined.check(empty_frame(left), empty_frame(right))


class StagedSide:
    """A side of the join as the engine wrote it: ``part-NNNNN.arrows`` in ``directory`` for
    every partition with rows (``rows[i]``), record batches of ``stored`` (some string
    columns as dictionaries) whose values are ``schema``'s; read as
    :class:`shuffle_kit.shuffling.merge.Side` (pieces of about ``piece_bytes``), converted
    to pandas as a shuffle's partitions are, and as tables with their dictionaries."""

    def __init__(self, directory: str, stored: pa.Schema, schema: pa.Schema, rows: np.ndarray, piece_bytes: int):
        self.directory, self.stored, self.schema, self.piece_bytes = directory, stored, schema, piece_bytes
        self.npartitions = len(rows)
        self._rows = [int(r) for r in rows]
        # uncompressed IPC: a file's size is about its rows' bytes in memory
        self._bytes = [os.path.getsize(self._path(i)) if r else 0 for i, r in enumerate(self._rows)]

    def _path(self, i: int) -> str:
        return os.path.join(self.directory, engine.part_name(i, STAGED))

    @property
    def sizes(self) -> list[int]:
        return list(self._rows)

    @property
    def nbytes(self) -> list[int]:
        return list(self._bytes)

    def _batches(self, i: int) -> Iterator[pa.RecordBatch]:
        # read into memory (not mapped: mapped pages of the file would count as the job's)
        with pa.OSFile(self._path(i), "rb") as f:
            yield from pa.ipc.open_stream(f)

    def table(self, i: int) -> pa.Table:
        """Partition ``i`` as stored: dictionaries kept, but where its file holds a column
        decoded (a file of fewer rows than the dictionary has values: see
        :meth:`~shuffle_kit.partitioning.engine.PartFiles.file_schema`)."""
        batches = list(self._batches(i)) if self._rows[i] else []
        return pa.Table.from_batches(batches) if batches else self.stored.empty_table()

    def _values(self, table: pa.Table) -> pa.Table:
        return table if self.stored is self.schema else table.cast(self.schema)

    def partition(self, i: int) -> pd.DataFrame:
        from ..frames import tables_to_frame

        if not self._rows[i]:
            return self.empty()
        return tables_to_frame([self._values(self.table(i))])

    def read(self, indices: Sequence[int]) -> list[pd.DataFrame]:
        return [self.partition(i) for i in indices]

    def read_tables(self, indices: Sequence[int]) -> list[pa.Table]:
        return [self.table(i) for i in indices]

    @property
    def dictionaries(self) -> list[str]:
        """The columns stored as dictionaries."""
        return [f.name for f in self.stored if pa.types.is_dictionary(f.type)]

    def pieces(self, i: int, max_bytes: int = 64 * 2**20) -> Iterator[pd.DataFrame]:
        from ..frames import tables_to_frame

        if not self._rows[i]:
            return
        for batch in self._batches(i):
            step = max(1, batch.num_rows * min(self.piece_bytes, max_bytes) // max(1, batch.nbytes))
            for at in range(0, batch.num_rows, step):
                piece = pa.Table.from_batches([batch.slice(at, step)])  # (its file's schema: see table())
                yield tables_to_frame([self._values(piece)])

    def empty(self) -> pd.DataFrame:
        return empty_frame(self.schema)

    def close(self) -> None:
        pass  # (the job removes the directory)


def arrow_schema(empty: pd.DataFrame, left: pa.Schema, right: pa.Schema, joined: Join) -> pa.Schema:
    """The output files' schema: the joined columns' (pandas' whole-join dtypes), a column
    pandas holds as ``object`` typed as the input column it comes from (its side's, as
    :meth:`Join.output_columns` names them; else by name, with its side's suffix), and so is
    a string column of pandas' (``large_string``) from a string input: the files then keep
    the inputs' string type, as the partition job's do, and can take their dictionaries as
    they are (:func:`~shuffle_kit.partitioning.writers.parquet_dictionary_schema`).

    >>> left, right = pa.schema({'k': pa.int64(), 's': pa.string()}), pa.schema({'k': pa.int64(), 'o': pa.null()})
    >>> import pandas as pd
    >>> empty = pd.DataFrame({'k': pd.Series([], dtype='int64'), 's': pd.Series([], dtype='str'),
    ...                       'o': pd.Series([], dtype=object)})
    >>> arrow_schema(empty, left, right, Join(['k'], ['k'], 'inner', ('_x', '_y'), on=True)).types
    [DataType(int64), DataType(string), DataType(null)]
    """
    schema = pa.Schema.from_pandas(empty, preserve_index=False)
    origin: dict[str, pa.DataType] = {}
    named = joined.output_columns(left.names, right.names)
    if named is not None:
        sides = (left, right)
        origin = {name: sides[side].field(source).type for name, side, source in named}
    else:
        for side, suffix in ((right, joined.suffixes[1]), (left, joined.suffixes[0])):  # (the left's name wins)
            for f in side:
                origin[f.name] = f.type
                if suffix:
                    origin[f"{f.name}{suffix}"] = f.type
    fields = [f.with_type(origin[f.name]) if f.name in origin and _from_input(f.type, origin[f.name]) else f
              for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _from_input(out: pa.DataType, source: pa.DataType) -> bool:
    """Whether an output column of pandas' type ``out`` takes its input's type ``source``."""
    strings = (pa.string(), pa.large_string())
    return pa.types.is_null(out) or (out in strings and source in strings)


def _write_pair(files: engine.PartFiles, i: int, frames: Iterable[pd.DataFrame | pa.Table], schema: pa.Schema) -> int:
    """Pair ``i``'s joined ``frames`` (DataFrames, or tables in ``schema``) into its file
    (or series of files); its rows."""
    writer = files.open(i)
    try:
        for frame in frames:
            table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, schema=schema,
                                                                                   preserve_index=False)
            writer.write(conform(table, files.schema))  # (a column the files take as a dictionary)
    finally:
        writer.close()
    return writer.rows


def _write_pairs(pairs: Generator[tuple[int, Iterator[Any]], None, None], n: int, dictionaries: list[str],
                 staging: str, schema: pa.Schema, opts: Options, place: Place, threads: int, budget: Budget,
                 show: bool) -> np.ndarray:
    """The joined rows of ``pairs`` (of ``n``) written into ``staging``, a file per pair
    (several pairs written at once, at most a quarter of the memory limit of joined rows
    waiting); the rows of each pair. The output columns ``dictionaries`` come as
    dictionaries (from a staged side's, pairs joined as Arrow) and reach Parquet files so."""
    files = engine.PartFiles.of(staging, schema, opts.format, opts.compression, dictionary=dictionaries,
                                layout=opts.layout, token=place.token)
    rows = np.zeros(n, dtype=np.int64)
    limit = max(2**20, budget.limit // 4)
    inflight: deque[tuple[int, Future, int]] = deque()
    held = 0
    seen = np.zeros(n, dtype=bool)  # pairs whose file was begun
    with executor(threads, "shuffle_kit-join-write") as pool, progress_bar(show, total=n, desc="join") as bar:

        def collect() -> None:
            nonlocal held
            i, future, nbytes = inflight.popleft()
            rows[i] = future.result()
            held -= nbytes
            bar.update(1)

        try:
            for i, frames in pairs:
                first = next(frames, None)
                if first is None:
                    continue
                seen[i] = True
                second = next(frames, None)
                if second is None:
                    nbytes = first.nbytes if isinstance(first, pa.Table) else int(first.memory_usage(index=False).sum())
                    while inflight and (len(inflight) >= threads or held + nbytes > limit):
                        collect()
                    inflight.append((i, pool.submit(_write_pair, files, i, [first], schema), nbytes))
                    held += nbytes
                    del first
                else:  # a pair split again (skew): written here, frame by frame, never held whole
                    rows[i] = _write_pair(files, i, itertools.chain([first, second], frames), schema)
                    bar.update(1)
            while inflight:
                collect()
        finally:
            pairs.close()  # (the pairs being joined: cancelled, or waited for)
            for _, future, _ in inflight:
                future.cancel()
            for _, future, _ in inflight:
                if not future.cancelled():
                    future.exception()  # wait: its file is removed with the staging directory
    if opts.layout.empty_files:  # a file for every pair, an empty one where the join has no rows
        for i in np.flatnonzero(~seen).tolist():
            files.open(i).close()
    return rows


def _dictionaries(plan: ArrowJoin, left: StagedSide | PartitionedFiles, right: StagedSide | PartitionedFiles
                  ) -> list[str]:
    """The output columns that come from a staged side's dictionary columns, when the
    pairs are joined as Arrow by ``plan`` (a pair joined by pandas is encoded again)."""
    sides = [side.dictionaries if isinstance(side, StagedSide) else [] for side in (left, right)]
    return [name for name, (side, source) in zip(plan.schema.names, plan.columns) if source in sides[side]]


