"""Canonical byte encoding of store keys.

Every store keys its data by ``encode_key(key)``. The encoding is injective: distinct
keys never share bytes, so ``1``, ``'1'``, ``b'1'`` and ``('1',)`` stay distinct, and
no key is ever turned into a file name.

    >>> encode_key('a')
    b'sa'
    >>> encode_key(('a', 1))
    b't\\x02\\x00\\x00\\x00sa\\x02\\x00\\x00\\x00i1'
    >>> decode_key(encode_key(('x', (b'y', -3))))
    ('x', (b'y', -3))
"""

from __future__ import annotations

import numbers
import struct
from collections.abc import Iterable
from typing import Any

from ..errors import ArgumentTypeError, JobError

Key = str | bytes | int | tuple

MAX_KEY_BYTES = 1 << 16  # generous for real keys, small enough to bound a log record
_LEN = struct.Struct("<I")


def _encode(key: object, top: object) -> bytes:
    if isinstance(key, str):
        # surrogatepass keeps lone surrogates distinct instead of failing
        return b"s" + key.encode("utf-8", "surrogatepass")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return b"b" + bytes(key)
    if isinstance(key, bool):
        raise ArgumentTypeError(f"store key {top!r}: bool keys are ambiguous with 1 and 0; use int")
    if isinstance(key, numbers.Integral):
        return b"i" + str(int(key)).encode()
    if isinstance(key, tuple):
        parts = [_encode(k, top) for k in key]
        return b"t" + b"".join(_LEN.pack(len(p)) + p for p in parts)
    raise ArgumentTypeError(
        f"store key {top!r} has type {type(key).__name__}; "
        "keys must be str, bytes, int or tuples of these"
    )


def encode_key(key: object) -> bytes:
    """Return the canonical bytes of ``key``; raise TypeError/ValueError if it is not a key."""
    t = type(key)  # the common cases, kept cheap
    if t is str:
        kb = b"s" + key.encode("utf-8", "surrogatepass")  # type: ignore[attr-defined]
    elif t is int:
        return b"i%d" % key  # type: ignore[str-format]
    else:
        kb = _encode(key, key)
    if len(kb) > MAX_KEY_BYTES:
        raise JobError(
            f"store key {key!r:.60} is {len(kb)} bytes encoded; the limit is {MAX_KEY_BYTES}"
        )
    return kb


# the keys encoded last, with their types and encodings: a writer appends to the same
# keys again and again, and comparing them costs a tenth of encoding them
_recent: tuple[list[Any], list[type], list[bytes]] = ([], [], [])


def encode_keys(keys: Iterable[Any]) -> list[bytes]:
    """``encode_key`` of each key; keys all of type int, or all str, cost one pass.

    >>> encode_keys([1, 22]), encode_keys(['a', ('b',)])
    ([b'i1', b'i22'], [b'sa', b't\\x02\\x00\\x00\\x00sb'])
    """
    global _recent
    keys = list(keys)
    types = list(map(type, keys))
    last_keys, last_types, last_kbs = _recent
    if types == last_types and keys == last_keys:  # equal types first: True == 1
        return last_kbs.copy()
    kinds = set(types)
    if kinds == {int}:
        kbs = [b"i%d" % k for k in keys]
    elif kinds == {str}:
        kbs = [b"s" + k.encode("utf-8", "surrogatepass") for k in keys]
    else:
        return list(map(encode_key, keys))
    if max(map(len, kbs)) > MAX_KEY_BYTES:
        return list(map(encode_key, keys))  # raises, naming the key
    _recent = (keys, types, kbs)
    return kbs.copy()


def decode_key(kb: bytes) -> Key:
    """Inverse of :func:`encode_key`."""
    tag, body = kb[:1], kb[1:]
    if tag == b"s":
        return body.decode("utf-8", "surrogatepass")
    if tag == b"b":
        return bytes(body)
    if tag == b"i":
        return int(body)
    if tag == b"t":
        out, pos = [], 0
        while pos < len(body):
            (n,) = _LEN.unpack_from(body, pos)
            out.append(decode_key(body[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        return tuple(out)
    raise ValueError(f"not an encoded store key: {bytes(kb)!r:.60}")
