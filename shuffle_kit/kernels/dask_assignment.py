"""dask's own assignment of rows to shuffle partitions, for results co-partitioned with a
dask DataFrame shuffled on the same columns (``shuffle(partitioner="dask")`` and
``shuffle_kit.dask.shuffle(..., partitioner="dask")``).

It is pandas' ``hash_pandas_object``, not shuffle_kit's documented hash
(:mod:`.hashing`): it depends on pandas' dtypes, so two inputs agree only when their key
dtypes do, as in dask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .hashing import id_dtype

if TYPE_CHECKING:
    import pandas as pd

_U64 = np.uint64


def _dask_numeric(dtype: Any) -> bool:
    import pandas as pd

    # dask casts numeric key columns (and categoricals of numbers) to float64 first
    return pd.api.types.is_numeric_dtype(dtype) or (
        isinstance(dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(dtype.categories)
    )


def dask_partition_ids(keys: pd.DataFrame, npartitions: int) -> np.ndarray:
    """dask.dataframe's shuffle assignment for the key columns ``keys``.

    Numeric columns cast to float64, then ``hash_pandas_object(index=False) % n``, as
    dask's ``AssignPartitioningIndex`` does, so a result is co-partitioned with a dask
    DataFrame shuffled on the same columns into the same number of partitions.

    >>> import pandas as pd
    >>> dask_partition_ids(pd.DataFrame({'k': [1, 2, 1]}), 4).tolist()
    [1, 2, 1]
    """
    import pandas as pd

    dtypes = {c: np.float64 for c, d in keys.dtypes.items() if _dask_numeric(d)}
    if dtypes:
        keys = keys.astype(dtypes, errors="ignore")
    h = pd.util.hash_pandas_object(keys, index=False).to_numpy()
    return (h % _U64(npartitions)).astype(id_dtype(npartitions))
