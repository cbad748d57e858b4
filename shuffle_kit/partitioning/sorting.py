"""Rows of an output file in key order, in bounded memory (``sort_by``).

The order is pandas' ``sort_values(kind="stable")``, as :class:`~shuffle_kit.kernels.ranges.KeyOrder`
orders keys: each column ascending or descending (:func:`key_order`), NaN and nulls alike
missing values, last (or first), among themselves in input order; dictionary columns by
their values (as Parquet's statistics compare them); and stable: rows with equal keys
keep their input order. Keys given as column names are ascending, missing values last.

What fits in one batch is sorted in memory. A larger stream is cut into batches of about
half the batch size (a batch and its sorted copy), each sorted and written as a *run* (an
Arrow IPC stream under ``directory``). Runs are merged a slice at a time: every run
contributes its current slice; the smallest of the slices' last rows is a bound that no
row still unread can be below, so every row up to it, in every slice, is final: those rows
are taken in order and handed out, and a run whose slice is used up reads its next one.
Ties need no hidden key: the runs are kept in input order (run ``i`` holds rows read
before run ``i + 1``'s) and their slices are joined in that order, so a stable sort of
the joined slices by the keys alone puts equal keys in input order, and a slice's last
row is ranked before every equal row of a later run. (A sort by the keys alone is several
times faster than by them and a row number.) At most :data:`FAN_IN` runs are merged at
once (more are first merged, consecutive runs at a time, into longer runs that keep the
input order), so the slices in memory stay within the batch size.

>>> import pyarrow as pa, tempfile, shutil
>>> d = tempfile.mkdtemp()
>>> t = pa.table({'k': [3, None, 1, 2, 1], 'v': list('abcde')})
>>> out = pa.concat_tables(sorted_stream([t.slice(0, 2), t.slice(2)], ['k'], t.schema, 64, d))
>>> out['k'].to_pylist(), out['v'].to_pylist()
([1, 1, 2, 3, None], ['c', 'e', 'd', 'a', 'b'])
>>> down = key_order(t.schema, ['k'], descending=['k'], na_position='first')
>>> sorted_table(t, down)['v'].to_pylist()
['b', 'a', 'd', 'c', 'e']
>>> shutil.rmtree(d)
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Collection, Generator, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..errors import UnorderableKeyError
from ..kernels.arrow_numpy import arrow_array, empty_table
from ..kernels.ranges import KeyOrder
from .writers import conformed_batches

FAN_IN = 8  # runs merged at once: each holds a slice of 1/FAN_IN of the batch in memory


def key_order(schema: pa.Schema, columns: Sequence[str], descending: Collection[str] = (),
              na_position: str = "last") -> KeyOrder:
    """The order of rows by ``columns`` of ``schema``: ascending, but those named in
    ``descending``; missing values ``na_position``; dictionaries by their values.

    >>> key_order(pa.schema({'a': pa.int8(), 'b': pa.string()}), ['a', 'b'], descending=['b']).ascending
    (True, False)
    """
    fields = [schema.field(c) for c in columns]
    plain = pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in fields])
    return KeyOrder.of(empty_table(plain), list(columns), [c not in descending for c in columns], na_position)


SortKeys = Sequence[str] | KeyOrder  # column names (ascending, missing values last) or an order


def _order(keys: SortKeys, schema: pa.Schema) -> KeyOrder:
    return keys if isinstance(keys, KeyOrder) else key_order(schema, keys)


def sortable(t: pa.DataType) -> bool:
    """Whether values of type ``t`` have an order to sort by."""
    try:
        sort_indices(empty_table(pa.schema({"c": t})), ["c"])
        return True
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid, UnorderableKeyError):
        return False


def sort_indices(table: pa.Table, keys: SortKeys) -> np.ndarray:
    """The stable order of ``table``'s rows by ``keys`` (see the module)."""
    return _order(keys, table.schema).sort_indices(table)


