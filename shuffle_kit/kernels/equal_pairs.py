"""Whether pairs of values of two string or binary columns are equal: a held dimension's key
found by hash, checked against the fact's key that found it (distinct values may share a
64-bit hash).

Arrow's way is to take the found values into a new column and compare the two columns
(:func:`pyarrow.compute.equal`), copying every value once more. Keys are often of one
width (ids, codes: ``k000000123``): values of one width ``W`` lie back to back, so the
bytes at ``k .. k+8`` of every value are one strided view of 64-bit words, and two values
of width ``W`` (at least 8) are equal when their words at ``0, 8, 16 ...`` and at ``W - 8``
are (the windows cover every byte; the last may overlap the one before, and none reads
past a value's end). The probe's words are compared in place; the held column's are
copied once into a contiguous array per window and gathered by row from there (a gather
from a strided view costs about twice as much). Columns of other widths, of several
widths or chunks, or with nulls are compared with Arrow's ``equal``.

>>> import numpy as np, pyarrow as pa
>>> dim = pa.array(['k000000001', 'k000000002', 'k000000003'])
>>> fact = pa.array(['k000000003', 'k000000001', 'k00000000x'])
>>> equal_pairs(dim, np.array([2, 0, 1]), fact, np.array([0, 1, 2])).tolist()
[True, True, False]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import arrow_numpy


class HeldValues:
    """A held key column ready to be compared pair by pair with probes' values: when its
    values are of one width (8 bytes or more, no nulls), its words are copied once, here,
    into a contiguous array per window, not viewed on every call (a dimension's key is
    compared with chunk after chunk).

    >>> held = HeldValues(pa.array(['k000000001', 'k000000002', 'k000000003']))
    >>> held.equal(np.array([0, 2]), pa.array(['k000000001', 'k000000003']), np.array([0, 1])).tolist()
    [True, True]
    >>> held.nbytes  # (two windows of 8 bytes a value)
    48
    """

    def __init__(self, values: pa.Array):
        self.values = values
        words = None if values.null_count else _words(values)
        self.width = 0 if words is None else words[1]
        self.windows = [] if words is None else [np.ascontiguousarray(w) for w in _windows(words)]

    @property
    def nbytes(self) -> int:
        """The bytes held beside the values: their windows' copies."""
        return sum(w.nbytes for w in self.windows)

    def equal(self, rows: np.ndarray, probe: pa.Array | pa.ChunkedArray, positions: np.ndarray) -> np.ndarray:
        """``values[rows[i]] == probe[positions[i]]`` for each ``i`` (a bool array; a null
        equal to nothing), for columns of one type; ``positions`` strictly increasing
        (each probe value at most once: as many as the probe's values are all of them)."""
        if not len(rows):
            return np.zeros(0, dtype=bool)
        every = len(positions) == len(probe)
        whole = probe.chunk(0) if isinstance(probe, pa.ChunkedArray) and probe.num_chunks == 1 else probe
        if self.windows and isinstance(whole, pa.Array) and not whole.null_count:
            theirs = _words(whole)
            if theirs is not None and theirs[1] == self.width:
                return _equal_windows(self.windows, rows, _windows(theirs), positions, every)
        taken = probe if every else probe.take(arrow_numpy.arrow_array(positions))
        return _bools(pc.equal(self.values.take(arrow_numpy.arrow_array(rows)), taken))


def equal_pairs(values: pa.Array, rows: np.ndarray, probe: pa.Array | pa.ChunkedArray,
                positions: np.ndarray) -> np.ndarray:
    """:meth:`HeldValues.equal` of ``values``, for one comparison."""
    return HeldValues(values).equal(rows, probe, positions)


def _words(array: pa.Array) -> tuple[np.ndarray, int, int, int] | None:
    """(``array``'s data bytes, its values' width, where the first starts, how many) when
    every value is of one width of at least 8 bytes; else None."""
    layout = arrow_numpy.one_width(array, least=8)
    if layout is None:
        return None
    return np.frombuffer(layout.data, dtype=np.uint8), layout.width, layout.start, layout.rows


def _windows(words: tuple[np.ndarray, int, int, int]) -> list[np.ndarray]:
    """The 64-bit words at ``0, 8, 16 ...`` and ``width - 8`` of every value (module
    docstring), each a strided view of the data."""
    data, width, start, n = words
    return [np.ndarray((n,), dtype="<u8", buffer=data, offset=start + k, strides=(width,))
            for k in sorted({*range(0, width - 7, 8), width - 8})]


def _equal_windows(ours: list[np.ndarray], rows: np.ndarray, theirs: list[np.ndarray], positions: np.ndarray,
                   every: bool) -> np.ndarray:
    """The pairs' equality by 64-bit windows (module docstring): ours gathered by row,
    theirs by position unless ``every`` (the positions are every probe value in order)."""
    same: np.ndarray | None = None
    for mine, other in zip(ours, theirs):  # (at least one window: values of 8 bytes or more)
        # (the rows are the held column's: "clip" spares NumPy checking them)
        equal = np.take(mine, rows, mode="clip") == (other if every else other[positions])
        same = equal if same is None else np.logical_and(same, equal, out=same)
    assert same is not None
    return same


def _bools(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column's values as NumPy, a null as False (Arrow's ``to_numpy`` of a
    chunked column would import pandas)."""
    parts = []
    for array in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        values = arrow_numpy.bool_values(array)
        valid = arrow_numpy.valid_mask(array)
        parts.append(values if valid is None else values & valid)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
