"""Codecs: objects, arrays and DataFrames on top of any byte store, and compression.

Codecs (``Encode`` and what is built on it) turn a byte store into a store of objects;
compressors (``LZ4``, ``ZLib``, ...) are byte stores wrapping byte stores. Both nest:
``ArrowIPC(LZ4(File(path)))``. Every codec is a :class:`~.base.Codec` and declares what
it stores (see :mod:`shuffle_kit.codecs.base`); the pandas <-> Arrow conversion they use
is :mod:`shuffle_kit.frames`.
"""

from .arrow_ipc import ArrowIPC
from .base import Codec, Wrapper
from .compression import BZ2, COMPRESSORS, LZ4, Compressed, Snappy, ZLib, Zstd
from .encode import Encode
from .numpy import Numpy
from .pandas_blocks import PandasBlocks
from .pandas_columns import PandasColumns
from .pickle import Pickle
from .python import Python
from .table_buffer import TableBuffer

__all__ = [
    "BZ2",
    "LZ4",
    "ArrowIPC",
    "Codec",
    "Compressed",
    "Encode",
    "Numpy",
    "PandasBlocks",
    "PandasColumns",
    "Pickle",
    "Python",
    "Snappy",
    "TableBuffer",
    "Wrapper",
    "ZLib",
    "Zstd",
]

if any(c.__name__ == "Blosc" for c in COMPRESSORS):  # only with the blosc package
    from .compression import Blosc  # noqa: F401

    __all__.append("Blosc")
