"""shuffle_kit: shuffle DataFrames by key, in memory or out of core.

Layers, each usable on its own: ``stores`` (appendable key -> bytes), ``codecs``
(objects, arrays and frames on top of any store), ``shuffle`` (partition frames by key).

The names below are imported on first use, so ``import shuffle_kit`` (and the command
line, which needs neither pandas nor ZeroMQ to partition files) starts quickly.
"""

import importlib.util
import logging
import sys

try:  # file locks (fcntl) make the stores safe across processes
    import fcntl  # noqa: F401
except ImportError:  # pragma: no cover  (Windows)
    raise ImportError(
        f"shuffle_kit runs on Linux and macOS: its stores need POSIX file locks (fcntl), which {sys.platform} lacks"
    ) from None

from . import errors
from ._lazy import attach
from .errors import *  # noqa: F403  (every public exception: errors.__all__)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

_CODECS = [
    "BZ2", "LZ4", "ArrowIPC", "Compressed", "Encode", "Numpy", "PandasBlocks", "PandasColumns",
    "Pickle", "Python", "Snappy", "TableBuffer", "ZLib", "Zstd",
]
if importlib.util.find_spec("blosc") is not None:  # the Blosc codec exists only with it
    _CODECS.append("Blosc")
_HOMES = {
    **{name: ".stores" for name in ["Store", "File", "Dict", "MemoryLog", "Buffer", "Shared", "Server"]},
    **{name: ".codecs" for name in _CODECS},
    "shuffle": ".shuffling.api",
    "groupby_shuffle": ".shuffling.api",
    "sort_values": ".shuffling.sort",
    "merge": ".shuffling.merge",
    "partition": ".partitioning.job",
    "join": ".partitioning.join_job",
    "Layout": ".partitioning.layout",
    "ReadOptions": ".io.readers",
}

__all__ = [
    "Store", "File", "Dict", "MemoryLog", "Buffer", "Shared", "Server", "shuffle", "groupby_shuffle", "sort_values",
    "merge", "partition", "join", "Layout", "ReadOptions", *errors.__all__,
]
__all__ += _CODECS

__getattr__, __dir__ = attach(__name__, _HOMES, __all__)

