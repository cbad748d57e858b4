"""Partition ids: a fixed, documented 64-bit hash of key columns, modulo ``npartitions``.

Pure functions over Arrow arrays, vectorised with NumPy (no Python loop per row), so the
same key gets the same partition on every run, process and machine, whatever
``PYTHONHASHSEED`` says. Python's ``hash`` is never used.

The hash (``shuffle_kit`` hash version 1)
-----------------------------------------
``mix(x)`` is MurmurHash3's 64-bit finaliser (``x ^= x >> 33; x *= 0xff51afd7ed558ccd;
x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53; x ^= x >> 33``), arithmetic modulo 2**64.
Each key value hashes to a 64-bit ``h`` by its *value*, not its storage type:

- null of any kind (None, NaN, NaT, pd.NA): ``NULL = mix(0x6e756c6c)``. All nulls share
  one hash, so they always land together and form their own group.
- numbers (ints and uints of any width, floats, bools, decimals): ``mix(bits(v) ^ NUM)``
  where ``bits`` is the IEEE-754 bit pattern of ``float64(v)`` with -0.0 read as 0.0.
  So ``1``, ``1.0``, ``True`` and ``Decimal(1)`` agree, and a column whose dtype drifts
  from int to float between chunks keeps every key in its partition.
- strings and bytes (every string dtype; UTF-8 bytes): ``h = mix(len ^ STR)``, then for
  each 8-byte little-endian word ``w`` of the bytes (the last one zero-padded)
  ``h = mix(h ^ w)``.
- datetimes (any unit, any time zone: the instant in UTC), dates, times, durations:
  ``mix(int64 nanoseconds ^ TIME)``.
- categoricals (dictionary arrays): the hash of the category *value*, so a categorical
  key and a plain column with the same values agree.
- periods: their ordinal as a number; structs and intervals: their fields, combined.
- several columns: ``h = h1``, then ``h = mix(h * 0x9e3779b97f4a7c15 + h_next)``.

The partition id is ``h % npartitions``. Lists, maps and arbitrary Python objects are
rejected with ``TypeError`` (pandas cannot group by them either), except object columns
whose values Arrow can type (all str, all int, ...).

>>> import pyarrow as pa
>>> hash_array(pa.array([1, None, 1.0])).tolist() == hash_array(pa.array([1.0, float('nan'), 1])).tolist()
True
>>> partition_ids(pa.table({'k': ['a', 'b', 'a']}), ['k'], 4).tolist()
[1, 3, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_numpy import valid_mask, values

if TYPE_CHECKING:
    import pandas as pd

HASH_VERSION = 1

_U64 = np.uint64
_C1 = _U64(0xFF51AFD7ED558CCD)
_C2 = _U64(0xC4CEB9FE1A85EC53)
_COMBINE = _U64(0x9E3779B97F4A7C15)
_NUM = _U64(0x6E756D62)  # "numb"
_STR = _U64(0x73747267)  # "strg"
_TIME = _U64(0x74696D65)  # "time"
_ALL_ONES = _U64(0xFFFFFFFFFFFFFFFF)
BLOCK_ROWS = 1 << 16


def mix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's fmix64, in place on a uint64 array (and returned).

    >>> hex(int(mix(np.array([1], dtype=np.uint64))[0]))
    '0xb456bcfc34c2cb2c'
    """
    with np.errstate(over="ignore"):
        h ^= h >> _U64(33)
        h *= _C1
        h ^= h >> _U64(33)
        h *= _C2
        h ^= h >> _U64(33)
    return h


NULL_HASH = _U64(mix(np.array([0x6E756C6C], dtype=np.uint64))[0])


class UnhashableKeyError(TypeError):
    """A key column has a type that cannot be hashed (lists, maps, arbitrary objects)."""


def _set_nulls(h: np.ndarray, arr: pa.Array) -> np.ndarray:
    valid = valid_mask(arr)
    if valid is not None:
        h[~valid] = NULL_HASH
    return h


