"""Split a table into per-partition pieces: one stable sort of row positions, one take.

Sorting row positions by partition id (Arrow sorts small integers by counting, so O(n);
stable) and taking the rows once costs one pass over the data, however many partitions
there are; every piece is then a zero-copy slice. A per-partition boolean filter would
cost one pass per partition instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_numpy import arrow_array


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
        counts = np.bincount(ids, minlength=npartitions)
    nonzero = np.flatnonzero(counts)
    if len(nonzero) == 1:  # the whole chunk goes to one partition: nothing to move
        return {int(nonzero[0]): table}
    if any(column.num_chunks > 1 for column in table.columns):
        # a take from several chunks first concatenates them (a copy of the whole table):
        # split each record batch on its own instead, and join the pieces without copying
        return _split_batches(table, ids, npartitions)
    order = pc.array_sort_indices(arrow_array(ids))
    taken = pc.take(table, order, boundscheck=False)  # a permutation: in bounds
    starts = np.cumsum(counts) - counts
    return {int(p): taken.slice(int(starts[p]), int(counts[p])) for p in nonzero}


def _split_batches(table: pa.Table, ids: np.ndarray, npartitions: int) -> dict[int, pa.Table]:
    pieces: dict[int, list[pa.Table]] = {}
    start = 0
    for batch in table.to_batches():
        stop = start + batch.num_rows
        for p, piece in split(pa.Table.from_batches([batch]), ids[start:stop], npartitions).items():
            pieces.setdefault(p, []).append(piece)
        start = stop
    return {p: pa.concat_tables(pieces[p]) for p in sorted(pieces)}
