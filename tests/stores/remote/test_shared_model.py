"""Shared, through a real server, equals the dict-of-bytes model like every other store."""

import pickle

import pytest
from hypothesis import settings

import shuffle_kit as sk
from shuffle_kit.testing import StoreTests

_servers: dict[str, sk.Server] = {}


@pytest.fixture(scope="module", autouse=True)
def servers():
    # the server's own store spills after 40 bytes, so spills happen between requests
    _servers["spill"] = sk.Server(sk.Buffer(sk.Dict(), sk.File(), memory_limit=40))
    _servers["tcp"] = sk.Server(address="tcp://127.0.0.1:0")
    yield
    for s in _servers.values():
        s.close()
        s.store.drop()
    _servers.clear()


class SharedTests(StoreTests):
    server = ""

    def make_store(self):
        store = sk.Shared(_servers[self.server].address, timeout=10)
        store.drop()  # every run starts from an empty model
        return store

    def reopen(self, store):
        return pickle.loads(pickle.dumps(store))  # as a dask worker receives it


class TestSharedSpilling(SharedTests):
    server = "spill"
    settings = settings(max_examples=40, stateful_step_count=40, deadline=None)


class TestSharedTcp(SharedTests):
    server = "tcp"
    settings = settings(max_examples=15, stateful_step_count=40, deadline=None)
