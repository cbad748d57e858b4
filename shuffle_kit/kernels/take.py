"""``table.take(indices)``, with string and binary columns gathered as fixed-width items.

Arrow's take of a string column copies each value on its own, and costs several times
the take of an integer column of the same length. A column whose values are all of one
width (ids, codes: ``k000000123``) is the same bytes as a fixed-size binary column:
taken as one (:func:`take_one_width`), its offsets made again, a multiple of the row.
Any other string column is cast to ``string_view`` (each value a 16-byte view that holds
a string of up to 12 bytes whole, or points into the original data), gathered as one
NumPy array of 16-byte items and cast back: a few passes over fixed-width memory instead
of a copy per value. Every other column, and short tables, go to Arrow's take.

>>> import numpy as np, pyarrow as pa
>>> t = pa.table({'s': ['a', None, 'a long string of bytes'], 'x': [1, 2, 3]})
>>> take(t, np.array([2, 0, 1])).to_pydict()
{'s': ['a long string of bytes', 'a', None], 'x': [3, 1, 2]}
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_numpy import arrow_array, one_width, pooled

SMALL = 4096  # rows below which Arrow's own take is as fast

_VIEWS = {
    pa.string(): pa.string_view(), pa.large_string(): pa.string_view(),
    pa.binary(): pa.binary_view(), pa.large_binary(): pa.binary_view(),
}


def take(table: pa.Table, indices: np.ndarray) -> pa.Table:
    """The rows of ``table`` at ``indices`` (int64 positions, each in bounds: others are
    not checked, and give undefined rows), in that order; the schema, metadata included,
    is kept."""
    positions = np.ascontiguousarray(indices, dtype=np.int64)
    # every column's take reads the positions again: as 32 bits where they fit, half the bytes
    narrow = len(positions) >= SMALL and table.num_rows < 1 << 31 and len(table.columns) > 1
    arrow_positions = arrow_array(_narrowed(positions) if narrow else positions)
    # (the positions are in bounds, as the caller promises: Arrow need not check them
    # again for every column)
    columns = [
        _take_strings(column, positions, arrow_positions) if column.type in _VIEWS and len(positions) >= SMALL
        else pc.take(column, arrow_positions, boundscheck=False)
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


def take_one_width(column: pa.Array | pa.ChunkedArray, positions: pa.Array) -> pa.Array | None:
    """``column.take(positions)`` (integer positions in bounds, unchecked) for a string or
    binary column of one chunk, without nulls, whose values are all of one width of at
    least a byte: its bytes taken as fixed-size binary items, the offsets made again (a
    multiple of the row); None for any other column, or positions holding a null (the
    caller takes them its own way).

    The new column's data is the taken values' bytes alone, as Arrow's take gives.

    >>> take_one_width(pa.array(['ab', 'cd', 'ef']).slice(1), pa.array([1, 0, 1])).to_pylist()
    ['ef', 'cd', 'ef']
    >>> take_one_width(pa.array(['ab', 'c']), pa.array([0])) is None
    True
    >>> take_one_width(pa.array(['ab', 'cd']), pa.array([0, None])) is None
    True
    """
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks != 1:
            return None
        column = column.chunk(0)
    layout = None if column.null_count or positions.null_count else one_width(column)
    if layout is None:
        return None
    m, width = len(positions), layout.width
    # (a take that repeats rows may make more bytes than the offsets can address)
    if m * width >= 2 ** (8 * layout.offset_type.itemsize - 1):
        return None
    items = pa.Array.from_buffers(pa.binary(width), layout.rows,
                                  [None, layout.data.slice(layout.start, width * layout.rows)])
    taken = pc.take(items, positions, boundscheck=False)
    made = np.arange(0, (m + 1) * width, width, dtype=layout.offset_type)
    return pa.Array.from_buffers(column.type, m, [None, pa.py_buffer(made), taken.buffers()[1]])


def _take_strings(column: pa.ChunkedArray, positions: np.ndarray, arrow_positions: pa.Array) -> pa.Array:
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    one_width = take_one_width(array, arrow_positions)
    if one_width is not None:
        return one_width
    views = _unsliced(array).cast(_VIEWS[array.type])
    # a view is 16 bytes: gathered as complex128, copied bit for bit
    items = np.frombuffer(views.buffers()[1], dtype=np.complex128, count=len(views))
    validity = None
    if array.null_count:
        validity = pc.is_valid(array).take(arrow_array(positions)).buffers()[1]  # a bitmap, offset 0
    # (the positions are in bounds: "clip" only spares NumPy checking them)
    taken = np.take(items, positions, out=pooled(len(positions), np.complex128), mode="clip")
    gathered = pa.Array.from_buffers(views.type, len(positions), [validity, pa.py_buffer(taken), *views.buffers()[2:]])
    return gathered.cast(array.type)


def _narrowed(positions: np.ndarray) -> np.ndarray:
    narrow = pooled(len(positions), np.int32)
    np.copyto(narrow, positions, casting="unsafe")
    return narrow


def _unsliced(array: pa.Array) -> pa.Array:
    """The values of a string or binary ``array`` as an array of offset 0 over only the
    bytes they use, without its nulls (the caller keeps them): Arrow's cast of a slice to
    views takes longer the further into its buffers the slice starts."""
    width = np.dtype(np.int64 if array.type in (pa.large_string(), pa.large_binary()) else np.int32)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=width, count=len(array) + 1, offset=array.offset * width.itemsize)
    first, last = int(offsets[0]), int(offsets[-1])
    data = buffers[2].slice(first, last - first) if buffers[2] is not None else pa.py_buffer(b"")
    rebased = pa.py_buffer(offsets - offsets[0])
    return pa.Array.from_buffers(array.type, len(array), [None, rebased, data])
