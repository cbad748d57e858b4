"""The first pass of ``shuffle(partitioner="range")``: the boundaries, from a sample of the keys.

Range partitioning needs the boundaries before the first row can be placed, so the input
is read twice, or read once and held:

* an input already in memory (a pandas DataFrame, an Arrow table, a polars DataFrame) is
  read twice: the first pass converts only the key columns of each chunk and offers them
  to the :class:`~shuffle_kit.kernels.ranges.Sampler`; the second is the hash path's, chunk
  by chunk, with range ids instead of hash ids;
* any other input (an iterator, a stream, files) is read once: the first pass converts each
  chunk and holds it, in input order, in a :class:`Staging` buffer (a ``TableBuffer`` over
  a temporary ``File``: Arrow tables in memory up to the memory limit, the oldest spilled
  beyond it, as the shuffle's own store does), and the second pass takes the chunks back
  in order, freeing each as it goes. A stream cannot be read again, and a file read again
  would be decoded again; an input that fits the limit is then never written anywhere.

The sample holds ``max(1000, 100 * npartitions)`` rows (:func:`~shuffle_kit.kernels.ranges.sample_rows`),
the same rows however the input is chunked; an input of no more rows is sampled whole,
so its boundaries are exact. Its bytes count against the memory limit (the staging buffer
keeps that much less).

Chunks may drift in their key types (a slice of an object column holding only None is
Arrow's null type; an iterator may give integers, then floats): the sample and every
chunk's keys are cast to the key types all chunks concatenate to (Arrow's permissive
promotion, as the hash path's partitions are concatenated when read).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from ..codecs import TableBuffer
from ..errors import JobError, UnorderableKeyError
from ..io.readers import Chunk
from ..kernels.keys import drop_null_keys
from ..kernels.ranges import KeyOrder, Sampler, boundaries, chunk_range_ids, sample_rows
from ..stores import File


class Converted(NamedTuple):
    """A chunk as Arrow (:func:`~shuffle_kit.kernels.keys.to_table`): the table, the Arrow
    names of its key columns, and whether its dropped index is to be renumbered."""

    table: pa.Table
    fields: list[str]
    renumber: bool


def key_table(table: pa.Table, fields: list[str], names: tuple[str, ...]) -> pa.Table:
    """The key columns ``fields`` of ``table`` under ``names`` (the first chunk's), without
    the table's metadata."""
    return pa.Table.from_arrays([table.column(f) for f in fields], names=list(names))


class KeySample:
    """The key columns of the input's chunks, in input order, offered to a :class:`Sampler`
    with their types unified; null keys left out if ``dropna`` (those rows are dropped)."""

    def __init__(self, order: KeyOrder, npartitions: int, dropna: bool):
        self.order = order
        self.npartitions = npartitions
        self.dropna = dropna
        self.sampler = Sampler(sample_rows(npartitions))
        self.schema: pa.Schema | None = None  # the key types so far
        self._checked: pa.Schema | None = None  # the last chunk's schema, found orderable

    def add(self, table: pa.Table, fields: list[str], index: int) -> None:
        """Offer the keys of chunk number ``index`` (``table``, its key columns ``fields``)."""
        if self._checked is None or not table.schema.equals(self._checked, check_metadata=True):
            # a later chunk may hold what has no order (a slice of an object column whose
            # values are not all strings is pickled): refused here, before any is placed
            try:
                KeyOrder.of(table, fields)
            except UnorderableKeyError as e:
                raise UnorderableKeyError(f"chunk {index} of the input: {e}") from None
            self._checked = table.schema
        keys = key_table(table, fields, self.order.fields)
        if self.dropna:
            keys = drop_null_keys(keys, list(self.order.fields))
        self.sampler.add(self._unified(keys, index))

    def _unified(self, keys: pa.Table, index: int) -> pa.Table:
        if self.schema is None:
            self.schema = keys.schema
            return keys
        if keys.schema.equals(self.schema):
            return keys
        try:
            wider = pa.unify_schemas([self.schema, keys.schema], promote_options="permissive")
            if not wider.equals(self.schema):
                self.sampler.cast(wider)
                self.schema = wider
            return keys.cast(wider)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise JobError(
                f"chunk {index} of the input cannot be concatenated with the first chunk: {e}"
            ) from None

    @property
    def nbytes(self) -> int:
        return self.sampler.nbytes

    def plan(self, first: pa.Table) -> RangePlan:
        """The boundaries of the sample (none for an input without rows); ``first``: the
        first chunk's keys, for the order of an input whose key types widened."""
        assert self.schema is not None  # (the first chunk is always offered)
        order = self.order
        # rows offered means rows held: no sample only for an input without (non-null) keys
        sample = self.sampler.sample() if self.sampler.rows else self.schema.empty_table()
        if not first.schema.equals(self.schema):  # the order of the unified types (categories)
            unified = KeyOrder.of(sample if sample.num_rows else first.cast(self.schema), order.fields,
                                  list(order.ascending), "last" if order.nulls_last else "first")
            # the sample has no pandas metadata: a pandas categorical whose type stayed a
            # dictionary keeps the first chunk's categories, ordered or not
            kept = tuple(
                new if new is not None or old is None or not pa.types.is_dictionary(self.schema.field(f).type)
                else old for f, new, old in zip(order.fields, unified.categories, order.categories)
            )
            order = replace(unified, categories=kept)
        return RangePlan(order, boundaries(sample, self.npartitions, order), self.schema)


@dataclass(frozen=True)
class RangePlan:
    """The order, the ``npartitions - 1`` boundary keys, and the key types every chunk's
    keys are cast to; :meth:`ids` is the partitioner of the second pass."""

    order: KeyOrder
    bounds: pa.Table
    schema: pa.Schema

    def ids(self, table: pa.Table, fields: list, npartitions: int) -> np.ndarray:
        """The partition of each row of ``table`` (key columns ``fields``)."""
        return chunk_range_ids(key_table(table, fields, self.order.fields), self.bounds, self.order, self.schema)

    def frame(self, on: list, empty: pd.DataFrame) -> pd.DataFrame:
        """The boundaries as a DataFrame of the key columns ``on``, with the dtypes of the
        result's partitions (``empty``) where the values allow."""
        df = self.bounds.replace_schema_metadata(None).to_pandas()
        df.columns = pd.Index(on)
        for k in on:
            dtype = empty[k].dtype if k in empty.columns else empty.index.get_level_values(k).dtype
            try:
                df[k] = df[k].astype(dtype)
            except (TypeError, ValueError):  # NA in an integer column: pandas' own promotion stays
                pass
        return df


class Staging:
    """Chunks held in input order between the passes: Arrow tables in a ``TableBuffer``
    over a temporary ``File`` (``memory_limit`` bytes in memory, the oldest spilled)."""

    def __init__(self, memory_limit: int):
        self.memory_limit = memory_limit
        self.buffer = TableBuffer(File(), memory_limit=memory_limit, empty=True)
        self._chunks: list[tuple[list[str], bool]] = []

    def add(self, chunk: Converted, sample_bytes: int) -> None:
        """Hold ``chunk``; ``sample_bytes`` (the sample's) count against the limit."""
        self.buffer.memory_limit = max(0, self.memory_limit - sample_bytes)
        self.buffer.append({len(self._chunks): chunk.table})
        self._chunks.append((chunk.fields, chunk.renumber))

    def drain(self, held: Callable[[int], None] | None = None) -> Iterator[Converted]:
        """The chunks in input order, each freed as it is handed out; ``held(bytes)`` is
        told what the buffer still holds in memory after each."""
        for i, (fields, renumber) in enumerate(self._chunks):
            table = self.buffer.get(i, as_arrow=True)
            self.buffer.delete(i)
            if held is not None:
                held(self.buffer.memory_usage)
            yield Converted(table, fields, renumber)

    def close(self) -> None:
        """Free the memory and remove the temporary directory."""
        self.buffer.drop()
        self.buffer.store.__exit__(None, None, None)


def in_order(
    work: Callable[[Any, int], Any], items: Iterator[Any], threads: int, start: int = 0
) -> Iterator[Any]:
    """``work(item, index)`` for each item (numbered from ``start``) on ``threads`` workers,
    the results in input order, at most ``threads`` items at work at once."""
    with ThreadPoolExecutor(threads, thread_name_prefix="shuffle_kit-sample") as pool:
        inflight: deque[Future] = deque()
        for index, item in enumerate(items, start):
            inflight.append(pool.submit(work, item, index))
            del item
            if len(inflight) == threads:
                yield inflight.popleft().result()
        while inflight:
            yield inflight.popleft().result()


def first_pass(
    first: Converted,
    rest: Iterator[Chunk],
    *,
    sample: KeySample,
    staging: Staging | None,
    convert: Callable[[Chunk, int], Converted],
    keys_of: Callable[[Chunk, int], Converted],
    threads: int,
    progress: Callable[[int], Any],
) -> None:
    """Offer every chunk's keys to ``sample``: ``first`` (chunk 0, converted) then ``rest``.
    With ``staging``, each chunk is converted whole (``convert``) and held there; without,
    only its key columns are (``keys_of``: the input is read again for the second pass).
    ``progress(rows)`` is told each chunk's rows."""
    sample.add(first.table, first.fields, 0)
    if staging is not None:
        staging.add(first, sample.nbytes)
    progress(first.table.num_rows)
    for index, done in enumerate(in_order(keys_of if staging is None else convert, rest, threads, 1), 1):
        sample.add(done.table, done.fields, index)
        if staging is not None:
            staging.add(done, sample.nbytes)
        progress(done.table.num_rows)
        del done
