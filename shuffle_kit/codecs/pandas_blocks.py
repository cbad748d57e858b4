"""``PandasBlocks``: partd's DataFrame codec, exact for every pandas 3 dtype."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from ..errors import ArgumentTypeError
from ..frames import concat_frames, tables_to_frame
from ..stores.keys import Key
from . import header
from .arrow_ipc import ArrowIPC, encode


class PandasBlocks(ArrowIPC):
    """Append DataFrames; ``get`` concatenates them (``pandas.concat`` semantics,
    categoricals keeping the union of their categories).

    Each frame is stored as the buffers of its columns in the Arrow IPC layout: numeric
    columns are written and read back as raw memory, strings as offsets and bytes,
    categoricals as codes; no pickle except for object columns holding arbitrary Python
    objects (reading those trusts whoever wrote the store). Records carry their own
    tag, so a store written by ``ArrowIPC`` is not mistaken for one of these.

    >>> from shuffle_kit import Dict
    >>> s = PandasBlocks(Dict())
    >>> s.append({'x': pd.DataFrame({'a': [1]}, index=['r'])})
    >>> s.append({'x': pd.DataFrame({'a': [2]}, index=['s'])})
    >>> s.get('x')
       a
    r  1
    s  2
    """

    _codec_name = "PandasBlocks"
    codec_id = header.PANDAS_BLOCKS
    stores_arrow = False  # DataFrames only, as partd's

    def _encode_value(self, key: Key, value: Any) -> Any:
        if not isinstance(value, pd.DataFrame):
            raise ArgumentTypeError(f"key {key!r:.80}: PandasBlocks stores DataFrames, not {type(value).__name__}")
        return encode(value, self.codec_id)


def serialize(df: pd.DataFrame) -> bytes:
    """partd's ``pandas.serialize``: one DataFrame as bytes (a PandasBlocks record).

    >>> df = pd.DataFrame({'a': [1, 2]}, index=['x', 'y'])
    >>> deserialize(serialize(df)).equals(df)
    True
    """
    if not isinstance(df, pd.DataFrame):
        raise ArgumentTypeError(f"serialize takes a DataFrame, not {type(df).__name__}")
    return bytes(encode(df, header.PANDAS_BLOCKS))


def deserialize(data: Any) -> pd.DataFrame:
    """partd's ``pandas.deserialize``: the DataFrame in bytes made by :func:`serialize`."""
    body = header.payload(data, header.PANDAS_BLOCKS, None, 1)
    return tables_to_frame([pa.ipc.open_stream(pa.py_buffer(body)).read_all()])


def join(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """partd's ``pandas.join``: concatenate (an empty DataFrame for none)."""
    return concat_frames(frames)
