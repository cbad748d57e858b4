"""partd.core: the interface every store shares."""

from ..stores.base import Store as Interface

__all__ = ["Interface"]
