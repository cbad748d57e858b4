"""The byte-store interface every store implements, with partd 1.4's semantics.

A store maps keys to the ordered list of byte strings appended to them (records).
``get`` joins a key's records; codecs read the records themselves through
``get_records`` so that nothing is framed twice.

Writing a store
---------------
Subclass :class:`Store`, call ``super().__init__()`` first in ``__init__`` (it creates
``self.lock``), and implement five hooks. The public methods (``append``, ``get``,
``iset``, ``delete``, ``drop``, ...) check and encode their arguments, take the lock and
call the hooks; other layers (``Buffer``, the server, the compressors) call the hooks of
the stores they hold directly, holding the lock themselves. Every hook:

- takes *encoded* keys (``bytes`` from :func:`~shuffle_kit.stores.keys.encode_keys`:
  distinct keys have distinct encodings, so ``1``, ``'1'`` and ``('1',)`` never meet);
- runs with ``self.lock`` held by the calling thread;
- is all or nothing: if it raises, no part of its change may be visible afterwards.

========================================  ===============================================
hook                                      must
========================================  ===============================================
``_append(kbs, values, batch_id)``        add each value as one more record of its key, in
                                          order (a key may appear more than once); values
                                          are flat ``bytes`` or byte ``memoryview`` objects:
                                          keep read-only ones if you like, copy writable
                                          ones (the caller may reuse them). With a
                                          ``batch_id``, do nothing if a batch with that id
                                          was applied since the last ``_drop`` (a retried
                                          writer); a store that several handles or
                                          processes share keeps the ids where all see them.
``_records(kbs)``                         a list per key of its records in append order
                                          (``[]`` for a key never written); they may be
                                          views, but must stay valid after the lock is
                                          released and later writes.
``_iset(kb, value)``                      set once: if the key was ``_iset`` since it was
                                          last deleted or dropped, do nothing; otherwise
                                          its records become ``[value]``.
``_delete(kbs)``                          remove the keys' records and forget their
                                          ``_iset`` (unknown keys are no error).
``_drop()``                               remove every key, every ``_iset`` and batch id.
========================================  ===============================================

Optional hooks have working defaults: ``_joined`` (join without copying twice),
``_append_bodies`` (values back to back in buffers), ``_compact`` (free memory held by
views). A store declares what it can do as attributes (``in_memory``, ``keeps_bodies``),
so that the layers above ask instead of probing: a store's users never look at its
private attributes.

A store must pickle (dask's ``store=`` sends it to worker processes): the copy either
refers to the same data (``File``: its path; ``Shared``: its server's address) or holds a
copy of it (``Dict``). The base class pickles the instance's attributes without the lock
and gives the copy a new one; a store holding an open handle (a database connection, a
socket) defines ``__getstate__``/``__setstate__`` to reopen it. :class:`shuffle_kit.
testing.StoreTests` checks all of this against a dict-of-bytes model.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from ..errors import ArgumentTypeError
from .keys import Key, encode_key, encode_keys
from .logformat import starts_of

Record = bytes | memoryview


class SealedBytes(np.ndarray):
    """Read-only bytes in memory made for them alone, which nothing writes to or frees
    while anything views them: a store may keep them and a server connection send them
    without a copy, as it does a read-only NumPy array that owns its memory. Made only by
    :meth:`written`, in Arrow's memory pool, which reuses freed memory (a fresh array's
    pages are mapped anew each time where the heap is trimmed at every free, as in dask's
    workers); an array derived from one (a copy) is writable, and no longer trusted.

    >>> sealed = SealedBytes.written(3, lambda memory: memory.to_pybytes())
    >>> len(sealed), sealed.readonly, type(sealed.obj).__name__
    (3, True, 'SealedBytes')
    """

    @classmethod
    def written(cls, size: int, write: Callable[[pa.Buffer], object]) -> memoryview:
        """``size`` bytes of Arrow's memory pool, written by ``write`` (given them as a
        writable Arrow buffer, which it must not keep), then sealed."""
        memory = pa.allocate_buffer(size)
        write(memory)
        frozen = pa.foreign_buffer(memory.address, memory.size, base=memory)
        return np.frombuffer(frozen, np.uint8).view(cls).data


def immutable(value: Any) -> bool:
    """Whether nobody can change ``value`` through it, so a store may keep it without a
    copy: bytes, read-only buffers (Arrow's, a :class:`SealedBytes`' memory), read-only
    arrays.

    >>> immutable(b"x"), immutable(bytearray(b"x")), immutable(memoryview(b"x"))
    (True, False, True)
    """
    t = type(value)
    # (not any array subclass: a read-only np.memmap's file can still change)
    return t is bytes or (t is memoryview and value.readonly) or (
        (t is np.ndarray or t is SealedBytes) and not value.flags.writeable)


class ReentrantLock:
    """A lock that the holding thread may take again, optionally wrapping an outer lock.

    The outer lock (for a ``File`` store, a ``locket`` file lock shared across
    processes) is taken once, when the first level is entered, so that
    ``with store.lock: store.get(key)`` never deadlocks.

    >>> lock = ReentrantLock()
    >>> with lock:
    ...     with lock:
    ...         lock.held()
    True
    """

    def __init__(self, outer: Any = None):
        self._outer = outer
        self._local = threading.RLock()
        self._depth = 0
        self._owner: int | None = None

    def acquire(self) -> bool:
        self._local.acquire()
        if self._depth == 0 and self._outer is not None:
            try:
                self._outer.acquire()
            except BaseException:
                self._local.release()
                raise
        self._depth += 1
        self._owner = threading.get_ident()
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            if self._outer is not None:
                self._outer.release()
        self._local.release()

    def held(self) -> bool:
        """Whether the calling thread holds this lock."""
        return self._owner == threading.get_ident()

    def __enter__(self) -> ReentrantLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class NoLock:
    """A context manager that locks nothing: what ``lock=False`` stands for."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


