"""The join job's way with a dimension table: a right side small enough to hold is held
whole, and the left side streamed through it chunk by chunk into the partitions, by the
partition engine; neither side is staged on disk and read back.

It is taken for an inner join on one key column that
:class:`~shuffle_kit.kernels.arrow_join.ArrowJoin` computes exactly (no pandas: integers,
strings, timestamps, dates, booleans), whose right side's rows take no more than a pair's
share of memory and hold each key at most once, never null
(:func:`~shuffle_kit.kernels.join_indices.unique_lookup`). A left row then
has at most one match, and a left row with a null key none. Every joined row lands in the
file of its key's hash, as the staged join puts it; within a file the rows come in the
left's order, each with its match: pandas' order for the pair.

Why it is fast only done this way:

- **Chunks joined on worker threads** (:func:`joined_in_order`), in input order, while
  the reading thread decodes the next ones and the engine's workers split and write.
- **String columns stay dictionaries.** The left's columns read as dictionaries keep them
  (a row that matches is used as it is, or taken: its index is); the right's are joined
  into one dictionary each when the side is held, so a take gathers indices. The files
  then take the dictionaries as they are, where decoded strings would be hashed into a
  dictionary again by the Parquet writer, value by value.
- **The right's columns are one chunk each**: a take from many chunks costs several times
  a take from one.
- **A key found by hash is hashed once.** A lookup by the partitions' own hash (strings,
  times...: :attr:`~shuffle_kit.kernels.join_indices.ValueLookup.by_hash`) hashes the
  left's keys; the joined rows carry those hashes to the engine
  (:class:`~shuffle_kit.partitioning.engine.HashedChunk`), whose partition ids are theirs:
  the ids hashing the keys again would give, without hashing them again. (Their 8 bytes
  a row count in a joined row's size, which sets how many left rows a chunk joins.)

>>> import pyarrow as pa
>>> from shuffle_kit.kernels.arrow_join import ArrowJoin
>>> from shuffle_kit.kernels.joins import Join
>>> left, right = pa.table({'k': [1, None, 2, 5]}), pa.table({'k': [2, 1], 'v': ['b', 'a']})
>>> plan = ArrowJoin.plan(Join(['k'], ['k'], 'inner', ('_x', '_y'), on=True), left.schema, right.schema,
...                       pa.schema([('k', pa.int64()), ('v', pa.string())]))
>>> through = Broadcast.of(plan, [right], right.schema)
>>> through(left).to_pydict()
{'k': [1, 2], 'v': ['a', 'b']}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from typing import TypeVar

import pyarrow as pa

from ..kernels.arrow_join import ArrowJoin, every_row_in_order
from ..kernels.hashing import hash_array
from ..kernels.join_indices import KeyLookup, ValueLookup, unique_lookup
from ..kernels.take import take
from .engine import HashedChunk

HASH_BYTES = 8  # (a joined row's key hash: one uint64)

T = TypeVar("T")
R = TypeVar("R")


class Broadcast:
    """The right side held whole (the columns the join takes, one chunk each, a dictionary
    column with one dictionary) with a lookup of its key; called with a left chunk (the
    plan's left columns, any of them as dictionaries), it gives that chunk's joined rows,
    named as the plan's schema, each column of its side's type."""

    def __init__(self, plan: ArrowJoin, right: pa.Table, lookup: KeyLookup | ValueLookup):
        self.plan, self.right, self.lookup = plan, right, lookup
        self.key_type = right.schema.field(plan.right_on[0]).type
        self.left_columns = list(dict.fromkeys(name for side, name in plan.columns if side == 0))
        # (the right's key is held for the lookup; the joined rows take it only if the plan does)
        self.right_columns = list(dict.fromkeys(name for side, name in plan.columns if side == 1))
        # what each joined row takes of the right, and the key's hash it carries to the
        # engine when the lookup gives one
        self.row_bytes = right.nbytes / max(1, right.num_rows) + (HASH_BYTES if lookup.by_hash else 0)
        self.key_name = plan.schema.names[plan.columns.index((0, plan.left_on[0]))]  # (in the joined rows)

    @classmethod
    def of(cls, plan: ArrowJoin, chunks: Sequence[pa.Table], schema: pa.Schema) -> Broadcast | None:
        """The broadcast of the right side read as ``chunks`` (its columns as the plan reads
        them, string columns plain or dictionaries; each file's own types, cast here to
        the side's ``schema``), or None unless the join is on one key column whose values
        on the right are distinct and never null."""
        if len(plan.right_on) != 1 or not chunks:
            return None
        names = list(dict.fromkeys([plan.right_on[0], *(name for side, name in plan.columns if side == 1)]))
        whole = pa.concat_tables([_typed(c.select(names), schema) for c in chunks])
        if any(pa.types.is_dictionary(t) for t in whole.schema.types):
            whole = whole.unify_dictionaries()
        whole = whole.combine_chunks()  # (before the lookup: it holds the key column's values as they are)
        lookup = unique_lookup(whole.column(plan.right_on[0]))
        return None if lookup is None else cls(plan, whole, lookup)

    @property
    def nbytes(self) -> int:
        """The bytes held: the right side and its key's lookup."""
        return self.right.nbytes + self.lookup.nbytes

    @property
    def dictionaries(self) -> list[str]:
        """The output columns the right side gives as dictionaries."""
        return [name for name, (side, source) in zip(self.plan.schema.names, self.plan.columns)
                if side == 1 and pa.types.is_dictionary(self.right.schema.field(source).type)]

    def __call__(self, chunk: pa.Table) -> pa.Table | HashedChunk:
        key = chunk.column(self.plan.left_on[0])
        cast = key.type != self.key_type  # (a reader may give another width of the same numbers)
        if cast:
            key = key.cast(self.key_type)
        # a lookup that finds by the partitions' hash: the joined rows keep their keys'
        # hashes, and the engine takes its partition ids from them instead of hashing again
        # (not after a cast: the engine hashes the column as the chunk has it)
        hashes = hash_array(key) if self.lookup.by_hash and not cast else None
        lpos, rpos = self.lookup.find(key, hashes)
        left = chunk.select(self.left_columns)
        every = every_row_in_order(lpos, left.num_rows)
        if not every:  # (a fact table's rows each have their match)
            left = take(left, lpos)
        right = take(self.right.select(self.right_columns), rpos)
        sides = (left, right)
        joined = pa.Table.from_arrays([sides[side].column(name) for side, name in self.plan.columns],
                                      names=self.plan.schema.names)
        if hashes is None:
            return joined
        return HashedChunk(joined, hashes if every else hashes[lpos], (self.key_name,))


def _typed(chunk: pa.Table, schema: pa.Schema) -> pa.Table:
    """``chunk`` with each column of ``schema``'s type, a dictionary of that type's values
    left as it is (files of one input may hold a column narrower or wider)."""
    fields = []
    for f in chunk.schema:
        want = schema.field(f.name).type
        keep = f.type == want or (pa.types.is_dictionary(f.type) and f.type.value_type == want)
        fields.append(f if keep else f.with_type(want))
    typed = pa.schema(fields)
    return chunk if typed.equals(chunk.schema) else chunk.cast(typed)


def sliced(chunks: Iterable[pa.Table], through: Broadcast, max_bytes: int) -> Iterator[pa.Table]:
    """``chunks`` in slices whose joined rows take about ``max_bytes`` (a left row takes
    the right's columns with it: a wide right side would make every joined chunk many
    times its left chunk)."""
    for chunk in chunks:
        width = chunk.nbytes / max(1, chunk.num_rows) + through.row_bytes
        step = max(1, int(max_bytes // max(1.0, width)))
        if step >= chunk.num_rows:
            yield chunk
            continue
        for at in range(0, chunk.num_rows, step):
            yield chunk.slice(at, step)


def joined_in_order(fn: Callable[[T], R], items: Iterable[T], pool: Executor, depth: int) -> Iterator[R]:
    """``map(fn, items)`` computed on ``pool``, up to ``depth`` items at a time, given in
    the items' order; what is still pending is cancelled when the consumer stops.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(2) as pool:
    ...     list(joined_in_order(lambda x: x * x, range(5), pool, 2))
    [0, 1, 4, 9, 16]
    """
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            del item
            if len(pending) >= depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()