def _hash_numbers(arr: pa.Array) -> np.ndarray:
    if not pa.types.is_float64(arr.type):
        arr = pc.cast(arr, pa.float64(), safe=False)
    # nulls become NaN; NaN is null too, so both get NULL_HASH below
    x = values(arr, np.float64)
    x = x + 0.0  # a fresh copy we own; also turns -0.0 into 0.0
    nan = np.isnan(x)  # before hashing: h below shares x's memory
    h = x.view(np.uint64)
    h ^= _NUM
    mix(h)
    h[nan] = NULL_HASH
    return _set_nulls(h, arr)  # validity too: not every null reads back as NaN


def _hash_ints(values: np.ndarray, tag: np.uint64) -> np.ndarray:
    h = values.astype(np.int64, copy=True).view(np.uint64)
    h ^= tag
    return mix(h)


def _hash_temporal(arr: pa.Array) -> np.ndarray:
    t = arr.type
    if pa.types.is_timestamp(t):
        arr = arr.cast(pa.timestamp("ns", tz=t.tz), safe=False)
    elif pa.types.is_duration(t):
        arr = arr.cast(pa.duration("ns"), safe=False)
    elif pa.types.is_date(t):
        arr = arr.cast(pa.timestamp("ns"), safe=False)
    elif pa.types.is_time(t):
        arr = arr.cast(pa.time64("ns"), safe=False)
    # the int64 storage: UTC instants for tz-aware timestamps
    ints = values(arr.view(pa.int64()), np.int64)  # entries under nulls: overwritten below
    return _set_nulls(_hash_ints(ints, _TIME), arr)


def _hash_binary(arr: pa.Array) -> np.ndarray:
    """Hash variable-length bytes 8 at a time: one vectorised step per word position."""
    if not (pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)):
        arr = arr.cast(pa.large_binary())
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    base, end = int(offsets[0]), int(offsets[-1])
    # a copy padded with 8 zero bytes, so an 8-byte read at any string start stays inside
    padded = np.zeros(end - base + 8, dtype=np.uint8)
    if end > base:
        padded[: end - base] = np.frombuffer(bufs[2], dtype=np.uint8)[base:end]
    # unaligned little-endian uint64 view starting at every byte
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    starts = offsets[:-1] - base
    lengths = np.diff(offsets)
    h = lengths.astype(np.uint64)
    h ^= _STR
    mix(h)
    nwords = (lengths + 7) >> 3
    maxwords = int(nwords.max()) if n else 0
    # rows sorted by word count, longest first: step k touches only rows still going,
    # so total work stays proportional to the bytes, even with a few very long strings
    order = np.argsort(-nwords, kind="stable") if maxwords > 4 else None
    counts = np.bincount(nwords, minlength=maxwords + 1) if order is not None else None
    active = n
    for k in range(maxwords):
        if order is not None:
            active -= int(counts[k])  # rows with exactly k words are done
            rows = order[:active]
            s, rem = starts[rows] + 8 * k, lengths[rows] - 8 * k
        else:
            rows = None
            # finished rows may point past the data: clamp (their word is masked to 0)
            s, rem = np.minimum(starts + 8 * k, len(words) - 1), lengths - 8 * k
        w = words[s]
        # zero the bytes past each string's end; rows already finished get w = 0 and a flag
        short = rem < 8
        if short.any():
            shift = (np.clip(rem[short], 0, 7) * 8).astype(np.uint64)
            w[short] &= (_U64(1) << shift) - _U64(1)
        if rows is None:
            done = rem <= 0
            hk = h ^ w
            mix(hk)
            if done.any():
                hk[done] = h[done]
            h = hk
        else:
            hk = h[rows] ^ w
            h[rows] = mix(hk)
    return _set_nulls(h, arr)


def _hash_dictionary(arr: pa.DictionaryArray) -> np.ndarray:
    dict_hash = hash_array(arr.dictionary)
    indices = pc.fill_null(arr.indices, 0)
    idx = values(indices, np.dtype(str(indices.type))).astype(np.intp, copy=False)
    h = dict_hash[idx] if len(dict_hash) else np.zeros(len(arr), dtype=np.uint64)
    return _set_nulls(h, arr)