NO_LOCK = NoLock()


def as_record(key: object, value: object) -> Record:
    """Return ``value`` as a flat byte view, or raise TypeError naming ``key``.

    >>> bytes(as_record('k', bytearray(b'ab')))
    b'ab'
    >>> as_record('k', 'text')
    Traceback (most recent call last):
    shuffle_kit.errors.ArgumentTypeError: value for key 'k' is str, not a bytes-like object
    """
    if type(value) is bytes:
        return value
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            f"value for key {key!r:.80} is {type(value).__name__}, not a bytes-like object"
        ) from None
    if not view.c_contiguous:
        raise ArgumentTypeError(f"value for key {key!r:.80} is not a contiguous buffer")
    return view if view.ndim == 1 and view.format == "B" else view.cast("B")


def _items(data: Mapping[Key, Any]) -> tuple[list[bytes], list[Record]]:
    """Encoded keys and checked values of an append, validated before anything is stored."""
    kbs = encode_keys(data)
    values = list(data.values())
    if not set(map(type, values)) <= {bytes}:  # all bytes is the common case; skip the checks
        values = [as_record(k, v) for k, v in zip(data, values)]
    return kbs, values


def flatten(keys: Iterable) -> Iterator:
    """Yield the keys of arbitrarily nested lists (tuples are keys, not nesting).

    >>> list(flatten([1, [2, ('a', 3)], [[4]]]))
    [1, 2, ('a', 3), 4]
    """
    for k in keys:
        if isinstance(k, list):
            yield from flatten(k)
        else:
            yield k


def nested_get(keys: Any, lookup: Mapping) -> Any:
    """Rebuild the nesting of ``keys`` with values from ``lookup``.

    >>> nested_get([1, [2, 1]], {1: 'a', 2: 'b'})
    ['a', ['b', 'a']]
    """
    if isinstance(keys, list):
        return [nested_get(k, lookup) for k in keys]
    return lookup[keys]


def get_nested(keys: Any, fetch: Any) -> Any:
    """partd's key shapes: one key -> one value, a list -> a list, nesting kept.

    ``fetch(flat_keys)`` returns one value per key.
    """
    if not isinstance(keys, list):
        return fetch([keys])[0]
    if not any(isinstance(k, list) for k in keys):
        return fetch(keys)
    flat = list(flatten(keys))
    return nested_get(keys, dict(zip(flat, fetch(flat))))


def as_key_list(keys: Any) -> list:
    """The keys of a ``delete``-style argument: one key, or a (nested) list of keys.

    >>> as_key_list('k'), as_key_list([1, [2, ('a', 3)]])
    (['k'], [1, 2, ('a', 3)])
    """
    return list(flatten(keys)) if isinstance(keys, list) else [keys]


