"""Files per key value (``--by-value``): each hash partition's rows grouped by the values of
the key columns, every value's rows into ``col=value/part-NNNNN`` files (hive names, see
:mod:`~shuffle_kit.partition.hive`), the key columns left out of the files.

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

from ..shuffle.arrow_numpy import arrow_array
from . import hive
from .writers import MAX_OPEN_FILES, Writer, WriterPool, conformed_batches


class ValueFiles:
    """Where the partition engine writes when files go by key value (see the module)."""

    row_groups = False  # the values a partition holds are known only once it is whole

    def __init__(self, directory: str, schema: pa.Schema, on: Sequence[str], fmt: str, compression: str,
                 max_open: int = MAX_OPEN_FILES, max_values: int | None = None):
        self.directory, self.schema, self.on = directory, schema, list(on)
        self.max_values = max_values
        self.columns = [f.name for f in schema if f.name not in self.on]
        self.data_schema = pa.schema([schema.field(c) for c in self.columns])
        self.fmt, self.compression, self.max_open = fmt, compression, max_open
        self.files = 0
        self.dirs: set[str] = set()
        self.rows: dict[str, int] = {}  # directory -> rows written into it
        self.values: dict[str, tuple] = {}  # directory -> its key values
        self._lock = threading.Lock()

    def open(self, p: int) -> Writer:
        raise NotImplementedError("files by value are written whole: see ValueFiles.write")

    def write(self, p: int, pieces: Iterable[pa.Table], batch_bytes: int) -> int:
        """Partition ``p``'s rows, a batch of about ``batch_bytes`` at a time: a partition
        within one batch gets one file per value; a larger one may get several per value,
        with at most ``max_open`` files open."""
        pool = WriterPool(self.directory, self.data_schema, self.fmt, self.compression, self.max_open)
        rows: dict[str, int] = {}
        keys: dict[str, tuple] = {}
        try:
            for batch in conformed_batches(pieces, self.schema, batch_bytes):
                for values, group in groups(batch, self.on, self.columns):
                    rel = hive.value_path(self.on, values)
                    if rel not in pool.dirs:
                        self._count(rel)
                        keys[rel] = values
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


def groups(table: pa.Table, keys: list[str], columns: list[str]) -> Iterator[tuple[tuple, pa.Table]]:
    """(key values as Python objects, the ``columns`` of that key's rows in input order) for
    each key value of ``table``, in order of first appearance; keys equal as pandas'
    ``groupby(dropna=False)`` finds them (None, NaN and NaT are one null value).

    >>> t = pa.table({'k': ['b', 'a', 'b', None], 'x': [1, 2, 3, 4]})
    >>> [(v, g['x'].to_pylist()) for v, g in groups(t, ['k'], ['x'])]
    [(('b',), [1, 3]), (('a',), [2]), ((None,), [4])]
    """
    kdf = table.select(keys).to_pandas(types_mapper=None)
    kdf.columns = range(len(keys))
    codes = kdf.groupby(list(kdf.columns), dropna=False, sort=False, observed=True).ngroup().to_numpy()
    count = int(codes.max()) + 1 if len(codes) else 0
    sizes = np.bincount(codes, minlength=count)
    first = np.empty(count, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the last write is the first row
    values = table.select(keys).take(arrow_array(first)).to_pylist()
    data = table.select(columns)
    if count == 1:
        yield tuple(values[0].values()), data
        return
    # a stable sort of small integers: NumPy sorts 16-bit ones by radix, in O(n)
    small = codes.astype(np.uint16 if count <= 1 << 16 else np.int64, copy=False)
    taken = data.take(arrow_array(np.argsort(small, kind="stable")))
    starts = np.cumsum(sizes) - sizes
    for g in range(count):
        yield tuple(values[g].values()), taken.slice(int(starts[g]), int(sizes[g]))
