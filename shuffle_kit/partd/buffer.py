"""partd.buffer"""

from ..stores.buffer import Buffer

__all__ = ["Buffer"]
