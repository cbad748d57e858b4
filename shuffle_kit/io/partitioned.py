"""Files already hash-partitioned by the partition job, recognised by their records and
read a partition at a time: a side a join takes as it is.

:func:`recognise` takes what a shuffle would read (a directory, a glob, paths or URLs of
the partition job's output, on any filesystem :mod:`~shuffle_kit.io.filesystems` opens)
and returns its :class:`PartitionedFiles` only when every rule holds:

- every file is Parquet or Arrow IPC, at the top of what was given (no hive directory
  names: files by value are not hash partitions), and carries a record
  (:mod:`shuffle_kit.io.provenance`) in a file named for its partition;
- every record says ``hash``, the hash version and seed asked for, the key columns asked
  for in their order, and one partition count (files of two runs with other counts, as
  ``--exists append`` may leave, are not one layout);
- the files' schemas concatenate.

Anything else is None: the caller reads the input as any other, never a partition of the
wrong rows. A partition may have several files (``--max-rows-per-file``, appends of runs
with the same layout) or none (no rows).

Each partition is read whole (``partition``) or in pieces of about ``piece_bytes``
(``pieces``) and converted to pandas as a shuffle's partitions of the same files are
(:func:`~shuffle_kit.frames.tables_to_frame`, the index the files' pandas metadata names
dropped, as ``merge`` drops it); its rows and bytes come from the Parquet footers (their
uncompressed sizes, as the readers estimate a Parquet file's memory), so nothing of a
Parquet output is read before the join; an Arrow IPC file's batches are read once, one at
a time, to measure them (its buffers may be compressed).

>>> import os, tempfile, pyarrow as pa, pyarrow.parquet as pq
>>> from shuffle_kit.io.provenance import Provenance
>>> d = tempfile.mkdtemp()
>>> for p, keys in enumerate([[2, 4], [1, 3, 1]]):
...     schema = pa.schema({'k': pa.int64()}, metadata=Provenance('hash', ('k',), 2, p, 1, 0).metadata())
...     pq.write_table(pa.table({'k': keys}, schema=schema), f'{d}/part-{p:05d}.parquet')
>>> parts = recognise(d, ['k'], hash_version=1)
>>> parts.npartitions, parts.sizes, parts.partition(1)['k'].tolist()
(2, [2, 3], [1, 3, 1])
>>> recognise(d, ['x'], hash_version=1) is None
True
>>> import shutil; shutil.rmtree(d)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..defaults import CHUNK_BYTES
from ..errors import JobError, ShuffleKitError
from .discovery import InputFile, discover
from .provenance import KEY, Provenance, named_for, recorded_keys
from .readers import ReadOptions, path_list

if TYPE_CHECKING:
    import pandas as pd

PartitionIds = Callable[[pa.Table, list, int], Any]  # the hash of the key columns, mod n (an array)


@dataclass
class RecordedFile:
    """One file of a partitioned output: where it is, its record, schema, rows, and its
    bytes in memory (None until measured: an Arrow IPC file's compressed buffers tell only
    their compressed size, so its batches are read, one at a time, when first asked)."""

    file: InputFile
    record: Provenance
    schema: pa.Schema
    rows: int
    nbytes: int | None

    def memory(self) -> int:
        """The file's rows' bytes in memory: the Parquet footer's uncompressed size (as the
        readers estimate it), or an Arrow IPC file's batches measured."""
        if self.nbytes is None:
            with self.file.location.fs.open_input_file(self.file.location.path) as handle:
                reader = pa.ipc.open_file(handle)
                self.nbytes = sum(reader.get_batch(b).nbytes for b in range(reader.num_record_batches))
        return self.nbytes


def read_file(f: InputFile) -> RecordedFile | None:
    """``f``'s record, schema, rows and in-memory bytes (from its footer), or None if it
    has no record, is not Parquet or Arrow IPC, or cannot be read."""
    if f.format not in ("parquet", "arrow"):
        return None
    try:
        with f.location.fs.open_input_file(f.location.path) as handle:
            if f.format == "parquet":
                import pyarrow.parquet as pq

                meta = pq.read_metadata(handle)
                record = Provenance.from_metadata(meta.metadata)
                nbytes = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
                schema, rows = meta.schema.to_arrow_schema(), meta.num_rows
            else:
                reader = pa.ipc.open_file(handle)
                schema = reader.schema
                record = Provenance.from_metadata(schema.metadata)
                rows, nbytes = reader.count_rows(), None
    except (pa.ArrowException, OSError, ValueError):
        return None
    if record is None or record.rows is not None and record.rows != rows:  # (rows copied elsewhere)
        return None
    return RecordedFile(f, record, schema, rows, nbytes)


