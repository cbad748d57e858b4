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

The partition id is ``h % npartitions``. Lists, maps and unions are rejected with
``UnhashableKeyError`` (a ``TypeError``; pandas cannot group by them either).

Object columns (Python values)
------------------------------
pandas groups an object column by Python equality (``2 == 2.0 == Decimal(2)``,
``1 == True``, ``(1, 2) == (1.0, 2.0)``) and puts every kind of null in one group, so
each value hashes by the rules above as if it were in a typed column of its kind, which
gives equal values equal hashes whatever column or chunk they come from:

- None, pd.NA, pd.NaT, NaN (float, NumPy, Decimal, complex) and NumPy's NaT: ``NULL``;
- bool, int, float, Decimal, Fraction, NumPy numbers: as numbers (so ``True`` is ``1``;
  ints beyond the float64 range as +-inf); complex with a zero imaginary part as its
  real part, else ``mix(2 ^ CPLX)`` combined with the real, then the imaginary part;
- str (UTF-8) and bytes: as strings, so an all-str column stored as Arrow strings and
  one stored as pickles agree;
- datetime, pd.Timestamp, np.datetime64 (the instant in UTC if aware, the wall clock if
  naive), date (its midnight), time, timedelta, pd.Timedelta, np.timedelta64: as times,
  in nanoseconds (finer units floored to them);
- pd.Period: its ordinal as a number; pd.Interval: ``left`` combined with ``right``,
  as the struct that stores a typed interval column;
- tuples: ``mix(len ^ TUPL)`` combined with each element's hash in order; frozensets:
  ``mix(len ^ SETS)`` combined with the elements' hashes in increasing order.

Unequal values may share a hash (``'a'`` and ``b'a'``, a Period and its ordinal): a
partition then holds both keys and the groups are still told apart by pandas. Any
other type (lists, dicts, arbitrary classes, enums that are not int or str) raises
``UnhashableKeyError`` naming the column and the type: its equality is its own.
Object columns reach the hash either as Arrow strings/binary (all str, bytes or None)
or pickled (``shuffle_kit.frames.pickled_fields``); a pickled column is read back into
objects, one per distinct pickle, and hashed as above.

>>> import pyarrow as pa
>>> hash_array(pa.array([1, None, 1.0])).tolist() == hash_array(pa.array([1.0, float('nan'), 1])).tolist()
True
>>> partition_ids(pa.table({'k': ['a', 'b', 'a']}), ['k'], 4).tolist()
[1, 3, 1]
"""

from __future__ import annotations

import cmath
import datetime as dt
import decimal
import math
import numbers
import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import UnhashableKeyError
from .arrow_numpy import one_width, valid_mask, values

if TYPE_CHECKING:
    pass

HASH_VERSION = 1

_U64 = np.uint64
_C1 = _U64(0xFF51AFD7ED558CCD)
_C2 = _U64(0xC4CEB9FE1A85EC53)
_COMBINE = _U64(0x9E3779B97F4A7C15)
_NUM = _U64(0x6E756D62)  # "numb"
_STR = _U64(0x73747267)  # "strg"
_TIME = _U64(0x74696D65)  # "time"
_TUPL = 0x7475706C  # "tupl"
_SETS = 0x73657473  # "sets"
_CPLX = 0x63706C78  # "cplx"
_ALL_ONES = _U64(0xFFFFFFFFFFFFFFFF)
BLOCK_ROWS = 1 << 16


MIX_BLOCK = 1 << 15  # values mixed at a time: a block and its scratch stay in the core's cache


def mix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's fmix64, in place on a uint64 array (and returned).

    Its eight steps are taken block by block: over a whole long array each step would read
    and write it from memory again, and make a temporary array as long.

    >>> hex(int(mix(np.array([1], dtype=np.uint64))[0]))
    '0xb456bcfc34c2cb2c'
    """
    scratch = np.empty(min(len(h), MIX_BLOCK), dtype=np.uint64)
    for at in range(0, len(h), MIX_BLOCK):
        _mix_block(h[at:at + MIX_BLOCK], scratch)
    return h


def _mix_block(h: np.ndarray, scratch: np.ndarray) -> None:
    """fmix64 of ``h`` in place, ``scratch`` (as long or longer) holding the shifts."""
    shifted = scratch[:len(h)]
    with np.errstate(over="ignore"):
        np.right_shift(h, _U64(33), out=shifted)
        h ^= shifted
        h *= _C1
        np.right_shift(h, _U64(33), out=shifted)
        h ^= shifted
        h *= _C2
        np.right_shift(h, _U64(33), out=shifted)
        h ^= shifted


