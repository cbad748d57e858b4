"""partd.compressed: the compression wrappers (and LZ4, which partd lacks)."""

from shuffle_kit.codecs import __all__ as _codecs
from shuffle_kit.codecs.compression import BZ2, LZ4, Snappy, ZLib, Zstd

__all__ = ["BZ2", "LZ4", "Snappy", "ZLib", "Zstd"]

if "Blosc" in _codecs:  # only with the blosc package, as in partd
    from shuffle_kit.codecs.compression import Blosc  # noqa: F401

    __all__.append("Blosc")