def combine(h: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Fold the hash of one more key column into ``h`` (in place)."""
    with np.errstate(over="ignore"):
        h *= _COMBINE
        h += other
    return mix(h)


def hash_array(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The documented 64-bit hash of every value of ``arr`` (a uint64 array).

    >>> import pyarrow as pa
    >>> h = hash_array(pa.array(['x', None, 'x']))
    >>> bool(h[0] == h[2]), bool(h[1] == NULL_HASH)
    (True, True)
    """
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 1:
            return hash_array(arr.chunk(0))
        if arr.num_chunks == 0:
            return np.zeros(0, dtype=np.uint64)
        return np.concatenate([hash_array(c) for c in arr.chunks])
    t = arr.type
    if isinstance(t, pa.ExtensionType):
        if "period" in str(t):
            return _hash_numbers(arr.storage)
        return hash_array(arr.storage)
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    if pa.types.is_null(t):
        return np.full(len(arr), NULL_HASH, dtype=np.uint64)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
        return _hash_numbers(arr)
    if (
        pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
        or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
        or pa.types.is_string_view(t) or pa.types.is_binary_view(t)
    ):
        return _hash_binary(arr)
    if pa.types.is_temporal(t) or pa.types.is_duration(t):
        return _hash_temporal(arr)
    if pa.types.is_dictionary(t):
        return _hash_dictionary(arr)
    if pa.types.is_struct(t):
        h = None
        for i in range(t.num_fields):
            child = arr.field(i)  # respects the parent's offset
            hc = hash_array(child)
            h = hc.copy() if h is None else combine(h, hc)
        if h is None:
            h = np.zeros(len(arr), dtype=np.uint64)
        return _set_nulls(h, arr)
    raise UnhashableKeyError(f"cannot hash key values of type {t}")


def check_hashable(t: pa.DataType, name: Any) -> None:
    """Raise ``UnhashableKeyError`` naming column ``name`` if its type cannot be a key."""
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    if pa.types.is_dictionary(t):
        return check_hashable(t.value_type, name)
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            check_hashable(t.field(i).type, name)
        return None
    if (
        pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
        or pa.types.is_map(t) or pa.types.is_union(t) or getattr(pa.types, "is_list_view", lambda t: False)(t)
        or getattr(pa.types, "is_large_list_view", lambda t: False)(t)
    ):
        raise UnhashableKeyError(f"key column {name!r} has type {t}, which cannot be hashed into partitions")
    return None


def hash_columns(columns: Sequence[pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """Combined hash of several key columns of equal length."""
    h = hash_array(columns[0])
    if len(columns) > 1:
        h = h.copy() if not h.flags.writeable else h
        for col in columns[1:]:
            h = combine(h, hash_array(col))
    return h


def id_dtype(npartitions: int) -> np.dtype:
    """The smallest unsigned dtype for partition ids (uint16 lets NumPy radix sort them)."""
    if npartitions <= 1 << 8:
        return np.dtype(np.uint8)
    if npartitions <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def partition_ids(table: pa.Table, on: Sequence[Any], npartitions: int, block: int = BLOCK_ROWS) -> np.ndarray:
    """Partition of every row of ``table``: the documented hash of columns ``on``, mod n.

    >>> import pyarrow as pa
    >>> t = pa.table({'a': [1, 2, 1], 'b': ['x', 'y', 'x']})
    >>> ids = partition_ids(t, ['a', 'b'], 8)
    >>> ids.dtype, bool(ids[0] == ids[2])
    (dtype('uint8'), True)
    """
    n = table.num_rows
    out = np.empty(n, dtype=id_dtype(npartitions))
    columns = [table.column(name) for name in on]
    # hash in cache-sized blocks: the temporaries stay in cache and are reused, instead of
    # fresh multi-megabyte arrays that page-fault on first touch (3-4x slower here)
    for start in range(0, n, block):
        stop = min(start + block, n)
        h = hash_columns([c.slice(start, stop - start) for c in columns])
        if npartitions & (npartitions - 1) == 0:  # a power of two: the same, without a division
            np.bitwise_and(h, _U64(npartitions - 1), out=h)
        else:
            np.remainder(h, _U64(npartitions), out=h)
        out[start:stop] = h
    return out


# -- dask's assignment -------------------------------------------------------------------


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
