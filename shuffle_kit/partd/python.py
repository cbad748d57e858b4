"""partd.python"""

from shuffle_kit.codecs.pickle import concat
from shuffle_kit.codecs.python import Python, decode as loads, encode as dumps

__all__ = ["Python", "concat", "dumps", "loads"]