def recognise(data: Any, on: Sequence[Any], *, hash_version: int, read: ReadOptions | None = None,
              piece_bytes: int = CHUNK_BYTES, ids: PartitionIds | None = None) -> PartitionedFiles | None:
    """``data`` as the hash partitions the partition job wrote, on exactly the key columns
    ``on`` (in order) with hash ``hash_version`` and seed 0; None when it is anything else
    (module docstring). ``ids``: that hash (``partition_ids(table, on, n)``), to check the
    rows of each partition as they are read."""
    paths, keys = path_list(data), recorded_keys(on)
    if paths is None or keys is None:
        return None
    read = read or ReadOptions()
    try:
        found = discover(paths, read.partitioning)
    except (ShuffleKitError, OSError, ValueError):  # (the shuffle reports what is wrong, in its own words)
        return None
    files = []
    for f in found.files:
        recorded = None if f.partition else read_file(f)
        if recorded is None or not named_for(f.location.name, recorded.record.partition):
            return None
        files.append(recorded)
    if not files:
        return None
    first = files[0].record
    wanted = Provenance("hash", keys, first.npartitions, first.partition, hash_version=hash_version, seed=0)
    if not all(wanted.same_run_layout(f.record) for f in files):
        return None
    try:
        schema = pa.unify_schemas([f.schema for f in files], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return PartitionedFiles(files, schema, first.npartitions, piece_bytes, ids)


class PartitionedFiles:
    """The files of one hash-partitioned output, ``npartitions`` partitions, read as the
    partitions of a join's side (:class:`shuffle_kit.shuffling.merge.Side`): whole, or in
    pieces of about ``piece_bytes``, each file conformed to ``schema`` (what all the
    files' schemas unify to).

    With ``ids`` (the hash the records name, ``ids(table, on, npartitions)``), every table
    read is checked to hold only rows of the partition its file's record names: a file
    whose rows are not what its record says (a copy of other rows with its metadata) is a
    :class:`~shuffle_kit.errors.JobError` naming it, never a wrong join."""

    def __init__(self, files: Sequence[RecordedFile], schema: pa.Schema, npartitions: int,
                 piece_bytes: int = CHUNK_BYTES, ids: PartitionIds | None = None):
        self.files = list(files)
        self.schema, self.npartitions, self.piece_bytes, self.ids = schema, npartitions, piece_bytes, ids
        self.on = files[0].record.on if files else ()
        self._of: list[list[RecordedFile]] = [[] for _ in range(npartitions)]
        for f in self.files:
            self._of[f.record.partition].append(f)

    @property
    def sizes(self) -> list[int]:
        return [sum(f.rows for f in files) for files in self._of]

    @property
    def nbytes(self) -> list[int]:
        return [sum(f.memory() for f in files) for files in self._of]

    def _checked(self, f: RecordedFile, table: pa.Table) -> pa.Table:
        """``table`` of ``f`` conformed to ``schema``, its rows checked to be of its partition."""
        if self.ids is not None and table.num_rows:
            i = f.record.partition
            found = np.unique(np.asarray(self.ids(table, list(self.on), self.npartitions)))
            if len(found) > 1 or found[0] != i:
                other = next(int(p) for p in found if p != i)
                raise JobError(
                    f"{f.file.location.url} holds rows of hash partition {other} of {self.npartitions} on "
                    f"{', '.join(self.on)}, not only of partition {i} as its record ({KEY.decode()}) says: "
                    "remove that metadata key from the file, or rename the file"
                )
        return _conformed(table, self.schema)

    def table(self, i: int) -> pa.Table:
        """Partition ``i`` whole, as Arrow in ``schema``."""
        tables = [self._checked(f, table) for f in self._of[i] if f.rows for table in _file_tables(f, None)]
        if not tables:
            return self.schema.empty_table()
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    def partition(self, i: int) -> pd.DataFrame:
        """Partition ``i`` whole."""
        return _frame(self.table(i))

    def read(self, indices: Sequence[int]) -> list[pd.DataFrame]:
        return [self.partition(i) for i in indices]

    def read_tables(self, indices: Sequence[int]) -> list[pa.Table]:
        """Partitions ``indices`` as Arrow (for pairs joined as Arrow: the join job's)."""
        return [self.table(i) for i in indices]

    def pieces(self, i: int, max_bytes: int = 64 * 2**20) -> Iterator[pd.DataFrame]:
        """Partition ``i`` in pieces of about ``piece_bytes`` (at most ``max_bytes``) in memory."""
        for f in self._of[i]:
            if not f.rows:
                continue
            rows = max(1, f.rows * min(self.piece_bytes, max_bytes) // max(1, f.memory()))
            for table in _file_tables(f, rows):
                yield _frame(self._checked(f, table))

    def empty(self) -> pd.DataFrame:
        return _frame(self.schema.empty_table())

    def close(self) -> None:
        pass  # (the files are the user's)

    def __repr__(self) -> str:
        return (f"<PartitionedFiles: {len(self.files)} files, {self.npartitions} hash partitions on "
                f"{', '.join(self.on)}, {sum(self.sizes):,} rows>")


def _file_tables(f: RecordedFile, rows: int | None) -> Iterator[pa.Table]:
    """The rows of ``f``: whole (``rows`` None), else in tables of at most ``rows`` rows."""
    with f.file.location.fs.open_input_file(f.file.location.path) as handle:
        if f.file.format == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(handle, pre_buffer=False) as pf:
                if rows is None:
                    yield pf.read()
                    return
                for batch in pf.iter_batches(batch_size=rows):
                    yield pa.Table.from_batches([batch])
            return
        reader = pa.ipc.open_file(handle)
        batches = (reader.get_batch(b) for b in range(reader.num_record_batches))
        if rows is None:
            yield pa.Table.from_batches(list(batches), schema=reader.schema)
            return
        for batch in batches:
            for at in range(0, batch.num_rows, rows):
                yield pa.Table.from_batches([batch.slice(at, rows)])


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns, types and metadata (files of appended runs may
    differ slightly, as a shuffle of them concatenates them)."""
    if not table.schema.equals(schema, check_metadata=False):
        table = pa.Table.from_arrays(
            [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
             for f in schema], schema=schema)
    return table.replace_schema_metadata(schema.metadata)


def _frame(table: pa.Table) -> pd.DataFrame:
    """``table`` as pandas, as a shuffle's partition of it is, without an index (a join on
    columns keeps none)."""
    import pandas as pd

    from ..frames import tables_to_frame

    frame = tables_to_frame([table])
    return frame if type(frame.index) is pd.RangeIndex else frame.reset_index(drop=True)