NULL_HASH = _U64(mix(np.array([0x6E756C6C], dtype=np.uint64))[0])


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
    same_width = _hash_one_width(arr)
    if same_width is not None:
        return same_width
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
    if n and int(lengths.min()) == int(lengths.max()):  # every value of one length (ids, codes)
        return _set_nulls(_hash_words_of_width(h, padded, n, int(lengths[0])), arr)
    nwords = (lengths + 7) >> 3
    maxwords = int(nwords.max()) if n else 0
    # rows sorted by word count, longest first: step k touches only rows still going,
    # so total work stays proportional to the bytes, even with a few very long strings
    order = np.argsort(-nwords, kind="stable") if maxwords > 4 else None
    counts = np.bincount(nwords, minlength=maxwords + 1) if order is not None else None
    active = n
    for k in range(maxwords):
        if order is not None and counts is not None:
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


def _hash_one_width(arr: pa.Array) -> np.ndarray | None:
    """The hashes of a string or binary array whose every slot is of one width of at least
    8 bytes (ids, codes), read where they lie: no cast, no padded copy of the bytes, every
    length's hash the same one (None for any other array). Each value's last word, short
    of 8 bytes, is read as the 8 bytes ending at the value's end, shifted down: the bytes
    a zero-padded read would give, without reading past the data."""
    layout = one_width(arr, least=8)
    if layout is None:
        return None
    n, base, width = layout.rows, layout.start, layout.width
    data = np.frombuffer(layout.data, dtype=np.uint8)
    first = mix(np.array([width], dtype=np.uint64) ^ _STR)[0]  # (what every value's length hashes to)
    h = np.full(n, first, dtype=np.uint64)
    # each word position a strided view of the data, and the shift that drops the bytes
    # before it from a last word read as the value's last 8 bytes
    words = [(np.ndarray((n,), dtype="<u8", buffer=data, offset=base + min(k, width - 8), strides=(width,)),
              _U64(8 * (k - min(k, width - 8)))) for k in range(0, width, 8)]
    scratch = np.empty(min(n, MIX_BLOCK), dtype=np.uint64)
    # block by block, every word of a block folded in while it is in the cache (see mix)
    for at in range(0, n, MIX_BLOCK):
        block = h[at:at + MIX_BLOCK]
        for word, shift in words:
            if shift:
                np.right_shift(word[at:at + MIX_BLOCK], shift, out=scratch[:len(block)])
                block ^= scratch[:len(block)]
            else:
                block ^= word[at:at + MIX_BLOCK]
            _mix_block(block, scratch)
    return _set_nulls(h, arr)


def _hash_words_of_width(h: np.ndarray, padded: np.ndarray, n: int, width: int) -> np.ndarray:
    """``h`` (each value's length hashed) folded with the words of ``n`` values of
    ``width`` bytes each, back to back in ``padded``: the k-th words of all values are one
    strided view, read in place (no gather by row), and no value finishes early."""
    for k in range(0, width, 8):
        w = np.ndarray((n,), dtype="<u8", buffer=padded, offset=k, strides=(width,))
        if width - k < 8:  # the last word, zero-padded
            w = w & ((_U64(1) << _U64(8 * (width - k))) - _U64(1))
        h ^= w
        mix(h)
    return h


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


def hash_columns(columns: Sequence[pa.Array | pa.ChunkedArray | np.ndarray]) -> np.ndarray:
    """Combined hash of several key columns of equal length.

    A column may also be given as its hashes already (a uint64 array, left unchanged).

    >>> import pyarrow as pa
    >>> a, b = pa.array([1, 2]), pa.array(['x', 'y'])
    >>> bool((hash_columns([a, b]) == hash_columns([hash_array(a), b])).all())
    True
    """
    h = _hashes(columns[0])
    if len(columns) > 1:
        h = h.copy() if not h.flags.writeable or isinstance(columns[0], np.ndarray) else h
        for col in columns[1:]:
            h = combine(h, _hashes(col))
    return h


