"""The join job's shortcut for a right side that fits in memory (a fact table joined with a
dimension): the right side is held whole, the left side streamed through it chunk by
chunk, and the joined rows partitioned by the join key as they come, by the partition
engine. Neither side is staged on disk and read back.

It is taken for an inner join on one integer key column that
:class:`~shuffle_kit.kernels.arrow_join.ArrowJoin` computes exactly (no pandas), of file
inputs, whose right side's rows take no more than a pair's share of memory and hold each
key at most once, never null (:class:`~shuffle_kit.kernels.join_indices.KeyLookup`). Then
a left row has at most one match (a chunk's join is no larger than the chunk) and a left
row with a null key has none. Every joined row lands in the file of its key's hash, as the staged join puts
it; within a file the rows come in the left's order, each with its match: pandas' order
for the pair. Otherwise the right side, already read, is staged as usual.

>>> import pyarrow as pa
>>> from shuffle_kit.kernels.arrow_join import ArrowJoin
>>> from shuffle_kit.kernels.joins import Join
>>> left, right = pa.table({'k': [1, None, 2, 5]}), pa.table({'k': [2, 1], 'v': ['b', 'a']})
>>> plan = ArrowJoin.plan(Join(['k'], ['k'], 'inner', ('_x', '_y'), on=True), left.schema, right.schema,
...                       pa.schema([('k', pa.int64()), ('v', pa.large_string())]))
>>> through = Broadcast.of(plan, right)
>>> through(left).to_pydict(), through.rows_read
({'k': [1, 2], 'v': ['a', 'b']}, 4)
"""

from __future__ import annotations

import pyarrow as pa

from ..kernels.arrow_join import ArrowJoin
from ..kernels.join_indices import KeyLookup


class Broadcast:
    """The right side held whole with a lookup of its key, and the join of left chunks
    with it (a callable: a left chunk in, its joined rows out, in the plan's schema);
    ``rows_read``: left rows seen."""

    def __init__(self, plan: ArrowJoin, right: pa.Table, lookup: KeyLookup):
        self.plan, self.right, self.lookup = plan, right, lookup
        self.key_type = right.schema.field(plan.right_on[0]).type
        self.rows_read = 0

    @classmethod
    def of(cls, plan: ArrowJoin, right: pa.Table) -> Broadcast | None:
        """The broadcast of ``right`` (its columns as the plan reads them), or None unless
        the join is on one integer key column whose values on the right are distinct and
        never null."""
        if len(plan.right_on) != 1:
            return None
        lookup = KeyLookup.of(right.column(plan.right_on[0]))
        return None if lookup is None else cls(plan, right.combine_chunks(), lookup)

    def __call__(self, chunk: pa.Table) -> pa.Table:
        self.rows_read += chunk.num_rows
        key = chunk.column(self.plan.left_on[0])
        if key.type != self.key_type:  # (a reader may give another width of the same numbers)
            key = key.cast(self.key_type)
        return self.plan.assemble(chunk, self.right, *self.lookup.find(key))
