"""The result of a shuffle: a lazy sequence of partitions read from a store."""

from __future__ import annotations

import html
import os
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, overload

import numpy as np
import pandas as pd
import pyarrow as pa

from ..byte_sizes import format_size
from ..errors import ArgumentTypeError, JobError, PartitionIndexError
from ..frames import concat_tables, frame_to_table, tables_to_frame
from ..io import polars_frames
from ..kernels.keys import field_names
from ..kernels.ranges import KeyOrder
from ..partition_sizes import PartitionSizes

# partitions read together, converted from Arrow to pandas at once by the default store,
# are about this many bytes at most: a bound on memory that still makes many small
# partitions one conversion
BATCH_BYTES = 32 * 2**20


def _release(cleanups: list[Callable[[], None]]) -> None:
    # runs at close() or when the result is collected; each step at most once
    while cleanups:
        step = cleanups.pop()
        try:
            step()
        except Exception:  # a store already removed is not an error here
            pass


class ShuffleResult(Sequence):
    """``npartitions`` DataFrames, read from the store one at a time when asked for.

    Partition ``i`` holds every row whose key hashes to ``i``, in input order. Iterating
    gives pandas DataFrames; :meth:`iter_arrow` Arrow tables, :meth:`iter_polars` polars
    DataFrames, and ``partition(i, as_arrow=True)`` / ``partition(i, as_polars=True)`` one.
    Use it as a context manager (or call :meth:`close`) to remove a temporary store;
    it is also removed when the result is garbage collected.

    A range shuffle's result has ``boundaries`` (a DataFrame of the key columns: the last
    key of each partition but the last) and ``order`` (its :class:`KeyOrder`); both are
    None for other partitioners. ``partitioner`` says how the rows were assigned:
    ``'hash'`` (the documented hash, no seed), ``'dask'``, ``'range'``, or None (a function);
    a ``'hash'`` result is co-partitioned with any other on equal keys and partition count,
    which :func:`shuffle_kit.merge` reuses without shuffling it again.

    >>> import pandas as pd, shuffle_kit
    >>> df = pd.DataFrame({'k': [1, 2, 1, 3], 'v': [10, 20, 30, 40]})
    >>> with shuffle_kit.shuffle(df, 'k', 2, progress=False) as parts:
    ...     len(parts), sum(parts.sizes), sorted(parts.to_pandas()['v']), parts.partitioner
    (2, 4, [10, 20, 30, 40], 'hash')
    """

    def __init__(
        self,
        codec: Any,
        npartitions: int,
        sizes: np.ndarray,
        nbytes: np.ndarray,
        *,
        on: list,
        empty: pd.DataFrame,
        schema: pa.Schema | None,
        source: str,
        cleanups: list[Callable[[], None]] | None = None,
        owns_store: bool = False,
        batch_bytes: int = BATCH_BYTES,
        boundaries: pd.DataFrame | None = None,
        order: KeyOrder | None = None,
        partitioner: str | None = None,
    ):
        self.codec = codec
        self.partitioner = partitioner
        self.npartitions = npartitions
        self._sizes = sizes
        self._nbytes = nbytes
        self.on = on
        self._empty = empty
        self._schema = schema
        self.source = source
        self.owns_store = owns_store
        self.batch_bytes = batch_bytes
        self._cleanups = list(cleanups or [])
        self._closed = False
        self._finalizer = weakref.finalize(self, _release, self._cleanups)
        self.boundaries = boundaries
        self.order = order

    # -- the sequence ---------------------------------------------------------------------
    def __len__(self) -> int:
        return self.npartitions

    @overload
    def __getitem__(self, i: int) -> pd.DataFrame: ...
    @overload
    def __getitem__(self, i: slice) -> list[pd.DataFrame]: ...
    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.partition(j) for j in range(*i.indices(self.npartitions))]
        return self.partition(i)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return self._every(self.nonempty(), self._empty.copy)

    def iter_arrow(self) -> Iterator[pa.Table]:
        """Every partition in order as a ``pyarrow.Table``, read in batches as iterating
        the result reads DataFrames (empty partitions as empty tables).

        >>> import pandas as pd, shuffle_kit
        >>> with shuffle_kit.shuffle(pd.DataFrame({'k': [1, 1]}), 'k', 2, progress=False) as parts:
        ...     [t.num_rows for t in parts.iter_arrow()]
        [0, 2]
        """
        return self._every(self._filled(as_arrow=True), self._empty_table)

    def iter_polars(self) -> Iterator[Any]:
        """Every partition in order as a ``polars.DataFrame`` (needs polars)."""
        polars_frames.require("iter_polars()")
        return (polars_frames.to_polars(t) for t in self.iter_arrow())

    def _every(self, filled: Iterator[tuple[int, Any]], empty: Callable[[], Any]) -> Iterator[Any]:
        """Partitions ``0..npartitions-1``: those in ``filled``, ``empty()`` for the others."""
        upcoming = next(filled, None)
        for i in range(self.npartitions):
            if upcoming is not None and upcoming[0] == i:
                yield upcoming[1]
                upcoming = next(filled, None)
            else:
                yield empty()

    def nonempty(self) -> Iterator[tuple[int, pd.DataFrame]]:
        """``(i, partition i)`` for every partition holding rows, in order.

        Consecutive partitions of about ``batch_bytes`` together are read with one
        ``get`` of their keys (the default store converts them at once), one batch ahead
        on a thread (decoding releases the GIL), so reading overlaps with whatever the
        caller does; at most two batches are in memory.

        >>> import pandas as pd, shuffle_kit
        >>> with shuffle_kit.shuffle(pd.DataFrame({'k': [1, 1]}), 'k', 3, progress=False) as parts:
        ...     [(i, len(df)) for i, df in parts.nonempty()]
        [(0, 2)]
        """
        return self._filled(as_arrow=False)

    def _filled(self, as_arrow: bool) -> Iterator[tuple[int, Any]]:
        """What :meth:`nonempty` yields, as DataFrames or as Arrow tables."""
        self._index(0)  # closed?
        batches = iter(self._batches())
        with ThreadPoolExecutor(1, thread_name_prefix="shuffle_kit-read") as pool:
            keys = next(batches, None)
            ahead = pool.submit(self._read, keys, as_arrow) if keys else None
            while keys:
                current = ahead.result()  # type: ignore[union-attr]
                following = next(batches, None)
                ahead = pool.submit(self._read, following, as_arrow) if following else None
                yield from zip(keys, current)
                keys = following
                del current

    def _batches(self) -> list[list[int]]:
        """The non-empty partitions in runs of about ``batch_bytes``."""
        batches: list[list[int]] = []
        size = limit = self.batch_bytes
        for i in np.flatnonzero(self._sizes).tolist():
            if size + self._nbytes[i] > limit:
                batches.append([])
                size = 0
            batches[-1].append(i)
            size += self._nbytes[i]
        return batches

    def _read(self, keys: list[int], as_arrow: bool = False) -> list[Any]:
        self._index(keys[0])  # closed?
        if not as_arrow:
            return self.codec.get(keys)
        if not self.codec.stores_arrow:  # a codec of DataFrames only
            return [pa.Table.from_pandas(df) for df in self.codec.get(keys)]
        return self.codec.get(keys, as_arrow=True)

    def _index(self, i: Any) -> int:
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise ArgumentTypeError(f"partition index must be an int, not {type(i).__name__}")
        j = int(i) + self.npartitions if i < 0 else int(i)
        if not 0 <= j < self.npartitions:
            raise PartitionIndexError(f"partition {i} out of range for {self.npartitions} partitions")
        if self._closed:
            raise JobError("this shuffle result is closed; its store was removed")
        return j

    def partition(self, i: int, as_arrow: bool = False, *, as_polars: bool = False) -> Any:
        """Partition ``i`` as a DataFrame, as a ``pyarrow.Table`` with ``as_arrow=True``,
        or as a ``polars.DataFrame`` with ``as_polars=True`` (needs polars)."""
        if as_polars:
            if as_arrow:
                raise JobError("partition(): as_arrow and as_polars ask for two different types; give one")
            polars_frames.require("partition(as_polars=True)")
            return polars_frames.to_polars(self.partition(i, as_arrow=True))
        j = self._index(i)
        if self._sizes[j] == 0:
            return self._empty_table() if as_arrow else self._empty.copy()
        if not self.codec.stores_arrow:  # a codec of DataFrames only
            df = self.codec.get(j)
            return pa.Table.from_pandas(df) if as_arrow else df
        return self.codec.get(j, as_arrow=as_arrow)

    def empty(self) -> pd.DataFrame:
        """A DataFrame without rows with the partitions' columns and dtypes."""
        return self._empty.copy()

    def pieces(self, i: int, max_bytes: int = 64 * 2**20) -> Iterator[pd.DataFrame]:
        """Partition ``i`` as DataFrames, one per piece the store holds (about a chunk's
        rows each), without reading the partition whole; together they hold its rows in
        order (their index aside). The store is read about ``max_bytes`` of its (encoded)
        pieces at a time.

        >>> import pandas as pd, shuffle_kit
        >>> df = pd.DataFrame({'k': [1] * 6, 'x': range(6)})
        >>> with shuffle_kit.shuffle(iter([df[:4], df[4:]]), 'k', 1, progress=False) as parts:
        ...     [p['x'].tolist() for p in parts.pieces(0)]
        [[0, 1, 2, 3], [4, 5]]
        """
        j = self._index(i)
        if self._sizes[j] == 0:
            return
        for piece in self.codec.iter_pieces(j, max_bytes):
            yield piece if isinstance(piece, pd.DataFrame) else tables_to_frame([piece])

    def read(self, indices: Sequence[int]) -> list[pd.DataFrame]:
        """Partitions ``indices`` (in order, empty ones too) read with one ``get`` of the
        store's keys, so that the default store converts them to pandas at once."""
        js = [self._index(i) for i in indices]
        filled = [j for j in js if self._sizes[j]]
        frames = dict(zip(filled, self.codec.get(filled))) if filled else {}
        return [frames[j] if j in frames else self._empty.copy() for j in js]

    def _empty_table(self) -> pa.Table:
        return self._schema.empty_table() if self._schema is not None else pa.Table.from_pandas(self._empty)

    # -- sizes ----------------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        """Rows in each partition."""
        return [int(s) for s in self._sizes]

    @property
    def partition_sizes(self) -> PartitionSizes:
        """Rows per partition with their statistics, to see skew: min/median/max, the
        largest partitions (by number) and those above 10× the median.

        >>> import pandas as pd, shuffle_kit
        >>> with shuffle_kit.shuffle(pd.DataFrame({'k': [1] * 50 + list(range(9))}), 'k', 4, progress=False) as parts:
        ...     s = parts.partition_sizes
        ...     s.max == max(parts.sizes), s.largest(1)[0].rows == max(parts.sizes)
        (True, True)
        """
        return PartitionSizes.of(self._sizes)

    @property
    def nbytes(self) -> list[int]:
        """Approximate in-memory bytes of each partition (Arrow's sizes of the input rows)."""
        return [int(b) for b in self._nbytes]

    # -- whole-result conversions -----------------------------------------------------------
    def to_pandas(self) -> pd.DataFrame:
        """All partitions, one after another, as one DataFrame (needs it all in memory)."""
        frames = [frame for _, frame in self.nonempty()]
        if not frames:
            return self._empty.copy()
        if len(frames) == 1:
            return frames[0]
        keep_index = not isinstance(frames[0].index, pd.RangeIndex)
        return pd.concat(frames, ignore_index=not keep_index)

    def to_arrow(self) -> pa.Table:
        """All partitions, one after another, as one ``pyarrow.Table``."""
        tables = [table for _, table in self._filled(as_arrow=True)]
        if not tables:
            return self.partition(0, as_arrow=True)
        return pa.concat_tables(tables, promote_options="permissive")

    def to_polars(self) -> Any:
        """All partitions, one after another, as one ``polars.DataFrame`` (needs polars;
        ``pip install 'shuffle_kit[polars]'``). A pandas index becomes columns under its
        levels' names; unnamed levels are left out (see :func:`.polars_frames.to_polars`).

        >>> import polars as pl, shuffle_kit
        >>> with shuffle_kit.shuffle(pl.DataFrame({'k': [1, 2, 1]}), 'k', 2, progress=False) as parts:
        ...     parts.to_polars()['k'].to_list()
        [2, 1, 1]
        """
        polars_frames.require("to_polars()")
        return polars_frames.to_polars(self.to_arrow())

    def write_parquet(self, directory: str | os.PathLike, **kwargs: Any) -> list[str]:
        """Write partition ``i`` to ``directory/part-{i:05d}.parquet`` (one at a time, so
        memory holds one partition); return the paths. ``kwargs`` go to ``pq.write_table``."""
        import pyarrow.parquet as pq

        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        paths = []
        for i in range(self.npartitions):
            path = os.path.join(directory, f"part-{i:05d}.parquet")
            table = self.partition(i, as_arrow=True)
            # the user's schema (pandas' metadata included), not shuffle_kit's own bookkeeping
            meta = {k: v for k, v in (table.schema.metadata or {}).items() if not k.startswith(b"shuffle_kit.")}
            pq.write_table(table.replace_schema_metadata(meta or None), path, **kwargs)
            paths.append(path)
        return paths

    def sort_within_partitions(self) -> SortedResult:
        """This range shuffle's partitions, each sorted by the keys in their order when
        read (stable: equal keys keep their input order), so that they follow one another
        in key order. The new result takes over the store: close that one."""
        if self.order is None:
            raise ValueError("sort_within_partitions() sorts the result of shuffle(partitioner='range') only")
        out = SortedResult(
            self.codec, self.npartitions, self._sizes, self._nbytes, on=self.on, empty=self._empty,
            schema=self._schema, source=self.source, cleanups=list(self._cleanups), owns_store=self.owns_store,
            batch_bytes=self.batch_bytes, boundaries=self.boundaries, order=self.order,
            partitioner=self.partitioner,
        )
        self._cleanups.clear()  # (the finalizer's list: this result no longer removes the store)
        return out

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Remove the temporary store (if this result made it); a user's store stays."""
        self._closed = self._closed or self.owns_store
        self._finalizer()

    def __enter__(self) -> ShuffleResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- display --------------------------------------------------------------------------
    def _summary(self) -> dict[str, Any]:
        sizes = self._sizes
        return {
            "partitions": self.npartitions,
            "rows": int(sizes.sum()),
            "bytes": int(self._nbytes.sum()),
            "empty": int((sizes == 0).sum()),
            "largest": int(sizes.max()) if len(sizes) else 0,
            "on": self.on,
            # where the data lives: the codec stack down to the bytes (memory, a path, a server)
            "store": "closed" if self._closed else repr(self.codec),
            "input": self.source,
        }

    def __repr__(self) -> str:
        s = self._summary()
        return (
            f"<ShuffleResult on={s['on']!r}: {s['partitions']} partitions, {s['rows']:,} rows, "
            f"{format_size(s['bytes'])}, in {s['store']}>"
        )

    def _repr_html_(self) -> str:
        s = self._summary()
        rows = [
            ("Partitions", f"{s['partitions']:,} ({s['empty']:,} empty)"),
            ("Rows", f"{s['rows']:,} (largest partition {s['largest']:,})"),
            ("Bytes", format_size(s["bytes"])),
            ("Key", ", ".join(map(str, s["on"]))),
            ("Input", s["input"]),
            ("Store", s["store"]),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in rows
        )
        body += self.partition_sizes.html()  # known from the index: nothing is read
        return f"<div><strong>shuffle_kit.ShuffleResult</strong><table>{body}</table></div>"


