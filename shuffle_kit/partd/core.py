"""partd.core: the interface every store shares."""

from shuffle_kit.stores.base import Store as Interface

__all__ = ["Interface"]
