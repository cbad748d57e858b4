"""The partition of every row of a chunk: by the documented hash, by dask's assignment, or
by a user's function, checked."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import JobError
from ..io.readers import Chunk
from ..kernels.dask_assignment import dask_partition_ids
from ..kernels.hashing import id_dtype, partition_ids

Partitioner = str | Callable[[pa.Table, list, int], np.ndarray]


def pandas_keys(chunk: Chunk, table: pa.Table, on: list, fields: list[str]) -> pd.DataFrame:
    """The key columns ``on`` as pandas has them: from ``chunk`` itself if it is a
    DataFrame of the table's rows (its dtypes exactly), else converted from ``table``
    (Arrow names ``fields``).

    >>> pandas_keys(pd.DataFrame({'k': [1, 2], 'x': [3, 4]}), pa.table({'k': [1, 2]}), ['k'], ['k'])
       k
    0  1
    1  2
    """
    if isinstance(chunk, pd.DataFrame) and len(chunk) == table.num_rows:
        cols = {}
        for k in on:
            s = chunk[k] if k in chunk.columns else chunk.index.get_level_values(k)
            if isinstance(s, pd.Index):
                cols[k] = s.to_series(index=range(len(s)))
            else:
                cols[k] = pd.Series(s).reset_index(drop=True)
        return pd.DataFrame(cols)
    keys = table.select(fields).to_pandas()
    keys.columns = on
    return keys.reset_index(drop=True)


def assign(
    chunk: Chunk, table: pa.Table, on: list, fields: list[str], n: int, partitioner: Partitioner
) -> np.ndarray:
    """The partition id (0..n-1, :func:`~shuffle_kit.kernels.hashing.id_dtype`) of every
    row of ``table`` (``chunk`` as Arrow, keys ``on`` under the names ``fields``).

    >>> assign(None, pa.table({'k': [1, 2, 1]}), ['k'], ['k'], 4, lambda t, f, n: [3, 0, 3])
    array([3, 0, 3], dtype=uint8)
    """
    if partitioner == "hash":
        return partition_ids(table, fields, n)
    if partitioner == "dask":
        return dask_partition_ids(pandas_keys(chunk, table, on, fields), n)
    ids = np.asarray(partitioner(table, fields, n))  # type: ignore[operator]
    if ids.shape != (table.num_rows,):
        raise JobError(f"the partitioner returned {ids.shape} ids for {table.num_rows} rows")
    if len(ids) and (ids.min() < 0 or ids.max() >= n):
        raise JobError(f"the partitioner returned ids outside 0..{n - 1}")
    return ids.astype(id_dtype(n), copy=False)
