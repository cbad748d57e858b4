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
import pyarrow.compute as pc

from ..kernels.arrow_numpy import arrow_array
from ..kernels.arrow_numpy import values as values_of
from ..kernels.ranges import KeyOrder
from . import hive
from .layout import DEFAULT_LAYOUT, Layout
from .sorting import key_order
from .writers import MAX_OPEN_FILES, FileSeries, WriterPool, conformed_batches, stored_type


class ValueFiles:
    """Where the partition engine writes when files go by key value (see the module);
    ``token`` (a job's, when it appends): in every file's name, ``part-TOKEN-NNNNN``;
    ``descending`` and ``na_position``: the order of ``layout.sort_by``
    (:func:`~shuffle_kit.partitioning.sorting.key_order`)."""

    row_groups = False  # the values a partition holds are known only once it is whole
    dictionary_pages = False  # (written whole: never as row groups of open files)

    def __init__(self, directory: str, schema: pa.Schema, on: Sequence[str], fmt: str, compression: str,
                 max_open: int = MAX_OPEN_FILES, max_values: int | None = None, layout: Layout = DEFAULT_LAYOUT,
                 token: str | None = None, descending: Sequence[str] = (), na_position: str = "last"):
        self.directory, self.schema, self.on = directory, schema, list(on)
        self.max_values, self.layout, self.token = max_values, layout, token
        self.descending, self.na_position = tuple(descending), na_position
        self.columns = [f.name for f in schema if layout.keep_keys or f.name not in self.on]
        self.data_schema = file_schema(schema, self.on, layout.keep_keys)
        self.fmt, self.compression, self.max_open = fmt, compression, max_open
        self.files = 0
        self.dirs: set[str] = set()
        self.rows: dict[str, int] = {}  # directory -> rows written into it
        self.values: dict[str, tuple] = {}  # directory -> its key values
        self._lock = threading.Lock()

    @property
    def sort_keys(self) -> KeyOrder | None:
        if not self.layout.sort_by:
            return None
        return key_order(self.schema, [*self.on, *self.layout.sort_by], self.descending, self.na_position)

    @property
    def held_rows(self) -> int:
        return self.layout.row_group_size or 0

    def open(self, p: int) -> FileSeries:
        raise NotImplementedError("files by value are written whole: see ValueFiles.write")

    def write(self, p: int, pieces: Iterable[pa.Table], batch_bytes: int, rows: int | None = None) -> int:
        """Partition ``p``'s rows, a batch of about ``batch_bytes`` at a time: a partition
        within one batch gets one file per value; a larger one may get several per value,
        with at most ``max_open`` files open (``rows``: unused, each file's rows are known
        only once its batch is grouped)."""
        pool = WriterPool(self.directory, self.data_schema, self.fmt, self.compression, self.max_open,
                          self.layout.max_rows_per_file, self.layout.row_group_size, self.token)
        written: dict[str, int] = {}  # rows per directory
        keys: dict[str, tuple] = {}
        try:
            for batch in conformed_batches(pieces, self.schema, batch_bytes):
                values, parts = groups(batch, self.on, self.columns)
                for i, (rel, group) in enumerate(zip(hive.value_paths(self.on, values), parts)):
                    if rel not in pool.dirs:
                        self._count(rel)
                        keys[rel] = key_row(values, i)
                    pool.write(rel, group)
                    written[rel] = written.get(rel, 0) + group.num_rows
        finally:
            pool.close_all()
        with self._lock:
            self.files += pool.files
            self.rows.update(written)  # a value lives in one partition: no directory is counted twice
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


def key_row(values: pa.Table, i: int) -> tuple:
    """The key values of row ``i`` as Python values (for the summary); a value Python's
    ``datetime`` or ``timedelta`` cannot hold (beyond the year 9999, say) as its text.

    >>> key_row(pa.table({'k': pa.array([2**53], pa.duration('s')), 'n': [1]}), 0)
    ('9007199254740992', 1)
    """
    row = []
    for column in values.slice(i, 1).columns:
        try:
            row.append(column.to_pylist()[0])
        except (OverflowError, ValueError):
            row.append(hive.value_texts(column)[0])
    return tuple(row)


KEY_TYPES = b"shuffle_kit.keys"  # in the files' schema: the key columns' types, which an append compares


