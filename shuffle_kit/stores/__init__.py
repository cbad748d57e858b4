"""The bytes layer: appendable key -> bytes stores.

Local stores live here (``File``, ``Dict``, ``MemoryLog``, ``Buffer``); a store served over
ZeroMQ to other processes and hosts lives in :mod:`shuffle_kit.stores.remote` (``Server``,
which serves any store, and ``Shared``, its client).
"""

from .base import ReentrantLock, Store
from .buffer import Buffer
from .dict import Dict
from .file import File
from .memory_log import MemoryLog
from .remote import Server, Shared

__all__ = ["Store", "ReentrantLock", "Dict", "MemoryLog", "File", "Buffer", "Shared", "Server"]
