"""The shuffle layer: partition frames by key through any store.

``hashing`` (partition ids), ``split`` (pieces per partition), ``inputs`` (chunked
readers), ``result`` (the lazy result), ``api`` (``shuffle``, ``groupby_shuffle``).
The names below are imported on first use: ``hashing`` and ``split`` alone need
neither pandas nor the stores.
"""

from .._lazy import attach

_HOMES = {
    "shuffle": ".api", "groupby_shuffle": ".api", "GroupedShuffle": ".api",
    "ShuffleResult": ".result",
    "hash_array": ".hashing", "partition_ids": ".hashing", "UnhashableKeyError": ".hashing",
}

__all__ = [
    "shuffle", "groupby_shuffle", "ShuffleResult", "GroupedShuffle",
    "hash_array", "partition_ids", "UnhashableKeyError",
]

__getattr__, __dir__ = attach(__name__, _HOMES, __all__)
