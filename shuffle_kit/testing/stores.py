"""The store test suite: any store (or stack of byte-level wrappers over one) held to a
plain dict-of-bytes model by a stateful hypothesis test.

Random sequences of ``append`` (with and without ``batch_id``), ``append`` of a bad value
(all or nothing), ``iset``, ``delete``, ``drop``, ``get`` of keys and nested lists,
``get_records``, ``iter_records``, a pickled copy (as dask sends a store to a worker
process) and, where the store can be opened twice, writes through a second handle are
checked after every step against :class:`Model`. A store written by someone else (see
"Writing a store" in :mod:`shuffle_kit.stores.base`) proves it behaves like ours by
subclassing :class:`StoreTests`::

    from shuffle_kit.testing import StoreTests

    class TestMyStore(StoreTests):
        def make_store(self):
            return MyStore(...)

        def reopen(self, store):        # optional: a second handle on the same data
            return MyStore(store.path)

pytest then runs ``test_store_matches_the_model``, as many examples as the active
hypothesis profile asks for (``settings`` on the subclass overrides it). Needs pytest and
hypothesis (the ``testing`` extra); ``import shuffle_kit`` does not import this module.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

KEYS = st.sampled_from(["a", "b", 1, b"a", ("a",), ("a", 1), "", "../x", "a/b", 0, -5])
# fixed-size values make keys whose values all share one size (File joins those by a gather)
VALUES = st.binary(max_size=64) | st.binary(min_size=8, max_size=8)
BAD_VALUES = st.sampled_from(["text", 3, None, 1.5, [b"x"], object()])


class Model:
    """What every store must look like: key -> bytes, plus partd's set-once iset."""

    def __init__(self) -> None:
        self.data: dict[object, bytes] = {}
        self.iset_seen: set[object] = set()
        self.batch_ids: set[bytes] = set()

    def append(self, batch: dict, batch_id: bytes | None = None) -> None:
        if not batch:
            return  # an empty append is no batch at all, batch_id included
        if batch_id is not None:
            if batch_id in self.batch_ids:
                return
            self.batch_ids.add(batch_id)
        for k, v in batch.items():
            self.data[k] = self.data.get(k, b"") + v

    def iset(self, key: object, value: bytes) -> None:
        if key not in self.iset_seen:
            self.iset_seen.add(key)
            self.data[key] = value

    def delete(self, keys: list) -> None:
        for k in keys:
            self.data.pop(k, None)
            self.iset_seen.discard(k)

    def drop(self) -> None:
        self.__init__()  # type: ignore[misc]


def store_machine(factory: Callable[[], tuple[Any, Callable[[], Any] | None]]) -> type[RuleBasedStateMachine]:
    """The state machine for stores made by ``factory()``, which returns ``(store, reopen)``:
    ``reopen()`` gives another handle on the same data, or ``reopen`` is None."""

    class StoreMachine(RuleBasedStateMachine):
        reopen: Callable[[], Any] | None

        def __init__(self) -> None:
            super().__init__()
            self.store, self.reopen = factory()
            self.model = Model()

        def teardown(self) -> None:
            self.store.__exit__(None, None, None)  # drops, and removes what is on disk

        @rule(batch=st.dictionaries(KEYS, VALUES, max_size=5), batch_id=st.none() | st.sampled_from([b"p1", b"p2"]))
        def append(self, batch: dict, batch_id: bytes | None) -> None:
            self.store.append(batch, batch_id=batch_id)
            self.model.append(batch, batch_id)

        @rule(batch=st.dictionaries(KEYS, VALUES, min_size=1, max_size=4), key=KEYS, bad=BAD_VALUES)
        def append_bad_value(self, batch: dict, key: object, bad: object) -> None:
            batch = {**batch, key: bad}
            with pytest.raises(TypeError, match="value for key"):
                self.store.append(batch)  # all or nothing: the model does not change

        @rule(key=KEYS, value=VALUES)
        def iset(self, key: object, value: bytes) -> None:
            self.store.iset(key, value)
            self.model.iset(key, value)

        @rule(keys=st.lists(KEYS, max_size=3))
        def delete(self, keys: list) -> None:
            self.store.delete(keys)
            self.model.delete(keys)

        @rule(key=KEYS)
        def delete_one(self, key: object) -> None:
            self.store.delete(key)
            self.model.delete([key])

        @precondition(lambda self: self.model.data)
        @rule()
        def drop(self) -> None:
            self.store.drop()
            self.model.drop()

        @rule(key=KEYS)
        def get_one(self, key: object) -> None:
            assert self.store.get(key) == self.model.data.get(key, b"")

        @rule(keys=st.lists(KEYS | st.lists(KEYS, max_size=2), max_size=4))
        def get_nested(self, keys: list) -> None:
            def expect(k: object) -> object:
                return [expect(i) for i in k] if isinstance(k, list) else self.model.data.get(k, b"")

            assert self.store.get(keys) == expect(keys)

        @rule(key=KEYS, max_bytes=st.integers(1, 64))
        def iter_records(self, key: object, max_bytes: int) -> None:
            # a key read in lists of about max_bytes: the same records, in order
            lists = list(self.store.iter_records(key, max_bytes))
            assert [bytes(r) for rs in lists for r in rs] == [bytes(r) for r in self.store.get_records([key])[0]]
            assert b"".join(bytes(r) for rs in lists for r in rs) == self.model.data.get(key, b"")
            for rs in lists:
                assert rs and (len(rs) == 1 or sum(len(r) for r in rs) <= max_bytes)

        @rule()
        def pickled_copy(self) -> None:
            # what a worker process receives: the same data (a copy of it, or a handle on it)
            try:
                copy = pickle.loads(pickle.dumps(self.store))
            except Exception as e:
                raise AssertionError(
                    f"{type(self.store).__name__} does not pickle ({e}); dask sends stores to worker processes"
                ) from e
            keys = list(self.model.data)
            assert copy.get(keys) == [self.model.data[k] for k in keys]
            copy.close()

        @precondition(lambda self: self.reopen is not None)
        @rule()
        def reopen_handle(self) -> None:
            # another handle (as another process would open it) sees the same data,
            # and writes through it are seen by the first handle
            other = self.reopen() if self.reopen is not None else None
            if other is None:  # this store cannot be opened twice
                return
            keys = list(self.model.data)
            assert other.get(keys) == [self.model.data[k] for k in keys]
            other.append({"via-other": b"!"})
            self.model.append({"via-other": b"!"})
            other.close()

        @invariant()
        def records_join_to_values(self) -> None:
            keys = list(self.model.data)
            records = self.store.get_records(keys)
            assert [b"".join(bytes(r) for r in rs) for rs in records] == [self.model.data[k] for k in keys]

    return StoreMachine


class StoreTests:
    """Subclass with ``make_store`` (and ``reopen`` where a store can be opened twice) to run
    the model test against a store; ``settings`` (default: the active hypothesis profile,
    40 steps a run) bounds the search."""

    settings: settings | None = None

    def make_store(self) -> Any:
        raise NotImplementedError("a StoreTests subclass makes its store in make_store()")

    def reopen(self, store: Any) -> Any | None:
        """Another handle on ``store``'s data (as another process would open it), or None
        when the store cannot be opened twice."""
        return None

    def test_store_matches_the_model(self) -> None:
        def factory() -> tuple[Any, Callable[[], Any] | None]:
            store = self.make_store()
            return store, lambda: self.reopen(store)

        # made here, not at import, so that it takes the profile loaded by then
        chosen = self.settings or settings(stateful_step_count=40, deadline=None)
        run_state_machine_as_test(store_machine(factory), settings=chosen)
