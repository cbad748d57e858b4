"""Shared, through a real server, equals the dict-of-bytes model like every other store."""

import pickle

import pytest
from hypothesis import settings

import shuffle_kit as sk

from .store_model import store_machine

_servers: dict[str, sk.Server] = {}


@pytest.fixture(scope="module", autouse=True)
def servers():
    # the server's own store spills after 40 bytes, so spills happen between requests
    _servers["spill"] = sk.Server(sk.Buffer(sk.Dict(), sk.File(), available_memory=40))
    _servers["tcp"] = sk.Server(address="tcp://127.0.0.1:0")
    yield
    for s in _servers.values():
        s.close()
        s.store.drop()
    _servers.clear()


def _factory(name):
    def make():
        store = sk.Shared(_servers[name].address, timeout=10)
        store.drop()  # every run starts from an empty model
        return store, lambda: pickle.loads(pickle.dumps(store))

    return make


TestSharedSpilling = store_machine(_factory("spill")).TestCase
TestSharedTcp = store_machine(_factory("tcp")).TestCase
TestSharedTcp.settings = settings(TestSharedTcp.settings, max_examples=15)
