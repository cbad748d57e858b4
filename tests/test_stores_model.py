"""Every store equals a dict-of-bytes model after any sequence of operations."""

import tempfile

from hypothesis import settings

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
