"""partd.encode"""

from shuffle_kit.codecs.encode import Encode

__all__ = ["Encode"]