def sorted_table(table: pa.Table, keys: SortKeys) -> pa.Table:
    """``table``'s rows sorted by ``keys`` (see the module)."""
    if table.num_rows < 2:
        return table
    return table.take(arrow_array(sort_indices(table, keys)))


def sorted_stream(pieces: Iterable[pa.Table], keys: SortKeys, schema: pa.Schema, batch_bytes: int,
                  directory: str) -> Iterator[pa.Table]:
    """The rows of ``pieces`` (of ``schema``) sorted by ``keys``, as tables of about
    ``batch_bytes``; runs go to ``directory`` and are removed before the end."""
    batches = conformed_batches(pieces, schema, max(1, batch_bytes // 2))
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    if second is None:
        yield sorted_table(first, keys)
        return
    keys = _order(keys, schema)
    slice_rows = max(1, first.num_rows // FAN_IN)
    made: list[_SortedRun] = []  # every run, removed at the end
    try:
        runs = []  # in input order: what lets ties go without a row number
        for batch in itertools.chain([first, second], batches):
            runs.append(_SortedRun.write(directory, [sorted_table(batch, keys)], slice_rows))
            made.append(runs[-1])
            del batch
        while len(runs) > FAN_IN:  # a pass: consecutive runs merged, so the order stays the input's
            groups = [runs[i : i + FAN_IN] for i in range(0, len(runs), FAN_IN)]
            runs = []
            for group in groups:
                if len(group) > 1:
                    made.append(_SortedRun.write(directory, _merge(group, keys), slice_rows))
                    for run in group:
                        run.remove()
                runs.append(made[-1] if len(group) > 1 else group[0])
        yield from _merge(runs, keys)
    finally:
        for run in made:
            run.remove()


class _SortedRun:
    """A sorted run: an Arrow IPC stream of slices, read back one slice at a time."""

    def __init__(self, path: str):
        self.path = path

    @classmethod
    def write(cls, directory: str, tables: Iterable[pa.Table], slice_rows: int) -> _SortedRun:
        fd, path = tempfile.mkstemp(prefix="sort-", suffix=".arrow", dir=directory)
        os.close(fd)
        run = cls(path)
        try:
            writer = None
            with pa.OSFile(path, "wb") as sink:
                for table in tables:
                    # an IPC stream's batches share one dictionary per column
                    table = table.unify_dictionaries().combine_chunks()
                    if writer is None:
                        writer = pa.ipc.new_stream(sink, table.schema)
                    for batch in table.to_batches(max_chunksize=slice_rows):
                        writer.write_batch(batch)
                if writer is not None:
                    writer.close()
        except BaseException:
            run.remove()
            raise
        return run

    def read(self) -> Generator[pa.Table, None, None]:
        if not os.path.getsize(self.path):
            return
        with pa.OSFile(self.path, "rb") as f:
            reader = pa.ipc.open_stream(f)
            for batch in reader:
                yield pa.Table.from_batches([batch])

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _merge(runs: list[_SortedRun], keys: KeyOrder) -> Iterator[pa.Table]:
    """The rows of sorted ``runs`` (in input order) in order, equal keys in input order."""
    readers = [r.read() for r in runs]
    slices = [next(r, None) for r in readers]
    live = [(r, s) for r, s in zip(readers, slices) if s is not None]
    try:
        while len(live) > 1:
            combined = pa.concat_tables([s for _, s in live])
            order = sort_indices(combined, keys)
            ends = np.cumsum([s.num_rows for _, s in live])
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            # every row up to the smallest last row of the slices is final
            final = order[: int(rank[ends - 1].min()) + 1]
            yield combined.take(arrow_array(final))
            used = np.bincount(np.searchsorted(ends, final, side="right"), minlength=len(live))
            kept = []
            for (reader, s), n in zip(live, used):
                rest = s.slice(int(n)) if n < s.num_rows else next(reader, None)
                if rest is not None:
                    kept.append((reader, rest))
            live = kept
        for reader, s in live:
            yield s
            yield from reader
    finally:
        for reader in readers:
            reader.close()
