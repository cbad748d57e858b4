"""NumPy views of Arrow arrays, and Arrow arrays of NumPy indices, read from the buffers.

pyarrow's ``Array.to_numpy`` and ``pa.array(ndarray)`` load pyarrow's pandas integration,
which imports pandas on first use. Hashing and splitting need neither, and the
command line does not otherwise import pandas, so they go through these instead.

>>> import numpy as np, pyarrow as pa
>>> a = pa.array([5, None, 7]).slice(1)
>>> values(a, np.int64)[1], valid_mask(a).tolist()
(np.int64(7), [False, True])
>>> pa.table({'x': [10, 11, 12]}).take(arrow_array(np.array([2, 0])))['x'].to_pylist()
[12, 10]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa


def values(arr: pa.Array, dtype: np.dtype | type) -> np.ndarray:
    """The values buffer of a fixed-width array (no nulls applied: entries under a null are
    unspecified), as a read-only view."""
    dtype = np.dtype(dtype)
    data = arr.buffers()[1]
    if data is None:  # e.g. an all-null array built without a values buffer
        return np.zeros(len(arr), dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def numbers(arr: pa.Array) -> np.ndarray:
    """The values of an integer or floating-point array as NumPy of the same width, a
    read-only view (entries under a null unspecified).

    >>> numbers(pa.array([3, 1], pa.uint16())).dtype, numbers(pa.array([0.5, 2.0]).slice(1)).tolist()
    (dtype('uint16'), [2.0])
    """
    t = arr.type
    kind = "float" if pa.types.is_floating(t) else "int" if pa.types.is_signed_integer(t) else "uint"
    return values(arr, np.dtype(f"{kind}{t.bit_width}"))


def valid_mask(arr: pa.Array) -> np.ndarray | None:
    """Boolean mask of the valid entries of ``arr``, or None when it has no null."""
    if arr.null_count == 0:
        return None
    return bool_values(arr.is_valid())  # (a BooleanArray without nulls, whatever the type of ``arr``)


def bool_values(bits: pa.BooleanArray) -> np.ndarray:
    """The values of a boolean array as NumPy booleans, its nulls' slots as they are stored.

    >>> bool_values(pa.array([True, False, True]).slice(1)).tolist()
    [False, True]
    """
    packed = np.frombuffer(bits.buffers()[1], dtype=np.uint8)
    return np.unpackbits(packed, count=bits.offset + len(bits), bitorder="little")[bits.offset :].view(bool)


def arrow_array(a: np.ndarray) -> pa.Array:
    """An Arrow array sharing the memory of the 1-d integer or float array ``a`` (copied
    first only if not contiguous)."""
    a = np.ascontiguousarray(a)
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` with no rows, in one (empty) chunk per column, as a kernel
    given a table expects (``Schema.empty_table`` and ``pa.array([])`` load pyarrow's
    pandas integration; a column of no chunks gives pyarrow's ``combine_chunks`` that
    same work).

    >>> t = empty_table(pa.schema({'a': pa.int8()}))
    >>> t.num_rows, t.column('a').num_chunks
    (0, 1)
    """
    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


def pooled(count: int, dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised, writable NumPy array of ``count`` items in Arrow's memory pool.

    The pool keeps freed memory for the next allocation. NumPy's large arrays map fresh
    pages, and fault every one in again, wherever the heap is trimmed at every free
    (dask's workers do so), which costs more than a pass over the data.

    >>> a = pooled(3, np.int32)
    >>> a[:] = [1, 2, 3]
    >>> a.tolist(), a.dtype
    ([1, 2, 3], dtype('int32'))
    """
    dtype = np.dtype(dtype)
    return np.frombuffer(pa.allocate_buffer(count * dtype.itemsize), dtype=dtype, count=count)


OFFSET_TYPES: dict[pa.DataType, np.dtype] = {
    pa.string(): np.dtype(np.int32), pa.binary(): np.dtype(np.int32),
    pa.large_string(): np.dtype(np.int64), pa.large_binary(): np.dtype(np.int64),
}


class OneWidth(NamedTuple):
    """Where the values of a string or binary array all of one width lie: ``rows`` values
    of ``width`` bytes back to back in ``data`` from byte ``start``."""

    data: pa.Buffer
    start: int
    width: int
    rows: int
    offset_type: np.dtype


def one_width(array: pa.Array, least: int = 1) -> OneWidth | None:
    """The layout of a string or binary ``array`` whose every slot (a null's too) is of
    one width of at least ``least`` bytes (ids, codes, UUIDs), or None: such values can be
    read and moved as fixed-size items where they lie.

    >>> w = one_width(pa.array(['ab', 'cd', 'ef']).slice(1))
    >>> w.start, w.width, w.rows
    (2, 2, 2)
    >>> one_width(pa.array(['ab', 'c'])) is None, one_width(pa.array(['ab']), least=8) is None
    (True, True)
    """
    offset_type = OFFSET_TYPES.get(array.type)
    n = len(array)
    if offset_type is None or not n:
        return None
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type, count=n + 1, offset=array.offset * offset_type.itemsize)
    start, width = int(offsets[0]), int(offsets[1] - offsets[0])
    # (the ends first: an array of several widths is nearly always told by them, in no time)
    if width < max(least, 1) or int(offsets[-1]) - start != width * n or int(offsets[-1] - offsets[-2]) != width:
        return None
    lengths = np.diff(offsets)
    if int(lengths.min()) != width or int(lengths.max()) != width:
        return None
    return OneWidth(buffers[2], start, width, n, offset_type)
