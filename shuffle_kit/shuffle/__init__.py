"""The shuffle layer: partition frames by key through any store.

``hashing`` (partition ids), ``split`` (pieces per partition), ``inputs`` (chunked
readers), ``result`` (the lazy result), ``api`` (``shuffle``, ``groupby_shuffle``).
The names below are imported on first use: ``hashing`` and ``split`` alone need
neither pandas nor the stores.
"""

import importlib
from typing import Any

_HOMES = {
    "shuffle": ".api", "groupby_shuffle": ".api", "GroupedShuffle": ".api",
    "ShuffleResult": ".result",
    "hash_array": ".hashing", "partition_ids": ".hashing", "UnhashableKeyError": ".hashing",
}

__all__ = [
    "shuffle", "groupby_shuffle", "ShuffleResult", "GroupedShuffle",
    "hash_array", "partition_ids", "UnhashableKeyError",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
