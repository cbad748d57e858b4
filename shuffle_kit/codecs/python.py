"""``Python``: partd's msgpack-or-pickle list codec; here pickle alone, tagged."""

from __future__ import annotations

from typing import Any

from ..stores.base import Record, Store
from . import header
from .encode import Encode
from .pickle import Pickle, concat, decode_as, encode_as

VERSION = 1


def encode(obj: Any) -> bytes:
    return encode_as(obj, header.PYTHON)


def decode(record: Record) -> Any:
    return decode_as(record, header.PYTHON)


class Python(Pickle):
    """Lists of Python objects, as partd's ``Python`` (which tries msgpack first, a
    speed-up for plain data; pickle handles the same data, so only pickle is used).

    >>> from shuffle_kit import Dict
    >>> p = Python(Dict())
    >>> p.append({'x': [1, {'a': 2}]}); p.get('x')
    [1, {'a': 2}]
    """

    _codec_name = "Python"
    _codec_id = header.PYTHON

    def __init__(self, store: Store | str | None = None, *, partd: Store | None = None):
        Encode.__init__(self, encode, decode, concat, store, partd=partd)
