"""``Numpy``: NumPy arrays, concatenated along their first axis.

A record is the tag, a little header (JSON: dtype, trailing shape) and the raw bytes,
8-byte aligned. Object arrays are pickled (reading them trusts the writer). Each key
remembers the dtype and trailing shape of its first append in a side key written in
the same batch, so appending a different one raises instead of reinterpreting bytes.
"""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ArgumentTypeError
from ..stores.base import NO_LOCK, Record, Store, as_key_list
from ..stores.keys import Key, encode_key
from . import header
from .encode import Encode

VERSION = 1
_TAG = header.tag(header.NUMPY, VERSION)
_LEN = struct.Struct("<I")
_FRAME = struct.Struct("<Q")
_META_PREFIX = b"\x00shuffle_kit.numpy.dtype\x00"


# -- dtypes as text, without eval -----------------------------------------------------------
def dtype_to_json(dt: np.dtype) -> Any:
    """A JSON description of ``dt`` (byte order included).

    >>> dtype_to_json(np.dtype('<i4')), dtype_from_json(dtype_to_json(np.dtype([('a', '>f8')])))
    ('<i4', dtype([('a', '>f8')]))
    """
    return dt.str if dt.fields is None else np.lib.format.dtype_to_descr(dt)


def dtype_from_json(j: Any) -> np.dtype:
    if isinstance(j, str):
        return np.dtype(j)
    return np.lib.format.descr_to_dtype(j)  # accepts the lists JSON makes of its tuples


# -- partd's module-level helpers (raw bytes, no tag) ----------------------------------------
def serialize(x: np.ndarray) -> bytes:
    """partd's ``numpy.serialize``: raw bytes, or length-prefixed pickles for objects.

    Serialized pieces concatenate: ``deserialize(serialize(a) + serialize(b), dtype)``
    is the concatenation of ``a`` and ``b``.

    >>> deserialize(serialize(np.arange(3)) + serialize(np.arange(2)), np.dtype('i8'))
    array([0, 1, 2, 0, 1])
    """
    x = np.asarray(x)
    if x.dtype.hasobject:
        body = pickle.dumps(x.ravel().tolist(), protocol=pickle.HIGHEST_PROTOCOL)
        return _FRAME.pack(len(body)) + body
    return np.ascontiguousarray(x).tobytes()


def deserialize(data: Any, dtype: Any, copy: bool = False) -> np.ndarray:
    """partd's ``numpy.deserialize``: the inverse of :func:`serialize` (1-d)."""
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        view, pos, items = memoryview(data), 0, []
        while pos < len(view):
            (n,) = _FRAME.unpack_from(view, pos)
            items.extend(pickle.loads(view[pos + 8 : pos + 8 + n]))
            pos += 8 + n
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out
    out = np.frombuffer(data, dtype)
    return out.copy() if copy else out


# -- records -------------------------------------------------------------------------------
def _describe(x: np.ndarray) -> bytes:
    return json.dumps({"dtype": dtype_to_json(x.dtype), "shape": list(x.shape[1:])}).encode()


def encode(x: Any) -> bytes:
    """One record for array ``x`` (at least 1-d)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ArgumentTypeError("Numpy stores arrays of at least one dimension (they are concatenated)")
    # rows too: with a zero in the trailing shape they cannot be inferred from the bytes
    meta = json.dumps({"dtype": dtype_to_json(x.dtype), "shape": list(x.shape[1:]), "rows": len(x)}).encode()
    pad = -(len(_TAG) + _LEN.size + len(meta)) % 8
    if x.dtype.hasobject:
        body: Any = pickle.dumps(x.ravel().tolist(), protocol=pickle.HIGHEST_PROTOCOL)
    else:
        body = np.ascontiguousarray(x).reshape(-1).view(np.uint8)  # bytes, even for empty shapes
    return b"".join((_TAG, _LEN.pack(len(meta) + pad), meta, b" " * pad, body))


def decode(record: Record) -> np.ndarray:
    """The array in one record (a read-only view of the record when not objects)."""
    view = header.payload(record, header.NUMPY, None, VERSION)
    (n,) = _LEN.unpack_from(view)
    meta = json.loads(bytes(view[_LEN.size : _LEN.size + n]))
    dtype, shape = dtype_from_json(meta["dtype"]), tuple(meta["shape"])
    body = view[_LEN.size + n :]
    if dtype.hasobject:
        items = pickle.loads(body)
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out.reshape((meta["rows"], *shape))
    return np.frombuffer(body, dtype).reshape((meta["rows"], *shape))


def concat(arrays: list[np.ndarray]) -> np.ndarray:
    """Join along the first axis; always a new, writable array.

    >>> concat([]).shape, concat([np.ones(2), np.zeros(1)]).tolist()
    ((0,), [1.0, 1.0, 0.0])
    """
    if not arrays:
        return np.empty(0)
    return np.concatenate(arrays)


def _meta_key(key: Key) -> bytes:
    return _META_PREFIX + encode_key(key)


class Numpy(Encode):
    """Append NumPy arrays to keys; ``get`` concatenates them along the first axis.

    >>> from shuffle_kit import Dict
    >>> n = Numpy(Dict())
    >>> n.append({'x': np.array([1, 2])}); n.append({'x': np.array([3])})
    >>> n.get('x'), n.get('never').size
    (array([1, 2, 3]), 0)
    >>> n.append({'x': np.array([1.5])})
    Traceback (most recent call last):
    shuffle_kit.errors.ArgumentTypeError: key 'x' holds int64 arrays of shape (n,); cannot append float64 of shape (n,)
    """

    _codec_name = "Numpy"

    def __init__(self, store: Store | str | None = None, *, partd: Store | None = None):
        super().__init__(encode, decode, concat, store, partd=partd)

    def __getstate__(self) -> dict[str, Any]:
        return {"store": self.store}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["store"])

    def append(
        self, data: Mapping[Key, Any], lock: bool = True, *, batch_id: bytes | None = None, **kwargs: Any
    ) -> None:
        arrays = {k: np.asarray(v) for k, v in data.items()}
        records: dict[Any, Any] = {k: encode(a) for k, a in arrays.items()}
        keys = list(arrays)
        with self.lock if lock else NO_LOCK:
            # check against each key's first dtype; record it with the first append
            known = self.store.get_records([_meta_key(k) for k in keys], lock=False)
            for k, metas in zip(keys, known):
                described = _describe(arrays[k])
                if not metas:
                    records[_meta_key(k)] = described
                elif bytes(metas[0]) != described:
                    raise ArgumentTypeError(_mismatch(k, metas[0], arrays[k]))
            self.store.append(records, lock=False, batch_id=batch_id)

    def delete(self, keys: Any, lock: bool = True, **kwargs: Any) -> None:
        keys = as_key_list(keys)
        self.store.delete(keys + [_meta_key(k) for k in keys], lock=lock)


def _shape(s: list[int]) -> str:
    """An array shape with its first (appended) axis written ``n``.

    >>> _shape([]), _shape([3, 2])
    ('(n,)', '(n, 3, 2)')
    """
    return "(" + ", ".join(["n", *map(str, s)]) + (",)" if not s else ")")


def _mismatch(key: Key, stored: Record, x: np.ndarray) -> str:
    meta = json.loads(bytes(stored))
    old = dtype_from_json(meta["dtype"])
    return (
        f"key {key!r:.80} holds {old} arrays of shape {_shape(meta['shape'])}; "
        f"cannot append {x.dtype} of shape {_shape(list(x.shape[1:]))}"
    )

