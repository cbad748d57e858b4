"""``Encode``: turn any byte store into a store of objects with two pure functions and a join."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import CodecError, CorruptionError
from ..stores.base import Record, Store, get_nested
from ..stores.keys import Key
from .base import Codec, Wrapper


class Encode(Wrapper, Codec):
    """Store objects: ``encode(obj) -> bytes`` on append, ``decode(bytes) -> obj`` per
    stored record and ``join(list_of_objs)`` on get.

    Each appended object is its own record in the inner store, so ``decode`` sees
    exactly the bytes ``encode`` made (no framing, no re-parsing of a concatenation).
    ``join([])`` is the value of a key never written. It declares no capability but
    ``in_memory`` (its store's): a subclass that stores frames says so (``stores_frames``).

    >>> import zlib
    >>> from shuffle_kit import Dict
    >>> e = Encode(zlib.compress, zlib.decompress, b'|'.join, Dict())
    >>> e.append({'x': b'ab'}); e.append({'x': b'cd', 'y': b'e'})
    >>> e.get('x'), e.get(['y', 'never'])
    (b'ab|cd', [b'e', b''])
    """

    # Built-in codecs turn a failure to decode a tagged record into CorruptionError;
    # user functions keep their own exceptions.
    _codec_name: str | None = None

    def __init__(
        self,
        encode: Callable[[Any], Any],
        decode: Callable[[Any], Any],
        join: Callable[[list], Any],
        store: Store | str | None = None,
        *,
        partd: Store | None = None,
    ):
        self.encode = encode
        self.decode = decode
        self.join = join
        super().__init__(store, partd=partd)

    # -- writing --------------------------------------------------------------------------
    def _encode_value(self, key: Key, value: Any) -> Any:
        return self.encode(value)

    def append(
        self, data: Mapping[Key, Any], lock: bool = True, *, batch_id: bytes | None = None, **kwargs: Any
    ) -> None:
        """Encode each value and append it as one record to its key (one store append)."""
        records = {k: self._encode_value(k, v) for k, v in data.items()}
        self.store.append(records, lock=lock, batch_id=batch_id)

    def iset(self, key: Key, value: Any, lock: bool = True, **kwargs: Any) -> None:
        """Set ``key`` to ``value`` once (see :meth:`Store.iset`)."""
        self.store.iset(key, self._encode_value(key, value), lock=lock)

    # -- reading --------------------------------------------------------------------------
    def _decode_record(self, key: Key, record: Record) -> Any:
        if self._codec_name is None:
            return self.decode(record)
        try:
            return self.decode(record)
        except (CodecError, CorruptionError):
            raise
        except Exception as e:
            raise CorruptionError(
                f"key {key!r:.80}: a {self._codec_name} record could not be decoded "
                f"({type(e).__name__}: {e})"
            ) from e

    def _join_records(self, key: Key, records: list[Record], **kwargs: Any) -> Any:
        return self.join([self._decode_record(key, r) for r in records])

    def get_pieces(self, keys: Sequence[Key], lock: bool = True) -> list[list[Any]]:
        """The decoded objects appended to each of ``keys``, one per append, unjoined."""
        records = self.store.get_records(list(keys), lock=lock)
        return [[self._decode_record(k, r) for r in rs] for k, rs in zip(keys, records)]

    def iter_pieces(self, key: Key, max_bytes: int = 64 * 2**20, lock: bool = True) -> Iterator[Any]:
        """The decoded objects appended to ``key``, one per append, read from the store about
        ``max_bytes`` of records at a time (see :meth:`Store.iter_records`)."""
        for records in self.store.iter_records(key, max_bytes, lock=lock):
            for record in records:
                yield self._decode_record(key, record)

    def get(self, keys: Any, lock: bool = True, **kwargs: Any) -> Any:
        """The joined objects of a key (``join([])`` if never written); lists give lists."""

        def fetch(flat: list) -> list:
            records = self.store.get_records(flat, lock=lock)
            return [self._join_records(k, rs, **kwargs) for k, rs in zip(flat, records)]

        return get_nested(keys, fetch)

    def get_records(self, keys: Sequence[Key], lock: bool = True) -> list[list[Record]]:
        """The raw (encoded) records of each key, straight from the inner store."""
        return self.store.get_records(keys, lock=lock)

    # -- everything else is the inner store's (see Wrapper) ------------------------------
    def pop(self, keys: Any, **kwargs: Any) -> Any:
        """``get`` then ``delete``, atomically."""
        with self.lock:
            result = self.get(keys, lock=False, **kwargs)
            self.delete(keys, lock=False)
        return result
