"""The shuffle layer: partition frames by key through any store.

``api`` (``shuffle``, ``groupby_shuffle``), ``by_range`` (the first pass of a range shuffle),
``sort`` (``sort_values``), ``merge`` (``merge``: two shuffles joined a pair of
partitions at a time) and ``result`` (the lazy results); they stand on
:mod:`shuffle_kit.io` (the readers of every input kind) and :mod:`shuffle_kit.kernels`
(the hash, the split, key checks). The names below are imported on first use.
"""

from .._lazy import attach

_HOMES = {
    "shuffle": ".api", "groupby_shuffle": ".api", "GroupedShuffle": ".api",
    "sort_values": ".sort", "merge": ".merge", "MergeResult": ".merge",
    "ShuffleResult": ".result", "SortedResult": ".result",
    "hash_array": "..kernels.hashing", "partition_ids": "..kernels.hashing", "UnhashableKeyError": "..errors",
}

__all__ = [
    "shuffle", "groupby_shuffle", "sort_values", "merge", "MergeResult", "ShuffleResult", "SortedResult",
    "GroupedShuffle",
    "hash_array", "partition_ids", "UnhashableKeyError",
]

__getattr__, __dir__ = attach(__name__, _HOMES, __all__)
