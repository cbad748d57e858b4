"""Codecs: objects, arrays and DataFrames on top of any byte store, and compression.

Codecs (``Encode`` and what is built on it) turn a byte store into a store of objects;
compressors (``LZ4``, ``ZLib``, ...) are byte stores wrapping byte stores. Both nest:
``ArrowIPC(LZ4(File(path)))``.
"""

from .arrow_ipc import ArrowIPC
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
    "Compressed",
    "Encode",
    "Numpy",
    "PandasBlocks",
    "PandasColumns",
    "Pickle",
    "Python",
    "Snappy",
    "TableBuffer",
    "ZLib",
    "Zstd",
]

if any(c.__name__ == "Blosc" for c in COMPRESSORS):  # only with the blosc package
    from .compression import Blosc  # noqa: F401

    __all__.append("Blosc")
