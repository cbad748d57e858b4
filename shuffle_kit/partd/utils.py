"""partd.utils: the helpers partd programs import."""

from ..stores.base import flatten, nested_get

__all__ = ["flatten", "nested_get"]
