"""MemoryLog: appends kept whole, values found by index; compaction frees dead buffers."""

import gc
import os
import weakref

import numpy as np

from shuffle_kit.stores import MemoryLog
from shuffle_kit.stores.keys import encode_key


def _frame(data: bytes) -> np.ndarray:
    array = np.frombuffer(data, np.uint8)  # read-only, like a server's received message
    return array


def test_values_stay_in_their_buffer_until_a_quarter_of_it_is_dead():
    log = MemoryLog()
    message = _frame(os.urandom(1000))
    alive = weakref.ref(message)
    log._append_bodies([([encode_key(i) for i in range(10)], np.full(10, 100), message)], None)
    expected = {i: bytes(message[i * 100 : (i + 1) * 100]) for i in range(10)}
    log.iset("kept", b"set once")
    log.append({9: b"tail"})
    del message
    gc.collect()
    assert alive() is not None, "kept without a copy"
    log.delete([0])  # a tenth of it dead: not worth a copy yet
    gc.collect()
    assert alive() is not None
    log.delete([1, 2])  # three tenths dead: the live values are copied out
    gc.collect()
    assert alive() is None, "a partly dead buffer was kept alive"
    assert log.get(list(range(10)) + ["kept"]) == [b""] * 3 + [expected[i] for i in range(3, 9)] + [
        expected[9] + b"tail", b"set once"]
    log.iset("kept", b"ignored")  # still set once after the copy
    assert log.get("kept") == b"set once"
    assert [bytes(r) for r in log.get_records([9])[0]] == [expected[9], b"tail"], "record boundaries kept"
    assert log.nbytes_live == log.nbytes_held == 700 + 4 + len(b"set once")


def test_batch_ids_survive_compaction_and_pickling():
    import pickle

    log = MemoryLog()
    log.append({"a": b"x" * 100}, batch_id=b"p1")
    log.append({"b": b"y" * 300})
    log.delete(["b"])
    log.append({"a": b"dup"}, batch_id=b"p1")  # a retried append is still ignored
    again = pickle.loads(pickle.dumps(log))
    again.append({"a": b"dup"}, batch_id=b"p1")
    assert log.get("a") == again.get("a") == b"x" * 100


def test_writable_buffers_are_copied():
    log = MemoryLog()
    data = bytearray(b"abcd")
    log._append_bodies([([encode_key("k")], np.array([4]), data)], None)
    data[:] = b"zzzz"
    assert log.get("k") == b"abcd"
