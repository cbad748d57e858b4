"""What a codec stack offers (:class:`Codec`), and the one base that wraps a store (:class:`Wrapper`).

Codecs turn a byte store into a store of objects (``Encode`` and what is built on it);
compressors are byte stores over byte stores (``Compressed``). Both wrap an inner store,
so they nest: ``ArrowIPC(LZ4(File(path)))``. A wrapper changes what it must (the values
going in and out) and hands everything else to the store it wraps: its lock, ``delete``,
``drop``, ``flush``, ``close``, what it can do. That delegation lives once, in
:class:`Wrapper`.

A :class:`Codec` offers ``append``, ``get``, ``iter_pieces`` (one piece per append, in
append order), ``delete`` and ``drop``, and declares its capabilities, so that the layers
above ask instead of probing attributes:

* ``stores_frames``: ``append`` takes pandas DataFrames and ``get`` gives them back, exactly;
* ``stores_arrow``: ``append`` takes ``pyarrow.Table``s as well, and ``get(key,
  as_arrow=True)`` gives a table;
* ``sorted_appends``: ``append_sorted(table, counts, index_starts=...)`` appends a table
  sorted by integer key as one piece per key, with nothing paid per piece;
* ``in_memory``: nothing is written to a file or held by another process (the store at
  the bottom of the stack decides).

A codec of one's own subclasses :class:`Codec` (or ``Encode``) and sets the flags that
hold for it; the defaults promise nothing.

>>> from shuffle_kit import ArrowIPC, Dict, File, LZ4, Pickle
>>> ArrowIPC(LZ4(Dict())).stores_frames, ArrowIPC(LZ4(Dict())).in_memory, Pickle(Dict()).stores_frames
(True, True, False)
>>> with ArrowIPC(File()) as codec:
...     codec.in_memory
False
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ..errors import ArgumentTypeError
from ..stores.base import Store, Usage
from ..stores.keys import Key


def as_store(store: Store | str | os.PathLike | None, partd: Store | None = None) -> Store:
    """The store a wrapper wraps, from what its caller gave.

    partd's conventions: no store or a path means a ``File`` store there, and partd's
    keyword for the inner store is ``partd``.

    >>> from shuffle_kit import Dict
    >>> d = Dict()
    >>> as_store(d) is d, as_store(None, partd=d) is d
    (True, True)
    >>> as_store(42)
    Traceback (most recent call last):
    shuffle_kit.errors.ArgumentTypeError: expected a shuffle_kit store, got int
    """
    if store is None:
        store = partd
    if store is None or isinstance(store, (str, os.PathLike)):
        from ..stores.file import File

        return File(store)
    if not isinstance(store, Store):
        raise ArgumentTypeError(f"expected a shuffle_kit store, got {type(store).__name__}")
    return store


class Wrapper:
    """Hand to the wrapped store (``self.store``) whatever a wrapper does not change.

    >>> from shuffle_kit import Dict, LZ4
    >>> inner = Dict()
    >>> s = LZ4(inner)
    >>> s.lock is inner.lock, s.partd is inner, s.in_memory
    (True, True, True)
    """

    store: Store

    def __init__(self, store: Store | str | os.PathLike | None = None, *, partd: Store | None = None):
        self.store = as_store(store, partd)

    # partd spells the inner store ``partd``
    @property
    def partd(self) -> Store:
        return self.store

    @property
    def lock(self) -> Any:
        return self.store.lock

    @property
    def in_memory(self) -> bool:
        return self.store.in_memory

    def usage(self) -> Usage:
        return self.store.usage()

    def flush(self) -> None:
        self.store.flush()

    def delete(self, keys: Any, lock: bool = True, **kwargs: Any) -> None:
        self.store.delete(keys, lock=lock)

    def drop(self) -> None:
        self.store.drop()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        # the inner store's own exit: a temporary File removes its directory there
        self.store.__exit__(*exc)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"


class Codec(ABC):
    """What a codec stack offers; see the module docstring for the capabilities."""

    stores_frames: ClassVar[bool] = False
    stores_arrow: ClassVar[bool] = False
    sorted_appends: ClassVar[bool] = False

    @property
    @abstractmethod
    def in_memory(self) -> bool: ...

    @abstractmethod
    def append(
        self, data: Mapping[Key, Any], lock: bool = True, *, batch_id: bytes | None = None, **kwargs: Any
    ) -> None:
        """Append one value per key, all or nothing (``batch_id``: as for a store)."""

    @abstractmethod
    def get(self, keys: Any, lock: bool = True, **kwargs: Any) -> Any:
        """The joined values of a key (its empty value if never written); lists give lists."""

    @abstractmethod
    def iter_pieces(self, key: Key, max_bytes: int = 64 * 2**20, lock: bool = True) -> Iterator[Any]:
        """The values appended to ``key``, one per append, in append order."""

    @abstractmethod
    def delete(self, keys: Any, lock: bool = True, **kwargs: Any) -> None:
        """Remove keys entirely."""

    @abstractmethod
    def drop(self) -> None:
        """Remove every key; the codec stays usable."""

    def append_sorted(self, table: Any, counts: Any, *, index_starts: Any = None) -> None:
        """Append the rows of ``table``, sorted by integer key, to keys ``0..len(counts)-1``
        (only where ``sorted_appends`` is declared)."""
        raise NotImplementedError(f"{type(self).__name__} does not take sorted tables (sorted_appends is False)")
