"""The parts of a shuffle graph that differ between a hash shuffle and a sort, as small
frozen objects that travel in the :class:`~._plans.ShuffleSpec`:

- how a map task gives each row its output partition: :class:`HashIds` (shuffle_kit's
  hash), :class:`DaskIds` (``ddf.shuffle``'s assignment), :class:`RangeIds` (key ranges
  from a sample: :mod:`shuffle_kit.kernels.ranges`);
- how a read task makes its partition of the pieces: concatenated in input order (no
  object), or :class:`SortWithin` (sorted stably by the keys, a column then made the index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from ..frames import SCHEMA_KEY, Piece, piece_of, tables_to_frame, with_piece
from ..kernels.dask_assignment import dask_partition_ids
from ..kernels.hashing import partition_ids
from ..kernels.ranges import KeyOrder, range_ids
from ..kernels.take import take


class PartitionIds(Protocol):
    def __call__(self, df: pd.DataFrame, table: pa.Table, fields: list[str], n: int) -> np.ndarray:
        """The output partition of each row of ``df`` (``table``: it as Arrow, ``fields``:
        the Arrow names of its key columns)."""
        ...


class Arrange(Protocol):
    def __call__(self, tables: list[pa.Table]) -> pd.DataFrame:
        """One output partition of its pieces (in input order)."""
        ...


@dataclass(frozen=True)
class HashIds:
    """shuffle_kit's documented hash of the key columns."""

    def __call__(self, df: pd.DataFrame, table: pa.Table, fields: list[str], n: int) -> np.ndarray:
        return partition_ids(table, fields, n)


@dataclass(frozen=True)
class DaskIds:
    """The partition ``ddf.shuffle(keys)`` gives each row (co-partitioned with dask's shuffles)."""

    keys: tuple[str, ...]

    def __call__(self, df: pd.DataFrame, table: pa.Table, fields: list[str], n: int) -> np.ndarray:
        return dask_partition_ids(df[list(self.keys)], n)


@dataclass(frozen=True)
class RangeIds:
    """Key ranges: ``bounds`` (a table of key rows in ``order``, named as ``order.fields``)
    close partitions (``closed="right"``: a key equal to a bound goes below it) or open
    them (``"left"``: as dask's divisions)."""

    order: KeyOrder
    bounds: pa.Table
    closed: str = "right"

    def __call__(self, df: pd.DataFrame, table: pa.Table, fields: list[str], n: int) -> np.ndarray:
        keys = table.select(fields).rename_columns(list(self.order.fields))
        want = self.bounds.schema
        if keys.schema.remove_metadata() != want.remove_metadata():
            # this partition's conversion gave a narrower type (an object column of only nulls)
            keys = keys.cast(pa.schema([want.field(f) for f in self.order.fields]))
        return range_ids(keys, self.bounds, self.order, self.closed)


@dataclass(frozen=True)
class SortWithin:
    """Sort the partition stably by the keys in ``order`` (equal keys in input order, the
    index kept); then make the column ``index`` (a label) the index, as ``set_index`` does."""

    order: KeyOrder
    index: Any = None
    has_index: bool = False  # whether ``index`` is set (a label may be None)

    def __call__(self, tables: list[pa.Table]) -> pd.DataFrame:
        fields = list(self.order.fields)
        # a piece numbered as a RangeIndex keeps its numbers in its metadata, not in a
        # column: only an index about to be replaced may be numbered afresh
        if _one_layout(tables, numbered=self.has_index):
            # sorted as Arrow, then converted once: one gather of every column (strings
            # as their views), no pandas take
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            ranked = take(table, self.order.sort_indices(table.select(fields)))
            n = ranked.num_rows
            first = piece_of(tables[0])
            piece = Piece.numbered(n, 0) if first and first.ranged else Piece(n)
            # (tasks run on every core: no pyarrow pool; the take made the table's buffers,
            # so the frame may own them)
            frame = tables_to_frame([with_piece(ranked, piece)], threads=False, owned=True)
        else:
            keys = pa.concat_tables([t.select(fields) for t in tables], promote_options="permissive")
            frame = tables_to_frame(tables, threads=False)
            frame = frame.take(self.order.sort_indices(keys))
        return frame.set_index(self.index) if self.has_index else frame


def _one_layout(tables: list[pa.Table], numbered: bool) -> bool:
    """Whether the pieces share one schema and conversion, and hold their index as columns
    (or as RangeIndex numbers, if ``numbered``)."""
    first = tables[0].schema
    layout = (first.metadata or {}).get(SCHEMA_KEY)
    for t in tables:
        piece = piece_of(t)
        if layout is None or (piece is not None and piece.ranged and not numbered):
            return False
        if t.schema is not first and not (
            t.schema.equals(first) and (t.schema.metadata or {}).get(SCHEMA_KEY) == layout
        ):
            return False
    return True
