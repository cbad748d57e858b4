"""shuffle_kit: shuffle DataFrames by key, in memory or out of core.

Layers, each usable on its own: ``stores`` (appendable key -> bytes), ``codecs``
(objects, arrays and frames on top of any store), ``shuffle`` (partition frames by key).

The names below are imported on first use, so ``import shuffle_kit`` (and the command
line, which needs neither pandas nor ZeroMQ to partition files) starts quickly.
"""

import importlib.util
import logging
import sys
import types
from typing import Any

try:  # file locks (fcntl) make the stores safe across processes
    import fcntl  # noqa: F401
except ImportError:  # pragma: no cover  (Windows)
    raise ImportError(
        f"shuffle_kit runs on Linux and macOS: its stores need POSIX file locks (fcntl), which {sys.platform} lacks"
    ) from None

from ._lazy import attach
from .errors import CodecError, CorruptionError, JobError, ShuffleKitError, UnhashableKeyError

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
    "shuffle": ".shuffle.api",
    "groupby_shuffle": ".shuffle.api",
    "partition": ".partition.job",
    "Layout": ".partition.layout",
    "ReadOptions": ".shuffle.inputs",
}

__all__ = ["Store", "File", "Dict", "MemoryLog", "Buffer", "Shared", "Server", "CorruptionError", "CodecError", "shuffle", "groupby_shuffle", "partition", "Layout", "ReadOptions", "ShuffleKitError", "JobError", "UnhashableKeyError"]
__all__ += _CODECS

__getattr__, __dir__ = attach(__name__, _HOMES, __all__)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # importing the subpackage shuffle_kit.shuffle binds it here as "shuffle"; the name
        # belongs to the function shuffle_kit.shuffle(df, on), so that binding is skipped
        # (likewise shuffle_kit.partition)
        if name in ("shuffle", "partition") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
