"""Codecs: objects, arrays and DataFrames on top of any byte store, and compression."""

from .arrow_ipc import ArrowIPC
from .encode import Encode
from .pickle import Pickle

__all__ = ["Encode", "Pickle", "ArrowIPC"]
