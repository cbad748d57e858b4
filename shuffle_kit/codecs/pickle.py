"""``Pickle``: lists of Python objects, as partd's ``Pickle``."""

from __future__ import annotations

import pickle
from typing import Any

from ..stores.base import Record, Store
from . import header
from .encode import Encode

VERSION = 1
_TAG = header.tag(header.PICKLE, VERSION)


def encode_as(obj: Any, codec: int) -> bytes:
    return header.tag(codec, VERSION) + pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def decode_as(record: Record, codec: int) -> Any:
    return pickle.loads(header.payload(record, codec, None, VERSION))


def encode(obj: Any) -> bytes:
    """The tag, then ``obj`` pickled (highest protocol)."""
    return _TAG + pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def decode(record: Record) -> Any:
    """Unpickle one record. Unpickling runs code: only read stores you trust."""
    return decode_as(record, header.PICKLE)


def concat(lists: list[list]) -> list:
    """Join the appended lists.

    >>> concat([[1, 2], [3], []])
    [1, 2, 3]
    """
    out: list = []
    for piece in lists:
        out.extend(piece)
    return out


class Pickle(Encode):
    """Append lists of Python objects; ``get`` gives the concatenated list.

    Reading unpickles, which runs code chosen by whoever wrote the store: use it only
    on stores you trust.

    >>> from shuffle_kit import Dict
    >>> p = Pickle(Dict())
    >>> p.append({'x': [1, 'a']}); p.append({'x': [(2, 3)]})
    >>> p.get('x'), p.get('never')
    ([1, 'a', (2, 3)], [])
    """

    _codec_name = "Pickle"

    def __init__(self, store: Store | str | None = None, *, partd: Store | None = None):
        super().__init__(encode, decode, concat, store, partd=partd)

    _codec_id = header.PICKLE

    def _decode_record(self, key: Any, record: Record) -> Any:
        header.payload(record, self._codec_id, key, VERSION)  # a clear error names the key
        return super()._decode_record(key, record)

    def __getstate__(self) -> dict[str, Any]:
        return {"store": self.store}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["store"])
