"""Files per key value (``--by-value``): each hash partition's rows grouped by the values of
the key columns, every value's rows into ``col=value/part-NNNNN`` files (hive names, see
:mod:`~shuffle_kit.partitioning.hive`), the key columns left out of the files unless
``layout.keep_keys``.

With ``layout.sort_by``, a partition is sorted by the key columns and then those (in
batches, see :mod:`~shuffle_kit.partitioning.sorting`): each value's rows then come one
after the other, in order, into one series of files.

A value lives in exactly one hash partition, so each partition's directories are its own:
partitions are written on several threads with no shared state but the counts, and a
value's rows stay in input order.

>>> import pyarrow as pa, tempfile, os
>>> d = tempfile.mkdtemp()
>>> out = ValueFiles(d, pa.schema({'c': pa.string(), 'x': pa.int64()}), ['c'], 'parquet', 'none')
>>> out.write(0, [pa.table({'c': ['a', 'b', 'a'], 'x': [1, 2, 3]})], 2**20)
3
>>> sorted(os.listdir(d)), out.files, out.rows
(['c=a', 'c=b'], 2, {'c=a': 2, 'c=b': 1})
>>> import shutil; shutil.rmtree(d)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..shuffling.arrow_numpy import arrow_array
from . import hive
from .layout import DEFAULT_LAYOUT, Layout
from .writers import MAX_OPEN_FILES, FileSeries, WriterPool, conformed_batches


class ValueFiles:
    """Where the partition engine writes when files go by key value (see the module);
    ``token`` (a job's, when it appends): in every file's name, ``part-TOKEN-NNNNN``."""

    row_groups = False  # the values a partition holds are known only once it is whole

    def __init__(self, directory: str, schema: pa.Schema, on: Sequence[str], fmt: str, compression: str,
                 max_open: int = MAX_OPEN_FILES, max_values: int | None = None, layout: Layout = DEFAULT_LAYOUT,
                 token: str | None = None):
        self.directory, self.schema, self.on = directory, schema, list(on)
        self.max_values, self.layout, self.token = max_values, layout, token
        self.columns = [f.name for f in schema if layout.keep_keys or f.name not in self.on]
        self.data_schema = pa.schema([schema.field(c) for c in self.columns])
        self.fmt, self.compression, self.max_open = fmt, compression, max_open
        self.files = 0
        self.dirs: set[str] = set()
        self.rows: dict[str, int] = {}  # directory -> rows written into it
        self.values: dict[str, tuple] = {}  # directory -> its key values
        self._lock = threading.Lock()

    @property
    def sort_keys(self) -> Sequence[str]:
        return [*self.on, *self.layout.sort_by] if self.layout.sort_by else ()

    @property
    def held_rows(self) -> int:
        return self.layout.row_group_size or 0

    def open(self, p: int) -> FileSeries:
        raise NotImplementedError("files by value are written whole: see ValueFiles.write")

    def write(self, p: int, pieces: Iterable[pa.Table], batch_bytes: int) -> int:
        """Partition ``p``'s rows, a batch of about ``batch_bytes`` at a time: a partition
        within one batch gets one file per value; a larger one may get several per value,
        with at most ``max_open`` files open."""
        pool = WriterPool(self.directory, self.data_schema, self.fmt, self.compression, self.max_open,
                          self.layout.max_rows_per_file, self.layout.row_group_size, self.token)
        rows: dict[str, int] = {}
        keys: dict[str, tuple] = {}
        try:
            for batch in conformed_batches(pieces, self.schema, batch_bytes):
                values, parts = groups(batch, self.on, self.columns)
                for i, (rel, group) in enumerate(zip(hive.value_paths(self.on, values), parts)):
                    if rel not in pool.dirs:
                        self._count(rel)
                        keys[rel] = tuple(values.slice(i, 1).to_pylist()[0].values())
                    pool.write(rel, group)
                    rows[rel] = rows.get(rel, 0) + group.num_rows
        finally:
            pool.close_all()
        with self._lock:
            self.files += pool.files
            self.rows.update(rows)  # a value lives in one partition: no directory is counted twice
            self.values.update(keys)
        return pool.rows

    def _count(self, rel: str) -> None:
        """Count a new value's directory, before it is made: refuse one too many."""
        with self._lock:
            if self.max_values is not None and len(self.dirs) >= self.max_values:
                keys = ", ".join(map(repr, self.on))
                raise ValueError(
                    f"--by-value: {keys} has more than {self.max_values:,} distinct values, each a directory; "
                    "raise --max-partitions if that many are wanted"
                )
            self.dirs.add(rel)


def groups(table: pa.Table, keys: list[str], columns: list[str]) -> tuple[pa.Table, Iterator[pa.Table]]:
    """The key values of ``table`` (the ``keys`` of each value's first row), in order of
    first appearance, and the ``columns`` of each value's rows in input order; keys equal
    as pandas' ``groupby(dropna=False)`` finds them (None, NaN and NaT are one null value).

    >>> t = pa.table({'k': ['b', 'a', 'b', None], 'x': [1, 2, 3, 4]})
    >>> values, parts = groups(t, ['k'], ['x'])
    >>> values['k'].to_pylist(), [g['x'].to_pylist() for g in parts]
    (['b', 'a', None], [[1, 3], [2], [4]])
    """
    kdf = table.select(keys).to_pandas(types_mapper=None)
    kdf.columns = range(len(keys))
    codes = kdf.groupby(list(kdf.columns), dropna=False, sort=False, observed=True).ngroup().to_numpy()
    count = int(codes.max()) + 1 if len(codes) else 0
    sizes = np.bincount(codes, minlength=count)
    first = np.empty(count, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the last write is the first row
    values = table.select(keys).take(arrow_array(first))
    return values, _parts(table.select(columns), codes, sizes)


def _parts(data: pa.Table, codes: np.ndarray, sizes: np.ndarray) -> Iterator[pa.Table]:
    if len(sizes) == 1:
        yield data
        return
    # a stable sort of small integers: NumPy sorts 16-bit ones by radix, in O(n)
    small = codes.astype(np.uint16 if len(sizes) <= 1 << 16 else np.int64, copy=False)
    taken = data.take(arrow_array(np.argsort(small, kind="stable")))
    starts = np.cumsum(sizes) - sizes
    for g in range(len(sizes)):
        yield taken.slice(int(starts[g]), int(sizes[g]))
