"""Compression wrappers: byte stores that compress each record of an inner store.

They are stores themselves, so they nest anywhere a store goes:
``PandasBlocks(LZ4(File(path)))``. Each record stays one record (codecs above see
the same boundaries); the lock, ``delete``, ``drop`` and the capabilities are the inner
store's (:class:`~shuffle_kit.codecs.base.Wrapper`).

A compressed record is::

    tag (8 bytes: magic, compressor id, version) | raw length u64 | crc32 u32 | 4 zero bytes
    | compressed bytes

The crc32 covers the compressed bytes: a damaged record raises CorruptionError instead
of decompressing to garbage (LZ4 and Snappy have no checksum of their own).
"""

from __future__ import annotations

import bz2
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import lz4.block
import pyarrow as pa

from ..errors import CorruptionError
from ..stores.base import Record, Store, as_record, get_nested
from ..stores.keys import Key, decode_key
from . import header
from .base import Wrapper

VERSION = 1
_SIZES = struct.Struct("<QI4x")
_HEAD = header.TAG.size + _SIZES.size


class Compressed(Wrapper, Store):  # type: ignore[override]  # the lock is the inner store's
    """Base class: subclasses set ``codec_id`` and implement ``_compress``/``_decompress``."""

    codec_id: int = 0

    def __init__(self, store: Store | str | None = None, *, partd: Store | None = None):
        super().__init__(store, partd=partd)
        self._tag = header.tag(self.codec_id, VERSION)

    # -- the transformation ---------------------------------------------------------------
    def _compress(self, data: memoryview) -> Any:
        raise NotImplementedError

    def _decompress(self, data: memoryview, size: int) -> Any:
        raise NotImplementedError

    def pack(self, record: Record) -> bytes:
        """One compressed record (header and compressed bytes)."""
        data = memoryview(record)
        body = self._compress(data)
        return b"".join((self._tag, _SIZES.pack(len(data), zlib.crc32(body)), body))

    def unpack(self, record: Record, key: Any = None) -> Record:
        """The original bytes of one compressed record; CodecError or CorruptionError if
        it is not one."""
        view = header.payload(record, self.codec_id, key, VERSION)
        if len(view) < _SIZES.size:
            raise CorruptionError(f"key {key!r:.80}: {type(self).__name__} record cut short")
        size, crc = _SIZES.unpack_from(view)
        body = view[_SIZES.size :]
        if zlib.crc32(body) != crc:
            raise CorruptionError(f"key {key!r:.80}: {type(self).__name__} record fails its checksum")
        try:
            out = self._decompress(body, size)
        except Exception as e:  # each library has its own error type
            raise CorruptionError(
                f"key {key!r:.80}: {type(self).__name__} record does not decompress ({e})"
            ) from e
        if len(out) != size:
            raise CorruptionError(
                f"key {key!r:.80}: {type(self).__name__} record decompressed to {len(out)} "
                f"bytes, expected {size}"
            )
        return out

    # -- public API: compress and decompress outside the lock -----------------------------
    def append(
        self, data: Mapping[Key, Any], lock: bool = True, *, batch_id: bytes | None = None, **kwargs: Any
    ) -> None:
        packed = {k: self.pack(as_record(k, v)) for k, v in data.items()}
        self.store.append(packed, lock=lock, batch_id=batch_id)

    def get_records(self, keys: Sequence[Key], lock: bool = True) -> list[list[Record]]:
        records = self.store.get_records(keys, lock=lock)
        return [[self.unpack(r, k) for r in rs] for k, rs in zip(keys, records)]

    def iter_records(self, key: Key, max_bytes: int = 64 * 2**20, lock: bool = True) -> Iterator[list[Record]]:
        for records in self.store.iter_records(key, max_bytes, lock=lock):  # compressed sizes
            yield [self.unpack(r, key) for r in records]

    def get(self, keys: Any, lock: bool = True, **kwargs: Any) -> Any:
        return get_nested(
            keys, lambda flat: [b"".join(rs) for rs in self.get_records(flat, lock=lock)]
        )

    # -- the store interface (lock held: it is the inner store's lock) ----------------------
    def _append(self, kbs: Sequence[bytes], values: Sequence[Record], batch_id: bytes | None) -> None:
        self.store._append(kbs, [self.pack(r) for r in values], batch_id)

    def _records(self, kbs: Sequence[bytes]) -> list[list[Record]]:
        records = self.store._records(kbs)
        return [[self.unpack(r, decode_key(kb)) for r in rs] for kb, rs in zip(kbs, records)]

    def _iset(self, kb: bytes, value: Record) -> None:
        self.store._iset(kb, self.pack(value))

    def _delete(self, kbs: Sequence[bytes]) -> None:
        self.store._delete(kbs)

    def _drop(self) -> None:
        self.store._drop()

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class LZ4(Compressed):
    """LZ4 block compression: fast, a good default for shuffles.

    >>> from shuffle_kit import Dict
    >>> s = LZ4(Dict())
    >>> s.append({'x': b'a' * 1000}); s.append({'x': b'b'})
    >>> len(s.get('x')), len(s.store.get('x')) < 100
    (1001, True)
    """

    codec_id = header.LZ4

    def _compress(self, data: memoryview) -> bytes:
        return lz4.block.compress(data, store_size=False)

    def _decompress(self, data: memoryview, size: int) -> bytes:
        return lz4.block.decompress(data, uncompressed_size=size)