def file_schema(schema: pa.Schema, on: Sequence[str], keep_keys: bool = False) -> pa.Schema:
    """The schema of the files by value: the columns of ``schema`` but the keys ``on``
    (unless ``keep_keys``), with pyarrow's pandas metadata of those columns, so that a file
    (or the dataset) reads back into pandas with the input's dtypes, as hash files do; and
    the key columns' types under :data:`KEY_TYPES` (JSON), which the directory names
    alone do not tell.

    A key column left out of the files is not in their pandas metadata: a hive reader
    makes it from the directory names, typed as it infers them (``pd.read_parquet`` of the
    dataset: a category of int32 or string values), not as the input's dtype.

    >>> s = file_schema(pa.schema({'k': pa.int64(), 'x': pa.string()}), ['k'])
    >>> s.names, s.metadata
    (['x'], {b'shuffle_kit.keys': b'{"k": "int64"}'})
    """
    import json

    keys = set(on)
    fields = [f for f in schema if keep_keys or f.name not in keys]
    metadata = dict(schema.metadata or {})
    pandas = schema.pandas_metadata
    if pandas is not None and not keep_keys:
        pandas["columns"] = [c for c in pandas.get("columns", []) if c.get("field_name") not in keys]
        # (a named index that is a key: back as a column, from its directories)
        pandas["index_columns"] = [i for i in pandas.get("index_columns", []) if not (isinstance(i, str) and i in keys)]
        metadata[b"pandas"] = json.dumps(pandas).encode()
    metadata[KEY_TYPES] = json.dumps({k: str(stored_type(schema.field(k).type)) for k in on}).encode()
    return pa.schema(fields, metadata=metadata)


def key_types(schema: pa.Schema) -> dict[str, str] | None:
    """The key columns' types a file by value records (:func:`file_schema`), or None."""
    import json

    text = (schema.metadata or {}).get(KEY_TYPES)
    try:
        return None if text is None else dict(json.loads(text))
    except (ValueError, TypeError):
        return None


def groups(table: pa.Table, keys: list[str], columns: list[str]) -> tuple[pa.Table, Iterator[pa.Table]]:
    """The key values of ``table`` (the ``keys`` of each value's first row), in order of
    first appearance, and the ``columns`` of each value's rows in input order. Keys are
    grouped by their exact Arrow values (never through float64, so ``2**53`` and
    ``2**53 + 1`` are two values whatever the nulls); None, NaN and NaT are one null value
    and ``-0.0`` is ``0.0``, as in pandas' ``groupby(dropna=False)``; a dictionary column
    goes by its values.

    >>> t = pa.table({'k': ['b', 'a', 'b', None], 'x': [1, 2, 3, 4]})
    >>> values, parts = groups(t, ['k'], ['x'])
    >>> values['k'].to_pylist(), [g['x'].to_pylist() for g in parts]
    (['b', 'a', None], [[1, 3], [2], [4]])
    >>> big = pa.table({'k': [2**53, 2**53 + 1, None, 2**53 + 1], 'x': [1, 2, 3, 4]})
    >>> [g['x'].to_pylist() for g in groups(big, ['k'], ['x'])[1]]
    [[1], [2, 4], [3]]
    """
    if not table.num_rows:
        return table.select(keys), iter(())
    codes, bound = value_codes(table.column(keys[0]))
    for key in keys[1:]:  # one code per combination: dense codes (< rows) times the next bound fit int64
        more, more_bound = value_codes(table.column(key))
        codes, bound = _first_seen(codes * more_bound + more)
    if len(keys) == 1 and pa.types.is_dictionary(table.column(keys[0]).type):  # (codes by dictionary index)
        codes, bound = _first_seen(codes)
    sizes = np.bincount(codes, minlength=bound)
    first = np.empty(bound, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the last write is the first row
    values = table.select(keys).take(arrow_array(first))
    return values, _parts(table.select(columns), codes, sizes)


def value_codes(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """A code in ``range(bound)`` for each value of ``column`` (and that ``bound``): equal
    codes for equal values, one for every null (None, NaN); a plain column's codes count
    its values in order of first appearance.

    >>> value_codes(pa.array([0.0, float('nan'), -0.0, None, 2.5]))[0].tolist()
    [0, 1, 0, 1, 2]
    """
    t = column.type
    if pa.types.is_dictionary(t):
        # the codes of the dictionary's values (a null appended for the null indices), by index
        chunks = column.unify_dictionaries().chunks if isinstance(column, pa.ChunkedArray) else [column]
        dictionary = chunks[0].dictionary if chunks else pa.nulls(0, t.value_type)
        by_index, bound = value_codes(pa.concat_arrays([dictionary, pa.nulls(1, dictionary.type)]))
        if not chunks:
            return np.zeros(0, dtype=np.int64), bound
        index_type = np.dtype(str(t.index_type))
        indices = [values_of(c.indices.fill_null(len(dictionary)), index_type) for c in chunks]
        return by_index[np.concatenate(indices).astype(np.int64, copy=False)], bound
    if pa.types.is_null(t):
        return np.zeros(len(column), dtype=np.int64), 1
    encoded = pc.dictionary_encode(hive.float_key(column), null_encoding="encode")
    pieces = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    bound = len(pieces[0].dictionary) if pieces else 0
    codes = [values_of(p.indices, np.int32) for p in pieces]  # (no nulls: null has a code of its own)
    return (np.concatenate(codes).astype(np.int64) if codes else np.zeros(0, dtype=np.int64)), bound


def _first_seen(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """``codes`` renumbered densely, in order of first appearance."""
    encoded = pc.dictionary_encode(arrow_array(codes))
    return values_of(encoded.indices, np.int32).astype(np.int64), len(encoded.dictionary)


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
