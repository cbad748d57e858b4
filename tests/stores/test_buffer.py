"""Buffer: spills the largest keys to the slow store and keeps append order."""

import gc
import os
import weakref

import numpy as np
import pytest

import shuffle_kit as sk


@pytest.mark.parametrize("fast", [sk.Dict, sk.MemoryLog])
def test_spills_largest_keys_and_keeps_order(tmp_path, fast):
    slow = sk.File(tmp_path / "slow")
    buf = sk.Buffer(fast(), slow, memory_limit=1000)
    expected = {}
    for i in range(50):
        batch = {"big": bytes([i]) * 90, f"small-{i % 3}": bytes([i]) * 5}
        buf.append(batch)
        for k, v in batch.items():
            expected[k] = expected.get(k, b"") + v
        assert buf.memory_usage <= 1000
        if fast is sk.MemoryLog:  # dead values pin at most a quarter more than is live
            assert buf.fast.nbytes_held <= 1.25 * buf.memory_usage + 95
    assert slow.get("big"), "the largest key went to the slow store"
    assert buf.get(list(expected)) == list(expected.values())
    # records keep their boundaries across the spill
    assert [bytes(r) for r in buf.get_records(["big"])[0]] == [bytes([i]) * 90 for i in range(50)]


def test_flush_moves_everything(tmp_path):
    buf = sk.Buffer(sk.Dict(), sk.File(tmp_path / "slow"), memory_limit=10**6)
    buf.append({"a": b"1", "b": b"2"})
    buf.flush()
    assert buf.memory_usage == 0 and buf.fast.get(["a", "b"]) == [b"", b""]
    assert buf.get(["a", "b"]) == [b"1", b"2"]


@pytest.mark.parametrize("slow", [sk.Dict, sk.File])
@pytest.mark.parametrize("view", [memoryview, lambda a: a], ids=["memoryview", "ndarray"])
def test_a_spill_frees_buffers_shared_with_values_that_stay(slow, view):
    """A server appends values as read-only views of the message they came in: once
    some of them spill, those that stay must not keep the whole message alive."""
    message = np.frombuffer(os.urandom(1000), np.uint8)  # read-only, and weakly referable
    alive = weakref.ref(message)
    whole = view(message)
    buf = sk.Buffer(sk.Dict(), slow(), memory_limit=1500)
    buf._append(
        [sk.stores.keys.encode_key(i) for i in range(10)], [whole[i * 100 : (i + 1) * 100] for i in range(10)], None
    )
    expected = [bytes(whole[i * 100 : (i + 1) * 100]) for i in range(10)]
    del message, whole
    gc.collect()
    assert alive() is not None, "kept without a copy until a spill"
    buf.append({"big": b"x" * 1000})  # over the limit: 'big' spills, the views stay
    gc.collect()
    assert alive() is None, "the values that stayed still hold the message"
    assert buf.get(list(range(10)) + ["big"]) == expected + [b"x" * 1000]


def test_logger_has_only_a_null_handler():
    import logging

    handlers = logging.getLogger("shuffle_kit").handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]


def test_a_temporary_slow_store_is_gone_when_the_with_block_ends():
    import os

    from shuffle_kit import Buffer, Dict, File

    with Buffer(Dict(), File(), memory_limit=10) as buf:
        buf.append({"big": b"x" * 100})  # spilled to the File
        path = buf.slow.path
        assert os.path.isdir(path)
    assert not os.path.exists(path)
