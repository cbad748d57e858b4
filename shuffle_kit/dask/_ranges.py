"""The key ranges of a dask sort, from a first pass over the input (as dask's own
``set_index`` and ``sort_values`` compute their divisions from quantiles per partition).

:func:`sample_partition` runs per input partition: a :class:`~shuffle_kit.kernels.ranges.Sampler`
sample of its key columns (every row of a partition no larger than the sample), its row
count and, for ``set_index``, its smallest and largest non-null key. :func:`combine`
draws from the samples in proportion to the partitions' rows (so a small partition does
not weigh as much as a large one) and takes the boundaries of that sample;
:func:`divisions_of` turns them into dask's divisions (``set_index`` needs them before
its graph is built, so it computes the samples first, as dask does); ``sort_values`` and
``shuffle(..., partitioner="range")``, whose divisions are unknown, sample in their own
graph (:class:`SampledRanges`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..kernels.keys import to_table
from ..kernels.ranges import KeyOrder, Sampler, boundaries, range_ids
from ._assign import RangeIds

SAMPLE_ROWS = 1000  # sampled per input partition at least (every row of a smaller one)
SAMPLE_PER_OUTPUT = 20  # ... and this many per output partition


@dataclass(frozen=True)
class PartitionSample:
    keys: pa.Table  # sampled rows of the key columns (Arrow names, the schema's pandas metadata kept)
    rows: int
    low: Any = None  # the smallest non-null key (set_index only), None when there is none
    high: Any = None


def sample_partition(df: pd.DataFrame, keys: list, fields: list[str], size: int, extremes: bool) -> PartitionSample:
    """The sample of one input partition (its rows with the smallest hashes of their
    numbers), its key columns named ``fields`` (as the whole frame's conversion names them);
    only the key columns are converted (the index too when a key is one of its levels)."""
    in_columns = all(k in df.columns for k in keys)
    table, own, _ = to_table(df[keys] if in_columns else df, keys, keep_index=not in_columns)
    # keys without an order are refused here, from the converted table's schema (which
    # tells the columns holding pickled objects)
    KeyOrder.of(table, own)
    columns = table.select(own).rename_columns(fields)
    sample = Sampler.of([columns], size) if columns.num_rows else columns
    low = high = None
    if extremes:
        values = df[keys[0]]
        if values.hasnans:
            values = values.dropna()
        if len(values):
            low, high = values.min(), values.max()
    return PartitionSample(sample, len(df), low, high)


def combine(samples: list[PartitionSample], fields: list[str], npartitions: int, ascending: Any,
            na_position: str) -> tuple[KeyOrder, pa.Table, pa.Table]:
    """(the key order, the sample drawn in proportion to the partitions' rows, its
    ``npartitions - 1`` boundaries). A partition sampled whole keeps every row when all
    are: the boundaries are then exact."""
    rate = min((s.keys.num_rows / s.rows for s in samples if s.rows), default=1.0)
    drawn = []
    for j, s in enumerate(samples):
        want = min(s.keys.num_rows, round(rate * s.rows))
        if want < s.keys.num_rows:  # a fixed draw: the same sample on every run
            picked = np.sort(np.random.default_rng(j).choice(s.keys.num_rows, want, replace=False))
            drawn.append(s.keys.take(pa.array(picked)))
        else:
            drawn.append(s.keys)
    sample = pa.concat_tables(drawn, promote_options="permissive")
    order = KeyOrder.of(sample, fields, ascending, na_position)
    return order, sample, boundaries(sample, npartitions, order)


def divisions_of(order: KeyOrder, sample: pa.Table, bounds: pa.Table,
              samples: list[PartitionSample]) -> tuple[pa.Table, tuple]:
    """(the keys that open partitions 1, 2, ..., dask's divisions) of a one-column
    ascending order: partition ``i`` holds ``[division i, division i+1)`` (the last one
    closed), as dask's ``set_index``. The opening keys are the sample's first key of each
    partition after the first; a range the sample left empty or that would open with a
    null is dropped, so there may be fewer partitions than asked (dask too gives fewer
    for fewer distinct keys). The first and last divisions are the smallest and largest
    non-null keys; nulls go to the last partition, beyond its division, as in dask.
    No non-null key at all: one partition, unknown divisions ``(None, None)``."""
    lows = [s.low for s in samples if s.low is not None]
    if not lows:
        return sample.slice(0, 0), (None, None)
    ranked = sample.take(pa.array(order.sort_indices(sample)))
    ids = range_ids(ranked, bounds, order)
    starts = np.unique(np.searchsorted(ids, np.arange(1, bounds.num_rows + 1), side="left"))
    starts = starts[starts < ranked.num_rows]
    opening = ranked.take(pa.array(starts, type=pa.int64()))
    valid = np.asarray(opening.column(0).is_valid()) if opening.num_rows else np.zeros(0, bool)
    if opening.num_rows and opening.column(0).type in (pa.float16(), pa.float32(), pa.float64()):
        valid &= ~np.isnan(np.asarray(opening.column(0).to_numpy(zero_copy_only=False), dtype=float))
    opening = opening.filter(pa.array(valid))
    inner = opening.column(0).to_pandas().tolist()
    low, high = min(lows), max(s.high for s in samples if s.high is not None)
    return opening, (low, *inner, high)


@dataclass(frozen=True)
class SampledRanges:
    """The key ranges of a shuffle whose sample is taken in its own graph (no first
    computation, and an input partition that is not persisted is computed once): the
    graph's sample tasks call :func:`sample_partition` with ``keys``, ``fields`` and
    ``size``, and one task calls this object on their samples.

    >>> ranges = SampledRanges(("k",), ("k",), 2, True, "last")
    >>> part = sample_partition(pd.DataFrame({'k': [3, 1, 2, 4]}), ['k'], ['k'], ranges.size, False)
    >>> ranges(part).bounds['k'].to_pylist()
    [2]
    """

    keys: tuple[str, ...]
    fields: tuple[str, ...]  # the keys' Arrow names (see key_fields)
    npartitions: int
    ascending: Any
    na_position: str

    @property
    def size(self) -> int:
        return sample_size(self.npartitions)

    def __call__(self, *samples: PartitionSample) -> RangeIds:
        order, _, bounds = combine(list(samples), list(self.fields), self.npartitions, self.ascending,
                                   self.na_position)
        return RangeIds(order, bounds)


def sample_size(npartitions: int) -> int:
    """Rows sampled per input partition for ``npartitions`` output partitions."""
    return max(SAMPLE_ROWS, SAMPLE_PER_OUTPUT * npartitions)


def check_order(fields: list[str], ascending: Any, na_position: str) -> KeyOrder:
    """The order ``ascending`` and ``na_position`` give the key columns ``fields``, checked
    now (a bad argument fails at the call); the key types, and the categories a
    categorical sorts by, come with the sample.

    >>> check_order(['a', 'b'], [True, False], 'first').ascending
    (True, False)
    """
    placeholder = pa.table({f: pa.array([], pa.int64()) for f in fields})
    return KeyOrder.of(placeholder, fields, ascending, na_position)


def sample_ranges(ddf: Any, keys: list, n: int, ascending: Any, na_position: str, extremes: bool) -> tuple:
    """(each input partition's sample, the key order, the drawn sample, its ``n - 1``
    boundaries), computed now: the graph to come needs them, as dask's divisions."""
    import dask

    size = sample_size(n)
    task = dask.delayed(sample_partition, pure=True)
    fields = key_fields(ddf, keys)
    samples = list(dask.compute(*[task(part, keys, fields, size, extremes) for part in ddf.to_delayed()]))
    order, sample, bounds = combine(samples, fields, n, ascending, na_position)
    return samples, order, sample, bounds


def key_fields(ddf: Any, keys: list) -> list[str]:
    """The Arrow names of the key columns, as the map tasks' conversion names them."""
    _, fields, _ = to_table(ddf._meta, keys, keep_index=True)
    return fields
