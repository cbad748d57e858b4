"""The shuffle layer: partition frames by key through any store.

``hashing`` (partition ids), ``split`` (pieces per partition), ``inputs`` (chunked
readers), ``result`` (the lazy result), ``api`` (``shuffle``, ``groupby_shuffle``).
"""

from .api import GroupedShuffle, groupby_shuffle, shuffle
from .hashing import UnhashableKeyError, hash_array, partition_ids
from .result import ShuffleResult

__all__ = [
    "shuffle", "groupby_shuffle", "ShuffleResult", "GroupedShuffle",
    "hash_array", "partition_ids", "UnhashableKeyError",
]
