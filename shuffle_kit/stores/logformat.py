"""The on-disk format of a ``File`` store: one log of checksummed batches.

    file    := FILE_HEADER batch*
    FILE_HEADER (16 bytes): magic b"SKLOG\\0\\0\\1", epoch (8 random bytes, new on every drop)
    batch   := BATCH_HEADER table payload*
    BATCH_HEADER (32 bytes, little-endian):
        magic b"SKB\\1" | kind u8 | flags u8 | reserved u16 | n u32 | table_len u32
        | body_len u64 | table_crc u32 | header_crc u32 (crc32 of the 28 bytes before it)
    table   := [batch_id_len u16, batch_id] if flags & FLAG_BATCH_ID
               n * ENTRY(key_len u32, value_len u64, value_crc u32)
               the n encoded keys, back to back
    payload := the n values, back to back, in entry order

Every append is one batch written with one positioned write, so a crash leaves either
the whole batch or a prefix of it. A prefix at the end of the file is a torn write and
is ignored; a complete batch whose checksums fail is corruption.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

FILE_MAGIC = b"SKLOG\x00\x00\x01"
FILE_HEADER = struct.Struct("<8s8s")
BATCH_MAGIC = b"SKB\x01"
BATCH_HEADER = struct.Struct("<4sBBHIIQII")
_HEADER_BODY = struct.Struct("<4sBBHIIQI")  # the part that header_crc covers
ENTRY = struct.Struct("<IQI")
BATCH_ID_LEN = struct.Struct("<H")

APPEND, ISET, DELETE = 1, 2, 3
KINDS = (APPEND, ISET, DELETE)
FLAG_BATCH_ID = 1
MAX_BATCH_ID = 1 << 12


@dataclass(frozen=True)
class BatchHeader:
    kind: int
    flags: int
    n: int
    table_len: int
    body_len: int
    table_crc: int

    @property
    def size(self) -> int:
        return BATCH_HEADER.size + self.table_len + self.body_len


class Damaged(Exception):
    """A batch header or table fails its checks (the caller decides: torn or corrupt)."""


def encode_batch(
    kind: int, items: Sequence[tuple[bytes, object]], batch_id: bytes | None = None
) -> tuple[list, list[tuple[bytes, int, int, int]]]:
    """The buffers of one batch, ready for one vectored write, and its table entries.

    Entries are (key, value offset within the batch's payloads, value length, value crc),
    as :func:`parse_table` returns them.
    """
    crc32 = zlib.crc32
    pack = ENTRY.pack
    parts = []
    flags = 0
    if batch_id is not None:
        if len(batch_id) > MAX_BATCH_ID:
            raise ValueError(f"batch_id is {len(batch_id)} bytes; the limit is {MAX_BATCH_ID}")
        flags |= FLAG_BATCH_ID
        parts.append(BATCH_ID_LEN.pack(len(batch_id)) + batch_id)
    body_len = 0
    entries = []
    for kb, value in items:
        n = len(value)  # type: ignore[arg-type]
        crc = crc32(value)  # type: ignore[arg-type]
        parts.append(pack(len(kb), n, crc))
        entries.append((kb, body_len, n, crc))
        body_len += n
    parts.extend(kb for kb, _ in items)
    table = b"".join(parts)
    head = _HEADER_BODY.pack(BATCH_MAGIC, kind, flags, 0, len(items), len(table), body_len, zlib.crc32(table))
    header = head + zlib.crc32(head).to_bytes(4, "little")
    return [header, table, *(v for _, v in items)], entries


def parse_header(buf: bytes | memoryview) -> BatchHeader:
    """Parse and check a batch header; raise ``Damaged`` if it is not one."""
    magic, kind, flags, _, n, table_len, body_len, table_crc, header_crc = BATCH_HEADER.unpack_from(buf)
    if magic != BATCH_MAGIC or zlib.crc32(buf[: _HEADER_BODY.size]) != header_crc or kind not in KINDS:
        raise Damaged("batch header fails its checksum")
    return BatchHeader(kind, flags, n, table_len, body_len, table_crc)


def parse_table(
    header: BatchHeader, table: bytes | memoryview
) -> tuple[bytes | None, list[tuple[bytes, int, int, int]]]:
    """Return (batch_id, [(key, value offset within body, value length, value crc)])."""
    if zlib.crc32(table) != header.table_crc:
        raise Damaged("batch table fails its checksum")
    pos = 0
    batch_id = None
    if header.flags & FLAG_BATCH_ID:
        (m,) = BATCH_ID_LEN.unpack_from(table, 0)
        batch_id = bytes(table[2 : 2 + m])
        pos = 2 + m
    entries = []
    key_pos = pos + header.n * ENTRY.size
    offset = 0
    for key_len, value_len, crc in ENTRY.iter_unpack(table[pos:key_pos]):
        entries.append((bytes(table[key_pos : key_pos + key_len]), offset, value_len, crc))
        key_pos += key_len
        offset += value_len
    if key_pos != len(table) or offset != header.body_len:
        raise Damaged("batch table lengths disagree")
    return batch_id, entries


def new_file_header() -> bytes:
    return FILE_HEADER.pack(FILE_MAGIC, os.urandom(8))
