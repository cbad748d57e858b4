"""The wire protocol between :class:`Shared` clients and a :class:`Server`: pure functions.

Every message is a list of ZeroMQ frames (a DEALER client talks to a ROUTER server,
which prepends the client's identity). Nothing is pickled. The first frame is a
16-byte header::

    magic b"SK" | version u8 | command or status u8 | flags u8 | 3 pad | request id u64 LE

Requests (after the header; ``KEYS`` is a key table, see :func:`pack_keys`)::

    PING, DROP, FLUSH, STATS, SHUTDOWN  -
    APPEND     [batch id if FLAG_BATCH_ID] KEYS LENGTHS DATA...
    GET, POP   KEYS                      (FLAG_JOINED: one record per key, joined)
    ISET       KEYS(one key) LENGTHS(one) DATA...
    DELETE     KEYS

Keys travel in their canonical encoding (:func:`~shuffle_kit.stores.keys.encode_key`).
Values travel as records: ``LENGTHS`` is a little-endian u64 array of record lengths and
the ``DATA`` frames hold the records back to back. Small records share a frame (a frame
has a fixed cost at each end, more than copying a small value into a shared one); a
record of ``LARGE`` bytes or more gets a frame of its own and is sent without a copy.
No record straddles two frames, so record boundaries survive the trip.

Replies carry the request's id and a status. ``OK`` replies: ``GET``/``POP`` stream one
or more messages ``[header, COUNTS, LENGTHS, DATA...]`` (``FLAG_MORE`` set on all but
the last; ``COUNTS``, u32 records per key, only in the first), ``STATS`` one JSON frame,
the rest nothing. Error replies: ``[header(status=code), type name, message]``, both UTF-8;
the client raises the matching :mod:`shuffle_kit.errors` class (``ERROR_CODES`` and
:func:`error_from_reply` below), a store's own ``KeyError`` as a ``RemoteKeyError`` and so on.

>>> frames = append_request(7, [b'sa', b'i1'], [b'xy', b''], None)
>>> parse_request(frames)[:3]
(2, 0, 7)
>>> parse_append(0, frames[1:])
([b'sa', b'i1'], [b'xy', b''], None)
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate
from typing import Any

import numpy as np
import zmq

from ...errors import (
    BadValue,
    MalformedMessage,
    Refused,
    RemoteCorruptionError,
    RemoteKeyError,
    RemoteOSError,
    RemoteStoreError,
    RemoteTypeError,
    RemoteValueError,
    ServerError,
    UnknownCommand,
    UnsupportedVersion,
)
from ..base import SealedBytes
from ..keys import MAX_KEY_BYTES, decode_key, encode_key

MAGIC = b"SK"
VERSION = 1
HEADER = struct.Struct("<2sBBB3xQ")

# commands
PING, APPEND, GET, ISET, DELETE, DROP, POP, FLUSH, STATS, SHUTDOWN = range(1, 11)
COMMAND_NAMES = {
    PING: "ping", APPEND: "append", GET: "get", ISET: "iset", DELETE: "delete",
    DROP: "drop", POP: "pop", FLUSH: "flush", STATS: "stats", SHUTDOWN: "shutdown",
}
# flags
FLAG_BATCH_ID = 1  # request: an APPEND carries a batch id frame
FLAG_JOINED = 2  # request: a GET or POP wants each key's records joined into one
FLAG_MORE = 1  # reply: more messages follow for this request

# statuses
OK = 0
MALFORMED = 1
UNKNOWN_COMMAND = 2
UNSUPPORTED_VERSION = 3
BAD_VALUE = 4
STORE_ERROR = 5
REFUSED = 6

LARGE = 1 << 16  # records at least this long get their own (zero-copy) frame
GROUP = 1 << 22  # small records are joined into frames of about this size
REPLY_CHUNK = 1 << 23  # a GET reply starts a new message after about this many bytes

_LITTLE = sys.byteorder == "little"


# -- errors ------------------------------------------------------------------------------
# The status each error the server raises itself travels as; anything else a request
# raises is the store's own error and travels as STORE_ERROR, named by its class.
ERROR_CODES: dict[type[ServerError], int] = {
    MalformedMessage: MALFORMED,
    UnknownCommand: UNKNOWN_COMMAND,
    UnsupportedVersion: UNSUPPORTED_VERSION,
    BadValue: BAD_VALUE,
    Refused: REFUSED,
}
_BY_CODE = {code: cls for cls, code in ERROR_CODES.items()}
_STORE_ERRORS = {
    "TypeError": RemoteTypeError,
    "ValueError": RemoteValueError,
    "KeyError": RemoteKeyError,
    "OSError": RemoteOSError,
    "FileNotFoundError": RemoteOSError,
    "PermissionError": RemoteOSError,
    "CorruptionError": RemoteCorruptionError,
}


def error_from_reply(status: int, type_name: str, message: str) -> ServerError:
    """The exception a client raises for an error reply.

    >>> from shuffle_kit.errors import CorruptionError
    >>> e = error_from_reply(STORE_ERROR, 'CorruptionError', 'bad crc')
    >>> isinstance(e, CorruptionError), isinstance(e, ServerError), e.remote_type
    (True, True, 'CorruptionError')
    >>> type(error_from_reply(UNKNOWN_COMMAND, 'UnknownCommand', 'no 99')).__name__
    'UnknownCommand'
    """
    cls: type[ServerError]
    if status == STORE_ERROR:
        cls = _STORE_ERRORS.get(type_name, RemoteStoreError)
    else:
        cls = _BY_CODE.get(status, ServerError)
    return cls(f"server: {message}" if message else "server error", type_name)


# -- headers -----------------------------------------------------------------------------
def header(code: int, request_id: int, flags: int = 0) -> bytes:
    return HEADER.pack(MAGIC, VERSION, code, flags, request_id)


def parse_header(frame: Any) -> tuple[int, int, int]:
    """(command or status, flags, request id); raise a ServerError subclass if unusable.

    >>> parse_header(header(GET, 5))
    (3, 0, 5)
    >>> parse_header(b'junk')
    Traceback (most recent call last):
    shuffle_kit.errors.MalformedMessage: header is 4 bytes, not 16
    """
    if len(frame) != HEADER.size:
        raise MalformedMessage(f"header is {len(frame)} bytes, not {HEADER.size}")
    magic, version, code, flags, rid = HEADER.unpack(frame)
    if magic != MAGIC:
        raise MalformedMessage("not a shuffle_kit message (bad magic)")
    if version != VERSION:
        raise UnsupportedVersion(f"protocol version {version}; this side speaks {VERSION}")
    return code, flags, rid


def request_id_of(frame: Any) -> int:
    """Best-effort request id of a header that may be malformed (0 if none)."""
    if len(frame) == HEADER.size and bytes(frame[:2]) == MAGIC:
        return HEADER.unpack(frame)[4]
    return 0


# -- keys --------------------------------------------------------------------------------
def pack_keys(kbs: Sequence[bytes]) -> bytes:
    """``u32 count | u32 length per key | keys back to back`` (little-endian).

    >>> unpack_keys(pack_keys([b'sa', b'i12']))
    [b'sa', b'i12']
    """
    lengths = array("I", map(len, kbs))
    if not _LITTLE:
        lengths.byteswap()
    return b"".join((struct.pack("<I", len(kbs)), lengths.tobytes(), *kbs))


def unpack_keys(frame: Any) -> list[bytes]:
    """Inverse of :func:`pack_keys`; checks every length against the frame.

    >>> unpack_keys(b'\\xff\\xff\\xff\\xff')
    Traceback (most recent call last):
    shuffle_kit.errors.MalformedMessage: key table claims 4294967295 keys in 4 bytes
    """
    buf = bytes(frame)
    if len(buf) < 4:
        raise MalformedMessage("key table shorter than its count")
    (n,) = struct.unpack_from("<I", buf)
    start = 4 + 4 * n
    if start > len(buf):
        raise MalformedMessage(f"key table claims {n} keys in {len(buf)} bytes")
    lengths = _little_endian("I", buf[4:start])
    ends = list(accumulate(lengths, initial=start))
    if ends[-1] != len(buf):
        raise MalformedMessage("key table lengths do not add up to its size")
    return list(map(buf.__getitem__, map(slice, ends, ends[1:])))


class KeyCheck:
    """Validate encoded keys from the wire: canonical (``encode_key(decode_key(kb)) == kb``)
    and within :data:`MAX_KEY_BYTES`. Keys already seen valid are remembered (keys repeat
    a lot in a shuffle), up to ``capacity`` of them.

    >>> check = KeyCheck()
    >>> check([b'sa', b'i1'])
    >>> check([b'i01'])
    Traceback (most recent call last):
    shuffle_kit.errors.BadValue: key 0 is not a canonical key encoding: b'i01'
    """

    def __init__(self, capacity: int = 1 << 20):
        self.capacity = capacity
        self.valid: set[bytes] = set()

    def __call__(self, kbs: Sequence[bytes]) -> None:
        valid = self.valid
        if valid.issuperset(kbs):
            return
        for i, kb in enumerate(kbs):
            if kb in valid:
                continue
            try:
                ok = len(kb) <= MAX_KEY_BYTES and encode_key(decode_key(kb)) == kb
            except Exception:
                ok = False
            if not ok:
                raise BadValue(f"key {i} is not a canonical key encoding: {kb!r:.60}")
            if len(valid) >= self.capacity:
                valid.clear()
            valid.add(kb)


# -- records -----------------------------------------------------------------------------
def _little_endian(code: str, buf: bytes) -> array:
    """The little-endian integers (array typecode ``code``) in ``buf``."""
    a = array(code)
    a.frombytes(buf)
    if not _LITTLE:
        a.byteswap()
    return a


def zero_copy_safe(record: Any) -> bool:
    """Whether ZeroMQ's I/O thread may send ``record``'s memory as it is, after the call
    that queued it returned: only memory nobody may change or unmap (never a view of an
    mmap, or of a buffer a store or a caller may reuse), i.e. a ``bytes``, a received
    ZeroMQ frame, read-only :class:`~..base.SealedBytes` (as codecs encode into), a
    read-only NumPy array that owns its memory or views such memory (a ``MemoryLog``'s
    values), or a view of one of these."""
    while True:
        kind = type(record)
        if kind is bytes or kind is zmq.Frame:
            return True
        if kind is SealedBytes:
            return not record.flags.writeable
        if kind is memoryview:
            record = record.obj
        elif kind is np.ndarray and not record.flags.writeable:
            if record.base is None:
                return True
            record = record.base
        else:
            return False


def _lengths_frame(sizes: Sequence[int]) -> bytes:
    lengths = array("Q", sizes)
    if not _LITTLE:
        lengths.byteswap()
    return lengths.tobytes()


def _data_frames(items: Iterable[tuple[Sequence[Any], int]], group: int, large: int) -> list[Any]:
    """Data frames for ``(buffers, total length)`` items, in order: an item of ``large``
    bytes or more gets a frame of its own (zero-copy when it is one immutable buffer);
    smaller ones share frames of about ``group`` bytes. No item straddles two frames."""
    frames: list[Any] = []
    pending: list[Any] = []
    size = 0
    for buffers, n in items:
        if n >= large:
            if pending:
                frames.append(b"".join(pending))
                pending, size = [], 0
            one = len(buffers) == 1 and zero_copy_safe(buffers[0])
            frames.append(buffers[0] if one else b"".join(buffers))
        elif n:
            pending += buffers
            size += n
            if size >= group:
                frames.append(b"".join(pending))
                pending, size = [], 0
    if pending:
        frames.append(b"".join(pending))
    return frames


def pack_records(records: Sequence[Any], group: int = GROUP, large: int = LARGE) -> list[Any]:
    """``[LENGTHS, DATA...]`` for ``records`` (bytes-like, flat, in order).

    >>> frames = pack_records([b'ab', b'', b'c'])
    >>> [bytes(r) for r in unpack_records(frames[0], frames[1:])]
    [b'ab', b'', b'c']
    """
    sizes = list(map(len, records))
    total = sum(sizes)
    if total <= group and (not sizes or max(sizes) < large):  # the common case: one frame
        return [_lengths_frame(sizes), b"".join(records)] if total else [_lengths_frame(sizes)]
    return [_lengths_frame(sizes), *_data_frames(zip(((r,) for r in records), sizes), group, large)]


def _frame_ranges(lengths_frame: Any, data: Sequence[Any]) -> tuple[list[int], list[int]]:
    """Where each record starts in the concatenated frames (one more entry: the end), and
    the first record of each frame (one more entry: the record after the last frame's);
    raise MalformedMessage if the table does not match the frames exactly (no record may
    straddle frames)."""
    table = bytes(lengths_frame)
    if len(table) % 8:
        raise MalformedMessage("record length table is not a whole number of u64")
    ends = list(accumulate(_little_endian("Q", table), initial=0))  # ends[i]: where record i starts
    firsts = [0]
    top = 0  # where the current frame ends in the concatenation of all frames
    for frame in data:
        size = memoryview(frame).nbytes
        if not size:
            raise MalformedMessage("empty data frame")
        top += size
        last = bisect_left(ends, top, firsts[-1])  # the frame's last record ends at ends[last]
        if last >= len(ends) or ends[last] != top:
            raise MalformedMessage("record lengths do not match the data frames")
        firsts.append(last)
    if ends[-1] != top:
        raise MalformedMessage("record lengths do not match the data frames")
    return ends, firsts


def unpack_records(lengths_frame: Any, data: Sequence[Any], as_bytes: bool = False) -> list[Any]:
    """Split ``data`` frames into records by the lengths table; raise MalformedMessage if
    the table does not match the frames exactly (no record may straddle frames).

    With ``as_bytes`` records are ``bytes`` (copied); otherwise views into the frames.

    >>> unpack_records(pack_records([b'x'])[0], [b'xy'])
    Traceback (most recent call last):
    shuffle_kit.errors.MalformedMessage: record lengths do not match the data frames
    """
    ends, firsts = _frame_ranges(lengths_frame, data)
    out: list[Any] = []
    for frame, first, last in zip(data, firsts, firsts[1:]):
        buf = frame if as_bytes and type(frame) is bytes else memoryview(frame)
        base = ends[first]
        bounds = ends[first : last + 1] if not base else [b - base for b in ends[first : last + 1]]
        pieces = [buf[a:b] for a, b in zip(bounds, bounds[1:])]
        out += list(map(bytes, pieces)) if as_bytes and type(buf) is not bytes else pieces
    empty = b"" if as_bytes else memoryview(b"")
    out += [empty] * (len(ends) - 1 - len(out))  # trailing empty records
    return out


# -- requests ----------------------------------------------------------------------------
def simple_request(command: int, request_id: int) -> list[bytes]:
    return [header(command, request_id)]


def keys_request(command: int, request_id: int, kbs: Sequence[bytes], flags: int = 0) -> list[bytes]:
    return [header(command, request_id, flags), pack_keys(kbs)]


def append_request(
    request_id: int, kbs: Sequence[bytes] | bytes, values: Sequence[Any], batch_id: bytes | None
) -> list[Any]:
    """The frames of an APPEND; ``kbs`` may be a key table packed already."""
    head = [header(APPEND, request_id, FLAG_BATCH_ID if batch_id is not None else 0)]
    if batch_id is not None:
        head.append(batch_id)
    head.append(kbs if isinstance(kbs, bytes) else pack_keys(kbs))
    return head + pack_records(values)


def iset_request(request_id: int, kb: bytes, value: Any) -> list[Any]:
    return [header(ISET, request_id), pack_keys([kb]), *pack_records([value])]


def parse_request(frames: Sequence[Any]) -> tuple[int, int, int, list[Any]]:
    """(command, flags, request id, remaining frames)."""
    if not frames:
        raise MalformedMessage("empty message")
    command, flags, rid = parse_header(frames[0])
    return command, flags, rid, list(frames[1:])


def parse_keys_only(frames: Sequence[Any]) -> list[bytes]:
    if len(frames) != 1:
        raise MalformedMessage(f"expected 1 frame (a key table), got {len(frames)}")
    return unpack_keys(frames[0])


def _append_frames(flags: int, frames: Sequence[Any]) -> tuple[bytes | None, Any, Any, Sequence[Any]]:
    """(batch id, key table, length table, data frames) of an APPEND request."""
    batch_id = None
    if flags & ~FLAG_BATCH_ID:
        raise MalformedMessage(f"unknown flags {flags:#x} for append")
    if flags & FLAG_BATCH_ID:
        if not frames:
            raise MalformedMessage("append flagged with a batch id has no frames")
        batch_id, frames = bytes(frames[0]), frames[1:]
    if len(frames) < 2:
        raise MalformedMessage(f"append needs a key table and a length table, got {len(frames)} frames")
    return batch_id, frames[0], frames[1], frames[2:]


def _check_count(kbs: Sequence[bytes], n: int) -> None:
    if len(kbs) != n:
        raise MalformedMessage(f"append has {len(kbs)} keys but {n} values")


def parse_append(
    flags: int, frames: Sequence[Any], unpack: Callable[[Any], list[bytes]] | None = None
) -> tuple[list[bytes], list[bytes], bytes | None]:
    """(keys, values as bytes, batch id) of an APPEND request's frames after the header;
    ``unpack`` reads the key table (default :func:`unpack_keys`)."""
    batch_id, key_frame, lengths_frame, data = _append_frames(flags, frames)
    kbs = (unpack or unpack_keys)(key_frame)
    records = unpack_records(lengths_frame, data, as_bytes=True)
    _check_count(kbs, len(records))
    return kbs, records, batch_id


def parse_append_bodies(
    flags: int, frames: Sequence[Any], unpack: Callable[[Any], list[bytes]] | None = None
) -> tuple[list[tuple[list[bytes], np.ndarray, Any]], bytes | None]:
    """An APPEND request as ``(keys, lengths, frame)`` per data frame (the values lie back
    to back in it), and its batch id: no object per value. Frames come as read-only
    uint8 arrays, which the garbage collector does not scan.

    >>> parts, _ = parse_append_bodies(0, append_request(1, [b'sa', b'sb'], [b'xy', b'z'], None)[1:])
    >>> [(kbs, lengths.tolist(), bytes(frame)) for kbs, lengths, frame in parts]
    [([b'sa', b'sb'], [2, 1], b'xyz')]
    """
    batch_id, key_frame, lengths_frame, data = _append_frames(flags, frames)
    kbs = (unpack or unpack_keys)(key_frame)
    ends, firsts = _frame_ranges(lengths_frame, data)
    _check_count(kbs, len(ends) - 1)
    lengths = np.diff(np.array(ends, np.int64))
    parts: list[tuple[list[bytes], np.ndarray, Any]] = []
    for frame, first, last in zip(data, firsts, firsts[1:]):
        body = np.frombuffer(frame, np.uint8)
        body.flags.writeable = False
        # the key table itself when one frame holds every value: stores recognise it
        parts.append((kbs if last - first == len(kbs) else kbs[first:last], lengths[first:last], body))
    if firsts[-1] < len(kbs):  # trailing empty values
        parts.append((kbs[firsts[-1] :], lengths[firsts[-1] :], b""))
    return parts, batch_id


def parse_iset(frames: Sequence[Any]) -> tuple[bytes, bytes]:
    if len(frames) < 2:
        raise MalformedMessage(f"iset needs a key table and a length table, got {len(frames)} frames")
    kbs = unpack_keys(frames[0])
    records = unpack_records(frames[1], frames[2:], as_bytes=True)
    if len(kbs) != 1 or len(records) != 1:
        raise MalformedMessage(f"iset takes one key and one value, got {len(kbs)} and {len(records)}")
    return kbs[0], records[0]


# -- replies -----------------------------------------------------------------------------
def ok_reply(request_id: int, *frames: Any) -> list[Any]:
    return [header(OK, request_id), *frames]


def error_reply(request_id: int, error: BaseException) -> list[bytes]:
    """The frames of an error reply: typed protocol errors keep their code; anything else
    is a store error named by its class."""
    code = next((c for cls, c in ERROR_CODES.items() if isinstance(error, cls)), STORE_ERROR)
    name = type(error).__name__
    message = str(error)[:2000]
    return [header(code, request_id), name.encode(), message.encode("utf-8", "replace")]


def stats_reply(request_id: int, stats: dict) -> list[bytes]:
    return ok_reply(request_id, json.dumps(stats).encode())


def pack_joined(per_key: Sequence[Sequence[Any]], group: int = GROUP, large: int = LARGE) -> list[Any]:
    """Like :func:`pack_records` of each key's records joined, joining only once: a key's
    records are laid out back to back inside the shared frames.

    >>> frames = pack_joined([[b'ab', b'c'], [], [b'd']])
    >>> [bytes(r) for r in unpack_records(frames[0], frames[1:])]
    [b'abc', b'', b'd']
    """
    sizes = [sum(map(len, rs)) for rs in per_key]
    return [_lengths_frame(sizes), *_data_frames(zip(per_key, sizes), group, large)]


def records_reply(
    request_id: int, per_key: Sequence[Sequence[Any]], chunk: int = REPLY_CHUNK, joined: bool = False
) -> Iterator[list[Any]]:
    """The messages answering a GET: records of every key in order (``joined``: one per
    key), about ``chunk`` bytes per message, so a large answer streams as several messages.

    >>> msgs = list(records_reply(3, [[b'ab', b'c'], [], [b'd']], chunk=3))
    >>> len(msgs), [parse_header(m[0])[1] for m in msgs]
    (2, [1, 0])
    """
    counts = array("I", [1]) * len(per_key) if joined else array("I", map(len, per_key))
    if not _LITTLE:
        counts.byteswap()
    counts_frame = counts.tobytes()
    pack = pack_joined if joined else (lambda keys: pack_records([r for rs in keys for r in rs]))
    batch: list[Any] = []
    size = 0
    first = True
    for records in per_key:
        batch.append(records)
        size += sum(map(len, records))
        if size >= chunk:
            yield [header(OK, request_id, FLAG_MORE), counts_frame if first else b"", *pack(batch)]
            first, batch, size = False, [], 0
    yield [header(OK, request_id), counts_frame if first else b"", *pack(batch)]


class RecordsAssembler:
    """Client side of :func:`records_reply`: feed it each message's frames after the header."""

    def __init__(self, n_keys: int, as_bytes: bool = False):
        self.n_keys = n_keys
        self.as_bytes = as_bytes
        self.counts: array | None = None
        self.records: list[Any] = []

    def feed(self, frames: Sequence[Any]) -> None:
        if len(frames) < 2:
            raise MalformedMessage("records reply has too few frames")
        if self.counts is None:
            counts = bytes(frames[0])
            if len(counts) != 4 * self.n_keys:
                raise MalformedMessage(f"reply counts {len(counts) // 4} keys, asked for {self.n_keys}")
            self.counts = _little_endian("I", counts)
        elif len(frames[0]):
            raise MalformedMessage("key counts repeated in a continuation message")
        self.records.extend(unpack_records(frames[1], frames[2:], self.as_bytes))

    def result(self) -> list[list[Any]]:
        if self.counts is None:
            raise MalformedMessage("records reply ended before it started")
        if sum(self.counts) != len(self.records):
            raise MalformedMessage("reply record count does not match its key counts")
        out, pos, records = [], 0, self.records
        for n in self.counts:
            out.append(records[pos : pos + n])
            pos += n
        return out
