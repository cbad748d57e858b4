"""Arrow's view types (``string_view``, ``binary_view``) read as their large types.

Arrow's compute functions that a shuffle needs (``take``, ``filter``, sorting, counting
distinct values) have no kernels for view types, in pyarrow 26 either; pyarrow writes
them to Parquet and Arrow files, and polars hands them out (``to_arrow(compat_level=
CompatLevel.newest())``). Every input is therefore read with its view columns (also
nested in lists, structs, maps and dictionaries) as ``large_string`` and
``large_binary``: the same values, in a layout every kernel takes. Results and written
files hold the large types.

>>> import pyarrow as pa
>>> t = pa.table({'s': pa.array(['a', None], pa.string_view()), 'x': [1, 2]})
>>> widened_table(t).schema.types
[DataType(large_string), DataType(int64)]
>>> plain = t.select(['x'])
>>> widened_table(plain) is plain
True
"""

from __future__ import annotations

import pyarrow as pa

_LARGE = {pa.string_view(): pa.large_string(), pa.binary_view(): pa.large_binary()}


def widened_type(t: pa.DataType) -> pa.DataType:
    """``t`` with every view type in it replaced by its large type (``t`` itself if it has
    none). List views are left as they are: Arrow takes them, and casts them wrongly.

    >>> widened_type(pa.struct([('s', pa.string_view()), ('x', pa.int8())]))
    StructType(struct<s: large_string, x: int8>)
    """
    if t in _LARGE:
        return _LARGE[t]
    if pa.types.is_dictionary(t):
        value = widened_type(t.value_type)
        return t if value == t.value_type else pa.dictionary(t.index_type, value, t.ordered)
    if pa.types.is_map(t):
        key, item = widened_type(t.key_type), widened_type(t.item_type)
        if key == t.key_type and item == t.item_type:
            return t
        return pa.map_(key, t.item_field.with_type(item), t.keys_sorted)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        value = widened_type(t.value_type)
        if value == t.value_type:
            return t
        item = t.value_field.with_type(value)
        if pa.types.is_fixed_size_list(t):
            return pa.list_(item, t.list_size)
        return pa.large_list(item) if pa.types.is_large_list(t) else pa.list_(item)
    if pa.types.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        wider = [f.with_type(widened_type(f.type)) for f in fields]
        return t if all(w.type == f.type for w, f in zip(wider, fields)) else pa.struct(wider)
    return t


def widened_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its view types widened (the same object if it has none); fields'
    and the schema's metadata are kept.

    >>> plain = pa.schema([('x', pa.int64())])
    >>> widened_schema(plain) is plain, widened_schema(pa.schema([('b', pa.binary_view())])).types
    (True, [DataType(large_binary)])
    """
    fields = [f.with_type(widened_type(f.type)) for f in schema]
    if all(w.type == f.type for w, f in zip(fields, schema)):
        return schema
    return pa.schema(fields, metadata=schema.metadata)


def widened_table(table: pa.Table) -> pa.Table:
    """``table`` with its view columns cast to their large types (itself if it has none)."""
    schema = table.schema
    wider = widened_schema(schema)
    return table if wider is schema else table.cast(wider)
