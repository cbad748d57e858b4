"""Every store, and stacks of byte-level wrappers over one, equal a dict-of-bytes model after
any sequence of operations: our stores run the same suite a third-party store would
(:class:`shuffle_kit.testing.StoreTests`)."""

import tempfile

from hypothesis import given
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.testing import StoreTests


class TestDict(StoreTests):
    def make_store(self):
        return sk.Dict()


class TestMemoryLog(StoreTests):
    def make_store(self):
        return sk.stores.MemoryLog()


class TestFile(StoreTests):
    def make_store(self):
        return sk.File(tempfile.mkdtemp(prefix="sk-test-"))

    def reopen(self, store):
        return sk.File(store.path)


class TestBufferDictFile(StoreTests):
    def make_store(self):
        return sk.Buffer(sk.Dict(), sk.File(), memory_limit=40)


class TestBufferDictDict(StoreTests):
    def make_store(self):
        return sk.Buffer(sk.Dict(), sk.Dict(), memory_limit=10)


class TestBufferLogFile(StoreTests):
    def make_store(self):
        return sk.Buffer(sk.stores.MemoryLog(), sk.File(), memory_limit=40)


@given(st.lists(st.integers(0, 20), max_size=30), st.integers(1, 40))
def test_size_groups_cover_every_record_in_order_within_the_bound(lengths, max_bytes):
    from shuffle_kit.stores.base import size_groups

    groups = size_groups(lengths, max_bytes)
    assert [i for a, b in groups for i in range(a, b)] == list(range(len(lengths)))
    for a, b in groups:
        assert b - a == 1 or sum(lengths[a:b]) <= max_bytes
    for (a, b), (c, _) in zip(groups, groups[1:]):  # a group ends only where the next record overflows it
        assert sum(lengths[a:b]) + lengths[c] > max_bytes


class TestCompressedFile(StoreTests):
    # a byte-level wrapper stack: compression over the on-disk log
    def make_store(self):
        return sk.LZ4(sk.File(tempfile.mkdtemp(prefix="sk-test-")))
