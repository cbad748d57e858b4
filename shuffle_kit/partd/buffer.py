"""partd.buffer"""

from shuffle_kit.stores.buffer import Buffer

__all__ = ["Buffer"]
