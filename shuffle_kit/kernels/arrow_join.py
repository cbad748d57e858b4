"""An inner join of two Arrow tables with the rows, values, types and column names pandas'
``merge`` gives for them, computed without pandas.

A pair of a join larger than memory is read as Arrow and written as Arrow: going through
pandas converts both sides to frames and the joined rows back, and pandas' merge holds the
GIL for much of its work. For an inner join of tables whose columns pandas converts
without changing a value (integers, floats, booleans, strings, timestamps and dates) on
keys that are not floats, the pairs' row positions (:func:`.join_indices.inner_positions`,
pandas' order, null keys matching null keys as in pandas) and one take of each side's
columns (:func:`.take.take`) give the same table as pandas' merge converted back to the
output schema; a float NaN stays NaN, where pandas' frame would read back as null.
:meth:`ArrowJoin.plan` says whether a join qualifies (its output names must be pandas').

>>> import pyarrow as pa
>>> from shuffle_kit.kernels.joins import Join
>>> left, right = pa.table({'k': [1, 2, 2], 'v': [1.5, 2.5, 3.5]}), pa.table({'k': [2, 3], 'v': ['x', 'y']})
>>> out = pa.schema([('k', pa.int64()), ('v_x', pa.float64()), ('v_y', pa.large_string())])
>>> plan = ArrowJoin.plan(Join(['k'], ['k'], 'inner', ('_x', '_y'), on=True), left.schema, right.schema, out)
>>> plan.join(left, right).to_pydict()
{'k': [2, 2], 'v_x': [2.5, 3.5], 'v_y': ['x', 'x']}
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from .join_indices import inner_positions
from .joins import Join
from .take import take

_STRINGS = (pa.string(), pa.large_string())


def _kept(t: pa.DataType) -> bool:
    """Whether pandas gives back every value of a column of type ``t`` unchanged."""
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or t in _STRINGS
            or pa.types.is_timestamp(t) or pa.types.is_date32(t))


def _key(t: pa.DataType) -> bool:
    """Whether Arrow's equality of two values of type ``t`` is pandas' (not for floats:
    pandas matches NaN with NaN)."""
    return _kept(t) and not pa.types.is_floating(t)


def _same(source: pa.DataType, out: pa.DataType) -> bool:
    return source == out or (source in _STRINGS and out in _STRINGS)


def _named(join: Join, left: pa.Schema, right: pa.Schema) -> list[tuple[str, int, str]] | None:
    """The output columns (:meth:`Join.output_columns`) of an inner join Arrow computes as
    pandas does (pandas' null keys, keys of one type on both sides that are not floats,
    every column of a type pandas gives back unchanged); None for any other join."""
    if join.how != "inner" or not join.nulls_equal:
        return None
    if not all(_kept(f.type) for f in (*left, *right)):
        return None
    for lk, rk in zip(join.left_on, join.right_on):
        if lk not in left.names or rk not in right.names:
            return None
        if not _key(left.field(lk).type) or left.field(lk).type != right.field(rk).type:
            return None
    return join.output_columns(left.names, right.names)


@dataclass(frozen=True)
class ArrowJoin:
    """The plan of an inner join of Arrow tables: the key columns of each side and, for
    every output column, its side (0: left, 1: right) and source column; rows come out in
    ``schema``."""

    left_on: tuple[str, ...]
    right_on: tuple[str, ...]
    columns: tuple[tuple[int, str], ...]
    schema: pa.Schema

    @classmethod
    def plan(cls, join: Join, left: pa.Schema, right: pa.Schema, out: pa.Schema) -> ArrowJoin | None:
        """The plan of ``join`` of tables of schemas ``left`` and ``right`` into tables of
        schema ``out`` (pandas' column names and types for the join), or None if pandas'
        merge could differ from it in any row, value, type or name."""
        own = cls.of_inputs(join, left, right)
        if own is None or own.schema.names != out.names:
            return None
        if not all(_same(source, wanted) for source, wanted in zip(own.schema.types, out.types)):
            return None
        return replace(own, schema=out)

    @classmethod
    def of_inputs(cls, join: Join, left: pa.Schema, right: pa.Schema) -> ArrowJoin | None:
        """:meth:`plan` of ``join`` into its inputs' own types, named as pandas names the
        columns, without asking pandas: what it gives for pandas' schema of a join it
        accepts, but for pandas' metadata (None where it gives None).

        >>> left, right = pa.schema({'k': pa.int32(), 'v': pa.string()}), pa.schema({'k': pa.int32(), 'v': pa.date32()})
        >>> ArrowJoin.of_inputs(Join(['k'], ['k'], 'inner', ('_x', '_y'), on=True), left, right).schema.types
        [DataType(int32), DataType(string), DataType(date32[day])]
        """
        named = _named(join, left, right)
        if named is None:
            return None
        sides = (left, right)
        out = pa.schema([pa.field(name, sides[side].field(source).type) for name, side, source in named])
        return cls(tuple(join.left_on), tuple(join.right_on), tuple((s, n) for _, s, n in named), out)

    def join(self, left: pa.Table, right: pa.Table) -> pa.Table:
        """The joined rows of ``left`` and ``right`` in pandas' order, in :attr:`schema`."""
        positions = inner_positions([left.column(k) for k in self.left_on], [right.column(k) for k in self.right_on])
        return self.assemble(left, right, *positions)

    def assemble(self, left: pa.Table, right: pa.Table, lpos: np.ndarray, rpos: np.ndarray) -> pa.Table:
        """The output rows pairing row ``lpos[i]`` of ``left`` with row ``rpos[i]`` of
        ``right``, in :attr:`schema`: each side's columns taken once."""
        taken = []
        for table, rows, side in ((left, lpos, 0), (right, rpos, 1)):
            part = table.select(list(dict.fromkeys(n for s, n in self.columns if s == side)))
            if every_row_in_order(rows, part.num_rows):  # (a fact table's rows, each with its match)
                taken.append(part)
                continue
            if any(c.num_chunks > 1 for c in part.columns):
                part = part.combine_chunks()
            taken.append(take(part, rows))
        # a column read as a dictionary of the output's type stays one (its file takes it so)
        arrays = [column if column.type == f.type or _dictionary_of(column.type, f.type) else column.cast(f.type)
                  for column, f in zip((taken[side].column(name) for side, name in self.columns), self.schema)]
        return pa.Table.from_arrays(arrays, schema=self.schema_of(arrays))

    def schema_of(self, arrays: list[pa.ChunkedArray]) -> pa.Schema:
        """:attr:`schema` with the types of ``arrays`` (some of them dictionaries)."""
        if all(a.type == f.type for a, f in zip(arrays, self.schema)):
            return self.schema
        return pa.schema([f.with_type(a.type) for a, f in zip(arrays, self.schema)], metadata=self.schema.metadata)


def _dictionary_of(t: pa.DataType, values: pa.DataType) -> bool:
    return pa.types.is_dictionary(t) and t.value_type == values


def every_row_in_order(rows: np.ndarray, n: int) -> bool:
    """Whether ``rows`` is ``0, 1, ..., n - 1``: the table itself, no take."""
    return len(rows) == n and (n == 0 or (int(rows[0]) == 0 and bool((np.diff(rows) == 1).all())))
