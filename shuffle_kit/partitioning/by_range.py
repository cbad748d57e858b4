"""Range partitions for the partition job (``by_range``, ``--by-range``): files in key order.

Partition ``i`` holds the keys in ``(b[i-1], b[i]]`` of ``n - 1`` boundaries
(:func:`~shuffle_kit.kernels.ranges.range_ids`), in pandas' ``sort_values`` order: ascending
(or descending, per column), nulls and NaN last (or first), dictionaries (categoricals) by
value as ``sort_by`` and Parquet's statistics order them (the order is
:func:`~shuffle_kit.partitioning.sorting.key_order`'s, that of ``sort_by``). So every key
of file ``i`` sorts no later than every key of file ``i + 1``, equal keys never split, and
a file's key range is disjoint from the others'.

The boundaries come from a first pass over the key columns alone (:func:`plan`): for files,
only the key columns are read (Parquet's column projection: the other columns are never
decoded); for data in memory, only the key columns are converted. Their rows are offered to
a :class:`~shuffle_kit.kernels.ranges.Sampler` of
:func:`~shuffle_kit.kernels.ranges.sample_rows` rows, which holds the same rows however the
input is chunked and every row when there are no more (exact boundaries). The sample is
kept within a quarter of the budget (it holds up to twice its rows, and its boundaries
are found on a sorted copy), fewer rows for wide keys; it is freed before the second pass,
which is the partition engine's with range ids instead of hash ids (:meth:`RangePlan.ids`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..kernels.arrow_numpy import empty_table
from ..kernels.ranges import MIN_SAMPLE_ROWS, KeyOrder, Sampler, boundaries, chunk_range_ids, sample_rows
from .sorting import key_order

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RangePlan:
    """The order of the key columns, the ``npartitions - 1`` boundary keys, and the key
    types every chunk's keys are compared as (``schema``)."""

    order: KeyOrder
    bounds: pa.Table
    schema: pa.Schema

    def ids(self, table: pa.Table) -> np.ndarray:
        """The range partition of each row of ``table`` (a chunk holding the key columns).

        >>> t = pa.table({'k': [3, 1, None, 2]})
        >>> plan([t], ['k'], 2, t.schema, 2**20).ids(t).tolist()
        [1, 0, 1, 0]
        """
        return chunk_range_ids(table.select(list(self.order.fields)), self.bounds, self.order, self.schema)

    def describe(self) -> list[tuple[object, ...]]:
        """The boundaries as Python values, one tuple per boundary (for the log)."""
        columns = [self.bounds.column(f).to_pylist() for f in self.order.fields]
        return list(zip(*columns))


def _plain(field: pa.Field) -> pa.Field:
    """``field`` with a dictionary's value type instead."""
    return field.with_type(field.type.value_type) if pa.types.is_dictionary(field.type) else field


def sample_size(npartitions: int, row_bytes: float, budget: int) -> int:
    """Rows to sample for ``npartitions`` partitions, when a key takes ``row_bytes`` and the
    sample may use a quarter of ``budget`` bytes (it holds up to twice its rows, and a
    sorted copy is made of it): :func:`~shuffle_kit.kernels.ranges.sample_rows`, fewer for
    wide keys, never below :data:`~shuffle_kit.kernels.ranges.MIN_SAMPLE_ROWS`.

    >>> sample_size(8, 8, 2**30), sample_size(10**6, 8, 2**30), sample_size(10**6, 1000, 2**26)
    (1000, 1048576, 4194)
    """
    fits = int(budget // 4 // (4 * max(1.0, row_bytes)))
    return max(MIN_SAMPLE_ROWS, min(sample_rows(npartitions), fits))


def plan(keys: Iterable[pa.Table], on: Sequence[str], npartitions: int, schema: pa.Schema, budget: int,
         descending: Collection[str] = (), na_position: str = "last") -> RangePlan:
    """The range plan of an input whose key columns ``on`` come as the tables ``keys`` (in
    input order; each may hold other columns too), for ``npartitions`` partitions;
    ``schema``: the input's (the key types every chunk is cast to); ``budget``: bytes the
    job may hold (see :func:`sample_size`); ``descending``: the key columns ordered
    descending; ``na_position``: ``"last"`` or ``"first"``.

    >>> t = pa.table({'k': ['b', 'a', 'd', 'c', None]})
    >>> plan([t.slice(0, 2), t.slice(2)], ['k'], 3, t.schema, 2**20).bounds['k'].to_pylist()
    ['b', 'd']
    >>> plan([t], ['k'], 3, t.schema, 2**20, descending=['k'], na_position='first').bounds['k'].to_pylist()
    ['d', 'b']
    """
    fields = list(on)
    # dictionaries (pandas categoricals too) by their values, not their categories' order: as
    # --sort-by orders them and Parquet's statistics compare them, so that both agree
    key_schema = pa.schema([_plain(schema.field(f)) for f in fields])
    order = key_order(key_schema, fields, descending, na_position)  # refuses keys without an order, before reading
    sampler: Sampler | None = None
    for chunk in keys:
        if not chunk.num_rows:
            continue
        part = chunk.select(fields)
        if not part.schema.equals(key_schema):
            part = part.cast(key_schema)
        if sampler is None:  # the first chunk tells the keys' width (the same for any thread count)
            sampler = Sampler(sample_size(npartitions, part.nbytes / part.num_rows, budget))
        sampler.add(part)
        del chunk, part
    sample = empty_table(key_schema) if sampler is None else sampler.sample()
    bounds = boundaries(sample, npartitions, order)
    rows = 0 if sampler is None else sampler.rows
    logger.info("range boundaries of %d partitions from a sample of %s of %s rows%s", npartitions,
                f"{sample.num_rows:,}", f"{rows:,}", " (every row: exact)" if sample.num_rows == rows else "")
    result = RangePlan(order, bounds, key_schema)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("range boundaries (the last key of each partition but the last): %s", result.describe())
    return result
