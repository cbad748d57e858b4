"""partd.dict"""

from shuffle_kit.stores.dict import Dict

__all__ = ["Dict"]
