"""Every store equals a dict-of-bytes model after any sequence of operations."""

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

import shuffle_kit as sk

from .store_model import store_machine


def _file():
    store = sk.File(tempfile.mkdtemp(prefix="sk-test-"))
    return store, lambda: sk.File(store.path)


TestDict = store_machine(lambda: (sk.Dict(), None)).TestCase
TestMemoryLog = store_machine(lambda: (sk.stores.MemoryLog(), None)).TestCase
TestFile = store_machine(_file).TestCase
TestBufferDictFile = store_machine(lambda: (sk.Buffer(sk.Dict(), sk.File(), available_memory=40), None)).TestCase
TestBufferDictDict = store_machine(lambda: (sk.Buffer(sk.Dict(), sk.Dict(), available_memory=10), None)).TestCase
TestBufferLogFile = store_machine(
    lambda: (sk.Buffer(sk.stores.MemoryLog(), sk.File(), available_memory=40), None)
).TestCase

for _case in (TestDict, TestMemoryLog, TestFile, TestBufferDictFile, TestBufferDictDict, TestBufferLogFile):
    _case.settings = settings(_case.settings, max_examples=100, stateful_step_count=40)
del _case


@given(st.lists(st.integers(0, 20), max_size=30), st.integers(1, 40))
def test_size_groups_cover_every_record_in_order_within_the_bound(lengths, max_bytes):
    from shuffle_kit.stores.base import size_groups

    groups = size_groups(lengths, max_bytes)
    assert [i for a, b in groups for i in range(a, b)] == list(range(len(lengths)))
    for a, b in groups:
        assert b - a == 1 or sum(lengths[a:b]) <= max_bytes
    for (a, b), (c, _) in zip(groups, groups[1:]):  # a group ends only where the next record overflows it
        assert sum(lengths[a:b]) + lengths[c] > max_bytes
