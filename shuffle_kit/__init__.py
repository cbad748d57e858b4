"""shuffle_kit: shuffle DataFrames by key, in memory or out of core.

Layers, each usable on its own: ``stores`` (appendable key -> bytes), ``codecs``
(objects, arrays and frames on top of any store), ``shuffle`` (partition frames by key).
"""

import logging

from .errors import CodecError, CorruptionError
from .stores import Buffer, Dict, File, MemoryLog, Store
from .codecs import *  # noqa: F401,F403  (Encode, Pickle, Numpy, Pandas*, ArrowIPC, compressors)
from .codecs import __all__ as _codecs_all
from .stores import Server, Shared
from .shuffle import groupby_shuffle, shuffle

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = ["Store", "File", "Dict", "MemoryLog", "Buffer", "Shared", "Server", "CorruptionError", "CodecError", "shuffle", "groupby_shuffle"]
__all__ += _codecs_all
