"""partd.python"""

from shuffle_kit.codecs.pickle import concat
from shuffle_kit.codecs.python import Python
from shuffle_kit.codecs.python import decode as loads
from shuffle_kit.codecs.python import encode as dumps

__all__ = ["Python", "concat", "dumps", "loads"]
