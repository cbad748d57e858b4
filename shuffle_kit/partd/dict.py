"""partd.dict"""

from ..stores.dict import Dict

__all__ = ["Dict"]
