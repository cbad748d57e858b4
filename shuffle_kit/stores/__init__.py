"""The bytes layer: appendable key -> bytes stores."""

from .base import Store
from .buffer import Buffer
from .dict import Dict
from .file import File

__all__ = ["Store", "Dict", "File", "Buffer"]
