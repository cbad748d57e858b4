"""partd.numpy: the Numpy codec and partd's module-level helpers."""

from shuffle_kit.codecs.numpy import Numpy, deserialize, serialize

__all__ = ["Numpy", "deserialize", "serialize"]
