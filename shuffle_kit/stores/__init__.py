"""The bytes layer: appendable key -> bytes stores."""

from .base import Store
from .buffer import Buffer
from .dict import Dict
from .file import File
from .memory_log import MemoryLog
from .server import Server
from .shared import Shared

__all__ = ["Store", "Dict", "MemoryLog", "File", "Buffer", "Shared", "Server"]