def _hashes(col: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    return col if isinstance(col, np.ndarray) else hash_array(col)


def id_dtype(npartitions: int) -> np.dtype:
    """The smallest unsigned dtype for partition ids (uint16 lets NumPy radix sort them)."""
    if npartitions <= 1 << 8:
        return np.dtype(np.uint8)
    if npartitions <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def partition_ids(
    table: pa.Table, on: Sequence[Any], npartitions: int, block: int = BLOCK_ROWS, *, seed: int = 0
) -> np.ndarray:
    """Partition of every row of ``table``: the documented hash of columns ``on``, mod n.

    A ``seed`` other than 0 gives ids independent of seed 0's, to split one partition
    again (a join's pair too large for memory): ``mix(h ^ (seed * 0x9e3779b97f4a7c15))``
    (modulo 2**64), mod n.

    >>> import pyarrow as pa
    >>> t = pa.table({'a': [1, 2, 1], 'b': ['x', 'y', 'x']})
    >>> ids = partition_ids(t, ['a', 'b'], 8)
    >>> ids.dtype, bool(ids[0] == ids[2])
    (dtype('uint8'), True)
    """
    n = table.num_rows
    out = np.empty(n, dtype=id_dtype(npartitions))
    pickled = pickled_keys(table.schema, on)
    # pickled objects are hashed whole (once per distinct value, not once per block); the
    # blocks below are views of those hashes, each reduced in place once
    columns = [hash_pickled(table.column(name), name) if name in pickled else table.column(name) for name in on]
    # hash in cache-sized blocks: the temporaries stay in cache and are reused, instead of
    # fresh multi-megabyte arrays that page-fault on first touch
    salt = _U64((seed * int(_COMBINE)) & 0xFFFFFFFFFFFFFFFF)
    for start in range(0, n, block):
        stop = min(start + block, n)
        h = hash_columns(
            [c[start:stop] if isinstance(c, np.ndarray) else c.slice(start, stop - start) for c in columns]
        )
        if seed:
            h ^= salt
            mix(h)
        out[start:stop] = _reduced(h, npartitions)
    return out


def ids_of_hashes(hashes: np.ndarray, npartitions: int, block: int = BLOCK_ROWS) -> np.ndarray:
    """The partition of each row whose keys' hash (:func:`hash_columns`) is in ``hashes``:
    :func:`partition_ids` (seed 0) of those rows, for a caller that hashed their keys
    already (a join's lookup of its dimension's keys), so they are not hashed twice.

    >>> t = pa.table({'k': ['a', 'b', 'a']})
    >>> ids_of_hashes(hash_columns([t.column('k')]), 4).tolist() == partition_ids(t, ['k'], 4).tolist()
    True
    """
    out = np.empty(len(hashes), dtype=id_dtype(npartitions))
    scratch = np.empty(min(block, len(hashes)), dtype=np.uint64)  # (``hashes`` stay as they are)
    for start in range(0, len(hashes), block):
        stop = min(start + block, len(hashes))
        h = scratch[: stop - start]
        h[:] = hashes[start:stop]
        out[start:stop] = _reduced(h, npartitions)
    return out


def _reduced(h: np.ndarray, npartitions: int) -> np.ndarray:
    """``h % npartitions``, in place."""
    if npartitions & (npartitions - 1) == 0:  # a power of two: the same, without a division
        return np.bitwise_and(h, _U64(npartitions - 1), out=h)
    return np.remainder(h, _U64(npartitions), out=h)


# -- Python objects (object-dtype key columns) -------------------------------------------
# Scalar twins of the vectorised functions above, on Python ints modulo 2**64: object
# columns hold values of many types, so they are hashed one distinct value at a time.
_M64 = (1 << 64) - 1
_NULL_INT = int(NULL_HASH)
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DATE = dt.date(1970, 1, 1)
_NS_PER = {"W": 604_800 * 10**9, "D": 86_400 * 10**9, "h": 3_600 * 10**9, "m": 60 * 10**9,
           "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_PER_NS = {"ps": 10**3, "fs": 10**6, "as": 10**9}


def _mix1(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _M64
    return x ^ (x >> 33)


def _combine1(h: int, other: int) -> int:
    return _mix1((h * 0x9E3779B97F4A7C15 + other) & _M64)


def _number1(f: float) -> int:
    if math.isnan(f):
        return _NULL_INT
    return _mix1(struct.unpack("<Q", struct.pack("<d", f + 0.0))[0] ^ 0x6E756D62)


def _real1(v: Any) -> int:
    try:
        return _number1(float(v))
    except OverflowError:  # ints and fractions past float64: where float64 keeps them
        return _number1(float("inf") if v > 0 else float("-inf"))


def _bytes1(b: bytes) -> int:
    h = _mix1(len(b) ^ 0x73747267)
    for k in range(0, len(b), 8):
        h = _mix1(h ^ int.from_bytes(b[k : k + 8], "little"))  # short last word: zero-padded
    return h


def _time1(ns: int) -> int:
    return _mix1((ns & _M64) ^ 0x74696D65)


def _timedelta_ns(v: dt.timedelta) -> int:
    return ((v.days * 86_400 + v.seconds) * 10**6 + v.microseconds) * 1000


def _numpy_time_ns(v: np.datetime64 | np.timedelta64) -> int:
    unit, count = np.datetime_data(v.dtype)
    if unit in ("Y", "M"):  # months and years vary in length: via days (always in range)
        v = v.astype("datetime64[D]")
        unit, count = "D", 1
    raw = int(v.astype(np.int64)) * count
    if unit in _NS_PER:
        return raw * _NS_PER[unit]
    if unit in _PER_NS:
        return raw // _PER_NS[unit]
    raise TypeError(f"a {type(v).__name__} in generic units")


def _unhashable(v: Any, name: Any, detail: str = "") -> UnhashableKeyError:
    t = type(v)
    tname = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    return UnhashableKeyError(
        f"key column {name!r} holds {tname} values ({' '.join(repr(v).split())[:40]}){detail}, which cannot be hashed "
        "into partitions: object keys must be None/NaN/NA/NaT, numbers, str, bytes, datetimes, "
        "dates, times, timedeltas, periods, intervals, or tuples/frozensets of these"
    )


def hash_object(v: Any, name: Any = None) -> int:
    """The documented hash of one Python value as an object-column key (module docstring).

    Values pandas groups together hash alike; ``name`` is the column, for the error.

    >>> hash_object(2) == hash_object(2.0) == hash_object(True + 1)
    True
    >>> hash_object((1, None)) == hash_object((1.0, float('nan')))
    True
    >>> hash_object('a') == int(hash_array(pa.array(['a']))[0])
    True
    """
    # the common types first, by exact type: one dictionary lookup
    f = _SCALAR.get(type(v))
    if f is not None:
        return f(v)
    import pandas as pd  # object columns come from pandas: already loaded

    if v is None or v is pd.NA or v is pd.NaT:
        return _NULL_INT
    if isinstance(v, (str, bytes)):  # subclasses: np.str_, str enums
        return _bytes1(v.encode("utf-8", "surrogatepass") if isinstance(v, str) else bytes(v))
    if isinstance(v, (bool, np.bool_)):
        return _number1(float(v))
    if isinstance(v, decimal.Decimal):
        if v.is_nan():
            return _NULL_INT
        return _number1(float(v))
    if isinstance(v, (np.datetime64, np.timedelta64)):
        if np.isnat(v):
            return _NULL_INT
        try:
            return _time1(_numpy_time_ns(v))
        except TypeError as e:
            raise _unhashable(v, name, f" ({e})") from None
    if isinstance(v, (numbers.Real, np.integer, np.floating)):  # ints, Fractions, ...
        return _real1(v)
    if isinstance(v, (numbers.Complex, np.complexfloating)):
        c = complex(v)
        if cmath.isnan(c):  # pandas: a NaN in either part makes a null
            return _NULL_INT
        if c.imag == 0:
            return _number1(c.real)
        return _combine1(_combine1(_mix1(2 ^ _CPLX), _number1(c.real)), _number1(c.imag))
    if isinstance(v, dt.datetime):  # before date: a datetime is a date
        return _time1(_datetime_ns(v))
    if isinstance(v, dt.date):
        return _time1((v - _EPOCH_DATE).days * 86_400 * 10**9)
    if isinstance(v, dt.timedelta):
        return _time1(_timedelta_ns(v) + getattr(v, "nanoseconds", 0))  # pd.Timedelta: ns too
    if isinstance(v, dt.time):
        ns = ((v.hour * 60 + v.minute) * 60 + v.second) * 10**9 + v.microsecond * 1000
        offset = v.utcoffset()
        return _time1(ns - _timedelta_ns(offset) if offset is not None else ns)
    if isinstance(v, tuple):
        h = _mix1(len(v) ^ _TUPL)
        for item in v:
            h = _combine1(h, hash_object(item, name))
        return h
    if isinstance(v, frozenset):
        h = _mix1(len(v) ^ _SETS)
        for item_hash in sorted(hash_object(item, name) for item in v):
            h = _combine1(h, item_hash)
        return h
    if isinstance(v, pd.Period):
        return _number1(float(v.ordinal))
    if isinstance(v, pd.Interval):
        return _combine1(hash_object(v.left, name), hash_object(v.right, name))
    raise _unhashable(v, name)


def _datetime_ns(v: dt.datetime) -> int:
    # from the parts, not pd.Timestamp.value: that one overflows outside 1677-2262
    d = dt.datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond) - _EPOCH
    offset = v.utcoffset()
    if offset is not None:  # aware: the instant in UTC
        d -= offset
    return _timedelta_ns(d) + getattr(v, "nanosecond", 0)


def _float1(v: float) -> int:
    return _number1(v)


def _int1(v: int) -> int:
    return _real1(v)


def _str1(v: str) -> int:
    # surrogatepass: lone surrogates have no UTF-8 (and no Arrow string) but pandas groups them
    return _bytes1(v.encode("utf-8", "surrogatepass"))


def _null1(v: Any) -> int:
    return _NULL_INT


# exact types to their hash; anything else goes through the isinstance chain
_SCALAR: dict[type, Any] = {
    float: _float1, int: _int1, bool: _float1, str: _str1, bytes: _bytes1, type(None): _null1,
    np.float64: _float1, np.int64: _int1, np.float32: _real1, np.int32: _int1,
}


def pickled_keys(schema: pa.Schema, on: Sequence[Any]) -> frozenset[str]:
    """The key columns ``on`` of ``schema`` that hold pickled objects
    (``shuffle_kit.frames.pickled_fields``).

    Pickles are binary columns of frames converted by ``shuffle_kit.frames``; that module
    imports pandas, which the command line never needs for its Arrow inputs and whose import
    is a large part of a short job's start: it is asked only when a key column can be one.

    >>> pickled_keys(pa.schema({'k': pa.int64()}), ['k'])
    frozenset()
    """
    if not schema.metadata or not any(pa.types.is_binary(schema.field(name).type) for name in on):
        return frozenset()
    from ..frames import pickled_fields

    return pickled_fields(schema)


def hash_objects(objects: Iterable[Any], name: Any = None) -> np.ndarray:
    """:func:`hash_object` of every value, as a uint64 array.

    >>> hash_objects([1, True, None, float('nan')]).tolist() == hash_array(pa.array([1, 1, None, None])).tolist()
    True
    """
    objs = objects if isinstance(objects, list) else list(objects)
    out = np.empty(len(objs), dtype=np.uint64)
    # the common exact types go through the vectorised hashes of typed columns (the same
    # values by construction); only the rest pays a Python call per value
    kind = np.fromiter((_BULK.get(type(v), 0) for v in objs), dtype=np.int8, count=len(objs))
    rest = np.flatnonzero(kind == 0)
    for k, to_arrow in ((1, _numbers_array), (2, _strings_array)):
        rows = np.flatnonzero(kind == k)
        if not len(rows):
            continue
        try:
            arr = to_arrow([objs[i] for i in rows.tolist()])
        except (OverflowError, ValueError, UnicodeError, pa.ArrowException):  # huge ints, lone surrogates
            rest = np.concatenate([rest, rows])
            continue
        out[rows] = hash_array(arr)
    for i in rest.tolist():
        out[i] = hash_object(objs[i], name)
    return out


def _numbers_array(vs: list) -> pa.Array:
    return pa.array(np.array(vs, dtype=np.float64))


def _strings_array(vs: list) -> pa.Array:
    return pa.array(vs, type=pa.large_string())


_BULK = {int: 1, float: 1, bool: 1, np.float64: 1, np.int64: 1, str: 2}


def hash_pickled(arr: pa.Array | pa.ChunkedArray, name: Any = None) -> np.ndarray:
    """Hashes of a column of pickled objects (see ``shuffle_kit.frames.pickled_fields``).

    Each distinct pickle is read back and hashed once; rows take their value's hash.
    """
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 0:
            return np.zeros(0, dtype=np.uint64)
        return np.concatenate([hash_pickled(c, name) for c in arr.chunks])
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    from ..frames import unpickle  # pickles come from there: pandas is loaded

    encoded = pc.dictionary_encode(arr)  # equal pickles are equal values: unpickle once
    dict_hash = hash_objects(unpickle(encoded.dictionary), name)
    indices = pc.fill_null(encoded.indices, 0)
    h = dict_hash[values(indices, np.int32).astype(np.intp)] if len(dict_hash) else np.zeros(len(arr), dtype=np.uint64)
    return _set_nulls(h, arr)