class Usage(NamedTuple):
    """Bytes a store holds in this process's memory and on disk; None where it cannot say."""

    memory: int | None
    disk: int | None


class Store(ABC):
    """Appendable key -> bytes store.

    >>> from shuffle_kit import Dict
    >>> s = Dict()
    >>> s.append({'x': b'ab', ('y', 1): b'c'})
    >>> s.append({'x': b'cd'})
    >>> s.get('x'), s.get([('y', 1), 'never'])
    (b'abcd', [b'c', b''])
    """

    lock: ReentrantLock

    def __init__(self, outer_lock: Any = None) -> None:
        """Create ``self.lock``; ``outer_lock`` (a lock other processes share, taken once
        by the outermost level) makes it guard the data across processes too."""
        self.lock = ReentrantLock(outer_lock)

    # -- declared capabilities (a subclass sets what holds for it) ---------------------------
    @property
    def in_memory(self) -> bool:
        """Every record stays in this process's memory: nothing is written to a file or
        held by another process (gone with the process)."""
        return False

    @property
    def keeps_bodies(self) -> bool:
        """``append_bodies`` keeps each buffer whole, with no object per value (a server
        then hands the store each received message as it is); otherwise each value is
        appended as its own record."""
        return False

    # -- to implement: encoded keys, lock held, all or nothing (see the module docstring) --
    @abstractmethod
    def _append(self, kbs: Sequence[bytes], values: Sequence[Record], batch_id: bytes | None) -> None:
        """Add each value as one more record of its key, in order; with a ``batch_id``
        already applied since the last ``_drop``, do nothing."""

    @abstractmethod
    def _records(self, kbs: Sequence[bytes]) -> list[list[Record]]:
        """Each key's records in append order (``[]`` for a key never written), valid
        after the lock is released."""

    @abstractmethod
    def _iset(self, kb: bytes, value: Record) -> None:
        """Make ``[value]`` the key's records, unless it was ``_iset`` since it was last
        deleted or dropped."""

    @abstractmethod
    def _delete(self, kbs: Sequence[bytes]) -> None:
        """Remove the keys' records and forget that they were ``_iset``."""

    @abstractmethod
    def _drop(self) -> None:
        """Remove every key, and forget every ``_iset`` and batch id."""

    def _compact(self) -> None:  # noqa: B027 (a hook with nothing to do by default, not abstract)
        """Free memory that records no longer stored still hold (see ``Dict``)."""

    def _append_bodies(self, parts: Sequence[tuple[Sequence[bytes], Any, Any]], batch_id: bytes | None) -> None:
        """Append values lying back to back in buffers, ``(encoded keys, lengths, buffer)``
        per buffer, as one batch: here each value as its own record (stores that declare
        ``keeps_bodies`` keep the buffers instead)."""
        kbs = [kb for keys, _, _ in parts for kb in keys]
        values = [
            body[a : a + n] for _, lengths, body in parts for a, n in zip(starts_of(lengths).tolist(), lengths.tolist())
        ]
        self._append(kbs, values, batch_id)

    # -- public API ---------------------------------------------------------------------
    def _locked(self, lock: bool) -> Any:
        return self.lock if lock else NO_LOCK

    def append(
        self, data: Mapping[Key, Any], lock: bool = True, *, batch_id: bytes | None = None, **kwargs: Any
    ) -> None:
        """Append each value's bytes to its key, all or nothing.

        ``batch_id``: a store ignores a second batch with the same id (until ``drop``),
        so a retried writer cannot duplicate its data.
        """
        kbs, values = _items(data)
        if batch_id is not None and not isinstance(batch_id, bytes):
            raise ArgumentTypeError(f"batch_id must be bytes, not {type(batch_id).__name__}")
        if not kbs:
            return
        with self._locked(lock):
            self._append(kbs, values, batch_id)

    def append_bodies(
        self, parts: Sequence[tuple[Sequence[bytes], Any, Any]], batch_id: bytes | None = None, lock: bool = True
    ) -> None:
        """Append values that lie back to back in buffers: ``(encoded keys, lengths,
        buffer)`` for each buffer, all as one batch. Read-only buffers may be kept as they
        are (the caller must not change them afterwards).

        >>> import numpy as np
        >>> from shuffle_kit import Dict
        >>> from shuffle_kit.stores.keys import encode_key
        >>> d = Dict()
        >>> d.append_bodies([([encode_key('a'), encode_key('b')], np.array([2, 1]), b'xyz')])
        >>> d.get(['a', 'b'])
        [b'xy', b'z']
        """
        with self._locked(lock):
            self._append_bodies(parts, batch_id)

    def get_records(self, keys: Sequence[Key], lock: bool = True) -> list[list[Record]]:
        """The records appended to each of ``keys``, in append order."""
        kbs = encode_keys(keys)
        with self._locked(lock):
            return self._records(kbs)

    def iter_records(self, key: Key, max_bytes: int = 64 * 2**20, lock: bool = True) -> Iterator[list[Record]]:
        """The records of ``key``, in append order, in lists of about ``max_bytes`` (at least
        one record each): a key larger than memory can be read piece by piece.

        Stores that keep records in memory hand them over at once; ``File`` reads each list
        only when it is reached, from the records the key had at the first one.

        >>> from shuffle_kit import Dict
        >>> d = Dict()
        >>> for i in range(3): d.append({'k': b'x' * 4})
        >>> [len(rs) for rs in d.iter_records('k', max_bytes=8)]
        [2, 1]
        """
        records = self.get_records([key], lock=lock)[0]
        for start, stop in size_groups([len(r) for r in records], max_bytes):
            yield records[start:stop]

    def _joined(self, kbs: Sequence[bytes]) -> list[bytes]:
        """Each key's records joined; stores that can join without copying twice override."""
        return [b"".join(r) for r in self._records(kbs)]

    def get(self, keys: Any, lock: bool = True, **kwargs: Any) -> Any:
        """All bytes appended to a key (``b''`` if none); lists of keys give lists."""

        def fetch(flat: list) -> list[bytes]:
            kbs = encode_keys(flat)
            with self._locked(lock):
                return self._joined(kbs)

        return get_nested(keys, fetch)

    def iset(self, key: Key, value: Any, lock: bool = True, **kwargs: Any) -> None:
        """Set ``key`` once; later ``iset`` calls for it do nothing until it is deleted."""
        kb = encode_key(key)
        record = as_record(key, value)
        with self._locked(lock):
            self._iset(kb, record)

    def delete(self, keys: Any, lock: bool = True, **kwargs: Any) -> None:
        """Remove keys entirely (a later ``iset`` sets them again)."""
        kbs = encode_keys(as_key_list(keys))
        with self._locked(lock):
            self._delete(kbs)

    def pop(self, keys: Any, **kwargs: Any) -> Any:
        """``get`` then ``delete``, atomically."""
        with self.lock:
            result = self.get(keys, lock=False)
            self.delete(keys, lock=False)
        return result

    def iget(self, key: Key) -> bytes:
        return self.get(key, lock=False)

    def drop(self) -> None:
        """Remove every key; the store stays usable."""
        with self.lock:
            self._drop()

    def flush(self) -> None:  # noqa: B027 (most stores hold nothing back: nothing to do)
        """Move what this store holds back in memory to where it keeps its data (a
        ``Buffer``'s fast store to its slow one); most stores hold nothing back."""

    def usage(self) -> Usage:
        """Bytes held in memory and on disk, where this store knows them (statistics).

        >>> from shuffle_kit import Dict
        >>> d = Dict(); d.append({'a': b'xyz'}); d.usage()
        Usage(memory=3, disk=0)
        """
        return Usage(None, None)

    def close(self) -> None:  # noqa: B027 (most handles hold nothing to release)
        """Release resources held by this handle (data stays)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()
        self.close()

    # -- pickling: the attributes without the lock; the copy gets a lock of its own --------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        Store.__init__(self)


def size_groups(lengths: Sequence[int], max_bytes: int) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges of consecutive items of at most ``max_bytes`` each (an item
    larger than that is a range of its own).

    >>> size_groups([3, 0, 3, 9, 1], 4)
    [(0, 2), (2, 3), (3, 4), (4, 5)]
    """
    groups, start, size = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and size + n > max_bytes:
            groups.append((start, i))
            start, size = i, 0
        size += n
    if start < len(lengths):
        groups.append((start, len(lengths)))
    return groups
