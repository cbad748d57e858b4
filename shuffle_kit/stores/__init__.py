"""The bytes layer: appendable key -> bytes stores."""

from .base import Store
from .buffer import Buffer
from .dict import Dict
from .file import File
from .server import Server
from .shared import Shared

__all__ = ["Store", "Dict", "File", "Buffer", "Shared", "Server"]