class ZLib(Compressed):
    """zlib (deflate) compression.

    >>> from shuffle_kit import Dict
    >>> s = ZLib(Dict(), level=1)
    >>> s.append({'x': b'hello'}); s.get('x')
    b'hello'
    """

    codec_id = header.ZLIB

    def __init__(self, store: Store | str | None = None, level: int = 6, *, partd: Store | None = None):
        super().__init__(store, partd=partd)
        self.level = level

    def _compress(self, data: memoryview) -> bytes:
        return zlib.compress(data, self.level)

    def _decompress(self, data: memoryview, size: int) -> bytes:
        return zlib.decompress(data, bufsize=max(size, 1))


class BZ2(Compressed):
    """bzip2 compression: small, slow.

    >>> from shuffle_kit import Dict
    >>> s = BZ2(Dict())
    >>> s.append({'x': b'hello'}); s.get('x')
    b'hello'
    """

    codec_id = header.BZ2

    def _compress(self, data: memoryview) -> bytes:
        return bz2.compress(data)

    def _decompress(self, data: memoryview, size: int) -> bytes:
        return bz2.decompress(data)


class _ArrowCodec(Compressed):
    """A compressor from pyarrow's bundled codecs (no extra dependency)."""

    arrow_name = ""

    def __init__(self, store: Store | str | None = None, level: int | None = None, *, partd: Store | None = None):
        super().__init__(store, partd=partd)
        self.level = level
        self._codec = pa.Codec(self.arrow_name, compression_level=level)

    def _compress(self, data: memoryview) -> pa.Buffer:
        return self._codec.compress(data)

    def _decompress(self, data: memoryview, size: int) -> memoryview:
        return memoryview(self._codec.decompress(data, decompressed_size=size))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_codec"]  # rebuilt from the level
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._codec = pa.Codec(self.arrow_name, compression_level=self.level)


class Snappy(_ArrowCodec):
    """Snappy compression, through pyarrow.

    >>> from shuffle_kit import Dict
    >>> s = Snappy(Dict())
    >>> s.append({'x': b'hello'}); s.get('x')
    b'hello'
    """

    codec_id = header.SNAPPY
    arrow_name = "snappy"


class Zstd(_ArrowCodec):
    """Zstandard compression, through pyarrow; ``level`` trades speed for size.

    >>> from shuffle_kit import Dict
    >>> s = Zstd(Dict(), level=3)
    >>> s.append({'x': b'hello'}); s.get('x')
    b'hello'
    """

    codec_id = header.ZSTD
    arrow_name = "zstd"


COMPRESSORS: list[type[Compressed]] = [LZ4, ZLib, BZ2, Snappy, Zstd]

try:  # optional, as in partd
    import blosc as _blosc
except ImportError:  # pragma: no cover - depends on the environment
    _blosc = None

if _blosc is not None:  # pragma: no cover

    class Blosc(Compressed):
        """Blosc compression (only when the ``blosc`` package is installed)."""

        codec_id = header.BLOSC

        def _compress(self, data: memoryview) -> bytes:
            return _blosc.compress(bytes(data), typesize=1)

        def _decompress(self, data: memoryview, size: int) -> bytes:
            return _blosc.decompress(bytes(data))

    COMPRESSORS.append(Blosc)
