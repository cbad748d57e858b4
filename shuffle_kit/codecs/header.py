"""The tag at the front of every record a shuffle_kit codec or compressor writes.

A tag is 8 bytes: a 3-byte magic, the id of the codec that wrote the record, the
format version of that codec, and 3 reserved zero bytes. Eight bytes, so that a
payload starting right after the tag keeps the 8-byte alignment of its record
(Arrow reads its buffers in place).

Reading a record with the wrong codec, or a record with no tag at all, raises
:class:`~shuffle_kit.errors.CodecError` naming who wrote it, instead of decoding garbage.

>>> t = tag(ARROW_IPC)
>>> len(t), bytes(payload(t + b'data', ARROW_IPC, 'k'))
(8, b'data')
>>> payload(t + b'data', PICKLE, 'k')
Traceback (most recent call last):
shuffle_kit.errors.CodecError: key 'k': record was written by ArrowIPC, cannot be read by Pickle
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import CodecError

MAGIC = b"\x93SK"
TAG = struct.Struct("<3sBB3x")

# Codec ids: stable forever (they are on disk). Formats change through the version byte.
PICKLE, NUMPY, PANDAS_BLOCKS, PANDAS_COLUMNS, ARROW_IPC, PYTHON = 1, 2, 3, 4, 5, 6
LZ4, ZLIB, BZ2, SNAPPY, ZSTD, BLOSC = 16, 17, 18, 19, 20, 21

NAMES = {
    PICKLE: "Pickle",
    NUMPY: "Numpy",
    PANDAS_BLOCKS: "PandasBlocks",
    PANDAS_COLUMNS: "PandasColumns",
    ARROW_IPC: "ArrowIPC",
    PYTHON: "Python",
    LZ4: "LZ4",
    ZLIB: "ZLib",
    BZ2: "BZ2",
    SNAPPY: "Snappy",
    ZSTD: "Zstd",
    BLOSC: "Blosc",
}
COMPRESSORS = frozenset({LZ4, ZLIB, BZ2, SNAPPY, ZSTD, BLOSC})

_TAGS = {(c, v): TAG.pack(MAGIC, c, v) for c in NAMES for v in (1,)}


def tag(codec: int, version: int = 1) -> bytes:
    """The 8-byte tag for records written by ``codec`` in format ``version``."""
    return _TAGS.get((codec, version)) or TAG.pack(MAGIC, codec, version)


def writer(record: Any) -> str:
    """Describe who wrote ``record``, from its tag (for error messages).

    >>> writer(tag(LZ4) + b'...'), writer(b'plain bytes')
    ('LZ4', 'no shuffle_kit codec (untagged bytes)')
    """
    head = bytes(record[: TAG.size])
    if len(head) == TAG.size and head[:3] == MAGIC:
        codec = head[3]
        return NAMES.get(codec, f"an unknown codec (id {codec})")
    return "no shuffle_kit codec (untagged bytes)"


def payload(record: Any, codec: int, key: Any, max_version: int = 1) -> memoryview:
    """Check that ``record`` was written by ``codec``; return what follows the tag.

    Raise CodecError naming ``key`` and the writer if it was not.
    """
    view = memoryview(record)
    head = bytes(view[: TAG.size])
    if len(head) == TAG.size and head[:3] == MAGIC and head[3] == codec:
        if head[4] > max_version or head[4] == 0:
            raise CodecError(
                f"key {key!r:.80}: record was written by {NAMES[codec]} format version "
                f"{head[4]}; this shuffle_kit reads up to version {max_version} (upgrade it)"
            )
        return view[TAG.size :]
    who = writer(view)
    hint = ""
    if head[:3] == MAGIC and head[3] in COMPRESSORS:
        hint = f" (wrap the store in {who}(...))"
    elif codec in COMPRESSORS and head[:3] == MAGIC:
        hint = " (the store is not compressed: drop the compression wrapper)"
    raise CodecError(
        f"key {key!r:.80}: record was written by {who}, cannot be read by {NAMES[codec]}{hint}"
    )
