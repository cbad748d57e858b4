"""partd.pickle"""

from shuffle_kit.codecs.pickle import Pickle, concat

__all__ = ["Pickle", "concat"]
