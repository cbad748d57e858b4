"""``ArrowIPC``: DataFrames and Arrow tables stored as Arrow IPC streams."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from ..errors import ArgumentTypeError, CorruptionError
from ..frames import (
    concat_frames,
    concat_tables,
    frame_to_table,
    tables_to_frame,
    write_table,
)
from ..stores.base import Record, SealedBytes, Store
from ..stores.keys import Key
from . import header
from .encode import Encode

VERSION = 1


def encode(obj: pd.DataFrame | pa.Table | pa.RecordBatch, codec: int = header.ARROW_IPC) -> memoryview:
    """One record: the tag, then an Arrow IPC stream of ``obj`` (a frame exactly, see
    :mod:`shuffle_kit.frames`). Raise TypeError naming a column that cannot be stored.
    """
    if isinstance(obj, pd.DataFrame):
        table = frame_to_table(obj)
    elif isinstance(obj, pa.Table):
        table = obj
    elif isinstance(obj, pa.RecordBatch):
        table = pa.Table.from_batches([obj])
    else:
        raise ArgumentTypeError(
            f"ArrowIPC stores DataFrames, pyarrow Tables and RecordBatches, not {type(obj).__name__}"
        )
    # measure first, then write into a buffer of exactly that size: a growing stream
    # would copy as it grows and keep up to twice the bytes it holds
    measure = pa.MockOutputStream()
    _write(measure, table, codec)
    # sealed: a store may keep it and a server connection send it without a copy
    return SealedBytes.written(measure.size(), lambda memory: _write(pa.FixedSizeBufferWriter(memory), table, codec))


def _write(sink: Any, table: pa.Table, codec: int) -> None:
    sink.write(header.tag(codec, VERSION))  # 8 bytes: buffers stay aligned
    with pa.ipc.new_stream(sink, table.schema) as writer:
        write_table(writer, table)


def decode_table(record: Record, key: Any = None) -> pa.Table:
    """The table in one record; its buffers point into ``record`` (no copy)."""
    body = header.payload(record, header.ARROW_IPC, key, VERSION)
    return pa.ipc.open_stream(pa.py_buffer(body)).read_all()


def decode(record: Record) -> pd.DataFrame:
    """The DataFrame in one record."""
    return tables_to_frame([decode_table(record)])


def join(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return concat_frames(frames)


class ArrowIPC(Encode):
    """Store DataFrames, ``pyarrow.Table``s and ``RecordBatch``es as Arrow IPC streams.

    ``get(key)`` gives a DataFrame (pieces joined with ``pandas.concat`` semantics,
    categoricals keeping the union of their categories), ``get(key, as_arrow=True)`` a
    ``pyarrow.Table`` whose buffers point into the stored records where Arrow allows.
    Every pandas dtype round-trips exactly; object columns holding values other than
    str/bytes/None are pickled, so reading them trusts whoever wrote the store.

    >>> import pandas as pd
    >>> from shuffle_kit import Dict
    >>> s = ArrowIPC(Dict())
    >>> s.append({'x': pd.DataFrame({'a': [1, 2]})})
    >>> s.append({'x': pd.DataFrame({'a': [3]})})
    >>> s.get('x')['a'].tolist(), s.get('x', as_arrow=True).num_rows, s.get('y').shape
    ([1, 2, 3], 3, (0, 0))
    """

    _codec_name = "ArrowIPC"
    codec_id = header.ARROW_IPC
    stores_frames = True
    stores_arrow = True

    def __init__(self, store: Store | str | None = None, *, partd: Store | None = None):
        super().__init__(encode, decode, join, store, partd=partd)

    def __getstate__(self) -> dict[str, Any]:
        return {"store": self.store}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["store"])

    def _join_records(self, key: Key, records: list[Record], as_arrow: bool = False, **kwargs: Any) -> Any:
        tables = [self._decode_record(key, r) for r in records]
        if as_arrow:
            return concat_tables(tables)
        return tables_to_frame(tables)

    def _encode_value(self, key: Key, value: Any) -> memoryview:
        try:
            return encode(value, self.codec_id)
        except TypeError as e:
            raise ArgumentTypeError(f"key {key!r:.80}: {e}") from None

    def _decode_record(self, key: Key, record: Record) -> pa.Table:
        body = header.payload(record, self.codec_id, key, VERSION)  # CodecError
        try:
            return pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        except (pa.ArrowException, OSError, ValueError) as e:
            raise CorruptionError(
                f"key {key!r:.80}: a {self._codec_name} record could not be read ({e})"
            ) from e

    def get_pieces(self, keys: Sequence[Key], lock: bool = True) -> list[list[Any]]:
        """The tables appended to each key, one per append, zero-copy."""
        return super().get_pieces(keys, lock=lock)