class SortedResult(ShuffleResult):
    """A range shuffle's partitions, each sorted by its keys (stable) when read: iterating
    gives the rows in key order, partition after partition, and ``to_pandas()`` equals
    pandas' ``sort_values(kind="stable")`` (see :func:`shuffle_kit.sort_values`).

    A partition is read whole and sorted in memory: its pieces as Arrow, their key columns
    ordered by :meth:`KeyOrder.sort_indices`, its rows taken in that order.
    """

    order: KeyOrder

    def _read(self, keys: list[int], as_arrow: bool = False) -> list[Any]:
        self._index(keys[0])  # closed?
        return [self._sorted(k, as_arrow) for k in keys]

    def partition(self, i: int, as_arrow: bool = False, *, as_polars: bool = False) -> Any:
        if as_polars:
            return super().partition(i, as_polars=True)  # (reads it through this method as Arrow)
        j = self._index(i)
        if self._sizes[j] == 0:
            return super().partition(j, as_arrow)
        return self._sorted(j, as_arrow)

    def pieces(self, i: int, max_bytes: int = 64 * 2**20) -> Iterator[pd.DataFrame]:
        """Partition ``i`` as one piece, sorted (a partition is sorted whole), if it has rows."""
        j = self._index(i)
        if self._sizes[j]:
            yield self._sorted(j, False)

    def _sorted(self, j: int, as_arrow: bool) -> Any:
        """Partition ``j``, sorted."""
        fields = list(self.order.fields)
        if not self.codec.stores_arrow:  # a codec of DataFrames only: the keys from the frame
            frame = self.codec.get(j)
            keys = frame_to_table(frame[[k for k in self.on if k in frame.columns]] if all(
                k in frame.columns for k in self.on) else frame)
            positions = self.order.sort_indices(_keys(keys, self.on, fields))
            return _take(frame, positions, as_arrow)
        pieces = list(self.codec.iter_pieces(j))
        table = concat_tables(pieces)
        positions = self.order.sort_indices(table.select(fields))
        if as_arrow:
            return table.take(pa.array(positions))
        return _take(tables_to_frame(pieces), positions, False)


def _keys(table: pa.Table, on: list, fields: list[str]) -> pa.Table:
    """The key columns ``on`` of ``table`` under the Arrow names ``fields``."""
    return pa.Table.from_arrays([table.column(f) for f in field_names(table, on)], names=fields)


def _take(frame: pd.DataFrame, positions: np.ndarray, as_arrow: bool) -> Any:
    """The rows of ``frame`` at ``positions``; a dropped index (a RangeIndex) stays as it was."""
    out = frame.take(positions)
    if type(frame.index) is pd.RangeIndex:
        out.index = frame.index
    return pa.Table.from_pandas(out) if as_arrow else out
