"""The on-disk format of a ``File`` store: one log of checksummed batches.

    file    := FILE_HEADER batch*
    FILE_HEADER (16 bytes): magic b"SKLOG\\0\\0\\2", epoch (8 random bytes, new on every drop)
    batch   := BATCH_HEADER table body
    BATCH_HEADER (32 bytes, little-endian):
        magic b"SKB\\2" | kind u8 | flags u8 | block_shift u8 | reserved u8 | n u32
        | table_len u32 | body_len u64 | table_crc u32 | header_crc u32 (of the 28 bytes before)
    table   := [batch_id_len u16, batch_id]      if flags & FLAG_BATCH_ID
               key_len u32 * n, value_len u64 * n, the n encoded keys back to back,
               crc32 u32 of each (1 << block_shift)-byte block of the body
    body    := the n values back to back, in table order

Every append is one batch written at the end of the log under the store's lock, so a
crash leaves the whole batch or a prefix of it. A prefix at the end of the log is a
torn write and is ignored; a complete batch whose checksums fail is corruption.
Checksums cover blocks of the body rather than each value, so many small values cost
a few checksum calls, not one each.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import JobError

FILE_MAGIC = b"SKLOG\x00\x00\x02"
FILE_HEADER = struct.Struct("<8s8s")
BATCH_MAGIC = b"SKB\x02"
BATCH_HEADER = struct.Struct("<4sBBBBIIQII")
_HEADER_BODY = struct.Struct("<4sBBBBIIQI")  # what header_crc covers
BATCH_ID_LEN = struct.Struct("<H")

APPEND, ISET, DELETE = 1, 2, 3
KINDS = (APPEND, ISET, DELETE)
FLAG_BATCH_ID = 1
MAX_BATCH_ID = 1 << 12
BLOCK_SHIFT = 16  # 64 KiB checksum blocks


@dataclass(frozen=True)
class BatchHeader:
    kind: int
    flags: int
    block_shift: int
    n: int
    table_len: int
    body_len: int
    table_crc: int

    @property
    def size(self) -> int:
        return BATCH_HEADER.size + self.table_len + self.body_len


@dataclass
class Batch:
    """A parsed batch table: what the index needs."""

    kind: int
    batch_id: bytes | None
    keys: Sequence[bytes]
    offsets: np.ndarray  # int64, of each value within the body
    lengths: np.ndarray  # int64
    block_crcs: np.ndarray  # uint32
    block_shift: int
    body_len: int


class Damaged(Exception):
    """A batch header or table fails its checks (the caller decides: torn or corrupt).

    Not a public exception: ``File`` catches it where it reads a batch and either ignores
    a torn tail or raises :class:`~shuffle_kit.errors.CorruptionError`, so no user meets it.
    """


def block_crcs(values: Sequence, body_len: int, shift: int = BLOCK_SHIFT) -> np.ndarray:
    """crc32 of each 1 << shift block of the concatenation of ``values``, without
    concatenating them.

    >>> import zlib
    >>> block_crcs([b'ab', b'cde'], 5, shift=2).tolist() == [zlib.crc32(b'abcd'), zlib.crc32(b'e')]
    True
    """
    block = 1 << shift
    crcs = np.empty((body_len + block - 1) >> shift, np.uint32)
    crc32 = zlib.crc32
    i = 0
    running = 0
    filled = 0
    for value in values:
        view = memoryview(value)
        n = len(view)
        pos = 0
        while pos < n:
            take = min(block - filled, n - pos)
            running = crc32(view[pos : pos + take] if take < n else view, running)
            filled += take
            pos += take
            if filled == block:
                crcs[i] = running
                i += 1
                running = filled = 0
    if filled:
        crcs[i] = running
    return crcs


def starts_of(lengths: np.ndarray) -> np.ndarray:
    """Where each value starts when values of these ``lengths`` lie back to back.

    >>> starts_of(np.array([2, 0, 3])).tolist()
    [0, 2, 2]
    """
    starts = np.zeros(len(lengths), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


class BatchPlan:
    """A batch ready to write except for its checksums, which a caller may compute
    while the body is being written (the header and table then go in front of it)."""

    def __init__(self, kind: int, keys: Sequence[bytes], values: Sequence, batch_id: bytes | None = None):
        n = len(keys)
        if batch_id is not None and len(batch_id) > MAX_BATCH_ID:
            raise JobError(f"batch_id is {len(batch_id)} bytes; the limit is {MAX_BATCH_ID}")
        self.kind, self.keys, self.batch_id = kind, keys, batch_id
        self.key_lens = np.fromiter(map(len, keys), np.uint32, n)
        self.value_lens = np.fromiter(map(len, values), np.int64, n)
        self.body_len = int(self.value_lens.sum())
        if n > 4 and self.body_len < n << (BLOCK_SHIFT - 2):
            # many small values: one copy is cheaper than a checksum call per value
            values = [b"".join(values)]
        self.body = list(values)
        n_blocks = (self.body_len + (1 << BLOCK_SHIFT) - 1) >> BLOCK_SHIFT
        id_len = 0 if batch_id is None else BATCH_ID_LEN.size + len(batch_id)
        self.table_len = id_len + 12 * n + int(self.key_lens.sum()) + 4 * n_blocks
        self.prefix_len = BATCH_HEADER.size + self.table_len

    def checksums(self) -> np.ndarray:
        return block_crcs(self.body, self.body_len)

    def prefix(self, crcs: np.ndarray) -> bytes:
        """The header and table, in front of the body."""
        parts = []
        flags = 0
        if self.batch_id is not None:
            flags |= FLAG_BATCH_ID
            parts.append(BATCH_ID_LEN.pack(len(self.batch_id)) + self.batch_id)
        parts += [
            self.key_lens.astype("<u4").tobytes(),
            self.value_lens.astype("<u8").tobytes(),
            *self.keys,
            crcs.astype("<u4").tobytes(),
        ]
        table = b"".join(parts)
        assert len(table) == self.table_len
        head = _HEADER_BODY.pack(
            BATCH_MAGIC, self.kind, flags, BLOCK_SHIFT, 0, len(self.keys), len(table), self.body_len, zlib.crc32(table)
        )
        return head + zlib.crc32(head).to_bytes(4, "little") + table

    def parsed(self, crcs: np.ndarray) -> Batch:
        """What parse_table would return for this batch."""
        return Batch(self.kind, self.batch_id, list(self.keys), starts_of(self.value_lens), self.value_lens, crcs,
                     BLOCK_SHIFT, self.body_len)


def encode_batch(
    kind: int, keys: Sequence[bytes], values: Sequence, batch_id: bytes | None = None
) -> tuple[list, Batch]:
    """The buffers of one batch, in file order, and its parsed table.

    >>> buffers, batch = encode_batch(APPEND, [b'sa', b'sb'], [b'xy', b'z'])
    >>> parse_table(parse_header(buffers[0]), buffers[0][BATCH_HEADER.size:]).keys
    [b'sa', b'sb']
    """
    plan = BatchPlan(kind, keys, values, batch_id)
    crcs = plan.checksums()
    return [plan.prefix(crcs), *plan.body], plan.parsed(crcs)


def parse_header(buf: bytes | memoryview) -> BatchHeader:
    """Parse and check a batch header; raise ``Damaged`` if it is not one."""
    magic, kind, flags, shift, _, n, table_len, body_len, table_crc, header_crc = BATCH_HEADER.unpack_from(buf)
    if magic != BATCH_MAGIC or zlib.crc32(buf[: _HEADER_BODY.size]) != header_crc:
        raise Damaged("batch header fails its checksum")
    if kind not in KINDS or not 9 <= shift <= 30:
        raise Damaged("batch header has an unknown kind or block size")
    return BatchHeader(kind, flags, shift, n, table_len, body_len, table_crc)


def parse_table(header: BatchHeader, table: bytes | memoryview) -> Batch:
    """Check and parse a batch table; raise ``Damaged`` if it is not one."""
    if zlib.crc32(table) != header.table_crc:
        raise Damaged("batch table fails its checksum")
    table = memoryview(table)
    pos = 0
    batch_id = None
    if header.flags & FLAG_BATCH_ID:
        (m,) = BATCH_ID_LEN.unpack_from(table, 0)
        batch_id = bytes(table[2 : 2 + m])
        pos = 2 + m
    n = header.n
    n_blocks = (header.body_len + (1 << header.block_shift) - 1) >> header.block_shift
    try:
        key_lens = np.frombuffer(table, "<u4", n, pos).astype(np.int64)
        value_lens = np.frombuffer(table, "<u8", n, pos + 4 * n).astype(np.int64)
    except ValueError:
        raise Damaged("batch table is too short") from None
    pos += 12 * n
    key_end = pos + int(key_lens.sum())
    if key_end + 4 * n_blocks != len(table) or int(value_lens.sum()) != header.body_len:
        raise Damaged("batch table lengths disagree")
    blob = bytes(table[pos:key_end])
    ends = np.cumsum(key_lens).tolist()
    keys = [blob[a:b] for a, b in zip([0, *ends[:-1]], ends)]
    crcs = np.frombuffer(table, "<u4", n_blocks, key_end).astype(np.uint32)
    offsets = starts_of(value_lens)
    return Batch(header.kind, batch_id, keys, offsets, value_lens, crcs, header.block_shift, header.body_len)


def new_file_header() -> bytes:
    return FILE_HEADER.pack(FILE_MAGIC, os.urandom(8))
