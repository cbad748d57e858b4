"""partd.utils: the helpers partd programs import."""

from shuffle_kit.stores.base import flatten, nested_get

__all__ = ["flatten", "nested_get"]
