"""Split a table into per-partition pieces: one stable sort of row positions, one take.

Sorting row positions by partition id (stable, and O(n) for ids of up to 16 bits: Arrow
sorts 8-bit ids by counting, NumPy 16-bit ones by radix, where Arrow falls back to a
comparison sort for wide ranges) and taking the rows once costs one pass over the data,
however many partitions there are; every piece is then a zero-copy slice. A
per-partition boolean filter would cost one pass per partition instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_numpy import arrow_array, values
from .take import take_one_width


def split(
    table: pa.Table, ids: np.ndarray, npartitions: int, counts: np.ndarray | None = None
) -> dict[int, pa.Table]:
    """Rows of ``table`` grouped by partition id, input order kept within each piece.

    Only non-empty partitions appear, in increasing order. ``counts`` (rows per
    partition), if the caller already has them, saves a pass.

    >>> import numpy as np, pyarrow as pa
    >>> t = pa.table({'x': [10, 11, 12, 13]})
    >>> {p: piece['x'].to_pylist() for p, piece in split(t, np.array([1, 0, 1, 1], np.uint8), 2).items()}
    {0: [11], 1: [10, 12, 13]}
    """
    if len(ids) != table.num_rows:
        raise ValueError(f"{len(ids)} partition ids for {table.num_rows} rows")
    if table.num_rows == 0:
        return {}
    if counts is None:
        counts = count_ids(ids, npartitions)
    nonzero = np.flatnonzero(counts)
    if len(nonzero) == 1:  # the whole chunk goes to one partition: nothing to move
        return {int(nonzero[0]): table}
    if any(column.num_chunks > 1 for column in table.columns):
        # a take from several chunks first concatenates them (a copy of the whole table):
        # split each record batch on its own instead, and join the pieces without copying
        return _split_batches(table, ids, npartitions)
    taken = _take_sorted(table, ids)
    starts = np.cumsum(counts) - counts
    return {int(p): taken.slice(int(starts[p]), int(counts[p])) for p in nonzero}


def sorted_runs(
    table: pa.Table, ids: np.ndarray, npartitions: int, counts: np.ndarray | None = None
) -> list[tuple[pa.Table, np.ndarray]]:
    """The rows of ``table`` sorted by partition id (stable), with the rows per partition:
    partition ``p``'s rows follow those of partitions ``0..p-1``. The same pieces as
    :func:`split`, kept together: nothing is paid per partition.

    A table whose columns have several chunks gives one run per record batch (a sort
    across chunks would first copy them into one).

    >>> import numpy as np, pyarrow as pa
    >>> runs = sorted_runs(pa.table({'x': [10, 11, 12]}), np.array([1, 0, 1], np.uint8), 3)
    >>> [(t['x'].to_pylist(), c.tolist()) for t, c in runs]
    [([11, 10, 12], [1, 2, 0])]
    """
    if len(ids) != table.num_rows:
        raise ValueError(f"{len(ids)} partition ids for {table.num_rows} rows")
    if any(column.num_chunks > 1 for column in table.columns):
        runs, start = [], 0
        for batch in table.to_batches():
            stop = start + batch.num_rows
            runs += sorted_runs(pa.Table.from_batches([batch]), ids[start:stop], npartitions)
            start = stop
        return runs
    if counts is None:
        counts = count_ids(ids, npartitions)
    if np.count_nonzero(counts) <= 1:  # one partition (or none): nothing to move
        return [(table, counts)]
    return [(_take_sorted(table, ids), counts)]


FEW_PARTITIONS = 16  # up to this many, rows per partition are counted by comparisons
# the most values (largest less smallest) Arrow's sort of integers counts into place
ARROW_COUNTING_RANGE = 4096
COUNT_BLOCK = 1 << 18  # ids counted at a time by ``bincount`` (which copies them into 64 bits first)


def count_ids(ids: np.ndarray, npartitions: int, block: int = COUNT_BLOCK) -> np.ndarray:
    """Rows per partition id (int64, ``npartitions`` of them): for a few partitions one
    comparison of the ids with each; otherwise NumPy's ``bincount`` of ``block`` ids at a
    time, whose 64-bit copy of each block stays in cache and is reused, where one of all
    the ids would be fresh memory as large as eight times theirs.

    >>> count_ids(np.array([2, 0, 2], np.uint8), 4).tolist()
    [1, 0, 2, 0]
    >>> count_ids(np.array([2, 0, 2, 1, 2], np.uint16), 300, block=2)[:3].tolist()
    [1, 1, 3]
    """
    if npartitions <= FEW_PARTITIONS and ids.dtype.itemsize == 1:
        same = np.empty(len(ids), dtype=bool)  # one mask for every id: each fresh one costs its pages
        return np.array([np.count_nonzero(np.equal(ids, p, out=same)) for p in range(npartitions)], dtype=np.int64)
    if len(ids) <= block:
        return np.bincount(ids, minlength=npartitions).astype(np.int64, copy=False)
    counts = np.zeros(npartitions, dtype=np.int64)
    for start in range(0, len(ids), block):
        counts += np.bincount(ids[start:start + block], minlength=npartitions)
    return counts


def split_numbered(
    table: pa.Table, ids: np.ndarray, npartitions: int, column: str, start: int, step: int,
    counts: np.ndarray | None = None,
) -> dict[int, pa.Table]:
    """:func:`split` of a table whose int64 column ``column`` holds ``start + step * row``
    for each row (a RangeIndex stored as values): that column is not gathered but made
    again for each piece from the rows it took, a pass of arithmetic in place of a take.

    >>> import numpy as np, pyarrow as pa
    >>> t = pa.table({'x': [10, 11, 12], 'i': [5, 7, 9]})
    >>> pieces = split_numbered(t, np.array([1, 0, 1], np.uint8), 2, 'i', 5, 2)
    >>> {p: piece['i'].to_pylist() for p, piece in pieces.items()}
    {0: [7], 1: [5, 9]}
    """
    if len(ids) != table.num_rows:
        raise ValueError(f"{len(ids)} partition ids for {table.num_rows} rows")
    if counts is None:
        counts = count_ids(ids, npartitions)
    if np.count_nonzero(counts) <= 1 or any(c.num_chunks > 1 for c in table.columns):
        return split(table, ids, npartitions, counts)
    where = table.schema.get_field_index(column)
    rows, order = id_order(ids)
    taken = pc.take(table.remove_column(where), order, boundscheck=False)  # a permutation: in bounds
    numbers = rows if (start, step) == (0, 1) else rows + start if step == 1 else rows * step + start
    whole = taken.add_column(where, table.schema.field(where), pa.array(numbers, type=pa.int64()))
    starts = np.cumsum(counts) - counts
    return {int(p): whole.slice(int(starts[p]), int(counts[p])) for p in np.flatnonzero(counts)}


def id_order(ids: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """The rows sorted stably by partition id (rows of one id in input order), as int64
    NumPy and as Arrow (one buffer).

    Arrow counts ids spanning at most :data:`ARROW_COUNTING_RANGE` values into place, faster
    than NumPy's radix sort and with no scratch copy of the rows; past that span it
    compares, many times slower, and NumPy's radix sort is used.

    >>> id_order(np.array([2, 0, 2, 1], np.uint16))[0].tolist()
    [1, 3, 0, 2]
    """
    if ids.dtype.itemsize == 1 or (ids.dtype.itemsize == 2 and len(ids) and int(ids.max()) <= ARROW_COUNTING_RANGE):
        order = pc.array_sort_indices(arrow_array(ids))  # (uint64: below 2**63, read as int64)
        return values(order, np.int64), order  # (not np.asarray: pyarrow's conversion imports pandas)
    rows = np.argsort(ids, kind="stable")
    return rows, arrow_array(rows)


def _take_sorted(table: pa.Table, ids: np.ndarray) -> pa.Table:
    order = id_order(ids)[1]
    # (a permutation: in bounds); a string column of one width is taken as fixed-width
    # items, several times faster than Arrow's take of strings and no more memory
    columns = [take_one_width(column, order) for column in table.columns]
    if not any(c is not None for c in columns):
        return pc.take(table, order, boundscheck=False)
    return pa.Table.from_arrays([pc.take(column, order, boundscheck=False) if taken is None else taken
                                 for column, taken in zip(table.columns, columns)], schema=table.schema)


def _split_batches(table: pa.Table, ids: np.ndarray, npartitions: int) -> dict[int, pa.Table]:
    pieces: dict[int, list[pa.Table]] = {}
    start = 0
    for batch in table.to_batches():
        stop = start + batch.num_rows
        for p, piece in split(pa.Table.from_batches([batch]), ids[start:stop], npartitions).items():
            pieces.setdefault(p, []).append(piece)
        start = stop
    return {p: pa.concat_tables(pieces[p]) for p in sorted(pieces)}
