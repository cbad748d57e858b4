"""The first bytes of strings as integers that sort as the strings do, where they differ.

A string's first 8 bytes, read big-endian into an unsigned 64-bit integer (a shorter one
padded with zero bytes), order two strings exactly as Arrow does (byte by byte, UTF-8's
order of code points) whenever the two integers differ; only strings whose integers are
equal need their whole bytes compared. Counting the range boundaries below each key of a
string column that has no integer codes (mostly distinct values) then costs a binary
search of integers for almost every key, instead of a sort of every key with the
boundaries.

>>> import pyarrow as pa
>>> [hex(p) for p in prefixes(pa.array(['ab', 'b', 'abcdefghij']))]
['0x6162000000000000', '0x6200000000000000', '0x6162636465666768']
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

WIDTH = 8  # bytes of a prefix

_LARGE = (pa.large_string(), pa.large_binary())
STRING_TYPES = (pa.string(), pa.binary(), *_LARGE)


def prefixes(values: pa.Array) -> np.ndarray:
    """The first :data:`WIDTH` bytes of each value of a string or binary array as a
    big-endian ``uint64`` (shorter values padded with zeros; a null's is unspecified)."""
    import pyarrow.compute as pc

    if not len(values):
        return np.zeros(0, dtype=np.uint64)
    as_bytes = values.cast(pa.large_binary() if values.type in _LARGE else pa.binary())  # (no copy)
    head = pc.binary_slice(as_bytes, 0, WIDTH)
    zeros = pa.scalar(bytes(WIDTH), as_bytes.type)
    padded = pc.binary_join_element_wise(head, zeros, pa.scalar(b"", as_bytes.type))  # (joined with no separator)
    fixed = pc.binary_slice(padded, 0, WIDTH).cast(pa.binary(WIDTH))
    words = np.frombuffer(fixed.buffers()[1], dtype=">u8", count=len(fixed), offset=fixed.offset * WIDTH)
    return words.astype(np.uint64)
