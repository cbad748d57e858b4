"""Which records a message hands to ZeroMQ as they are: only memory nobody may change or
unmap after the call returns. A record sent zero-copy is the frame itself; any other is
copied into a frame of its own."""

from __future__ import annotations

import mmap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shuffle_kit import MemoryLog, Server, Shared
from shuffle_kit.codecs.arrow_ipc import encode
from shuffle_kit.stores.remote.protocol import LARGE, pack_records, zero_copy_safe

SIZE = LARGE  # a record this long gets a frame of its own


def owned_readonly() -> np.ndarray:
    a = np.arange(2 * SIZE, dtype=np.uint8)
    a.flags.writeable = False
    return a


def readonly_view_of_writable() -> np.ndarray:
    view = np.zeros(SIZE, np.uint8)[:]
    view.flags.writeable = False
    return view


@pytest.mark.parametrize("make, safe", [
    (lambda: b"x" * SIZE, True),
    (lambda: memoryview(b"x" * SIZE), True),
    (owned_readonly, True),
    (lambda: owned_readonly()[SIZE:], True),
    (lambda: memoryview(owned_readonly()), True),
    (lambda: encode(pd.DataFrame({"a": np.arange(SIZE)})), True),
    (lambda: encode(pd.DataFrame({"a": np.arange(SIZE)}))[SIZE:], True),
    (lambda: np.frombuffer(pa.py_buffer(b"x" * SIZE), np.uint8), False),  # read-only, not sealed
    (lambda: encode(pd.DataFrame({"a": np.arange(SIZE)})).obj.copy(), False),  # derived: writable
    (lambda: bytearray(SIZE), False),
    (lambda: memoryview(bytearray(SIZE)).toreadonly(), False),
    (lambda: np.zeros(SIZE, np.uint8), False),
    (readonly_view_of_writable, False),
])
def test_only_immutable_memory_is_sent_as_it_is(make, safe):
    record = make()
    assert zero_copy_safe(record) is safe
    frame = pack_records([record])[1]
    assert (frame is record) is safe
    assert bytes(frame) == bytes(record)


def test_a_view_of_an_mmap_is_copied(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"y" * SIZE)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        view = memoryview(m)
        as_array = np.frombuffer(m, np.uint8)
        arrow = np.frombuffer(pa.memory_map(str(path)).read_buffer(), np.uint8)  # Arrow's, immutable
        try:
            assert not zero_copy_safe(view) and not zero_copy_safe(as_array) and not zero_copy_safe(arrow)
            frame = pack_records([view])[1]
            assert frame is not view and type(frame) is bytes
        finally:
            view.release()
            del as_array, arrow


def test_a_servers_memory_log_values_are_sent_as_they_are_and_stay_right():
    """A MemoryLog keeps appended messages as read-only arrays over the received frames:
    its values go back zero-copy, and dropping them after the reply changes nothing
    the client received."""
    with Server(MemoryLog()) as server:
        store = server.store
        client = Shared(server.address, timeout=30)
        try:
            values = {f"k{i}": bytes([i]) * (SIZE + i) for i in range(4)}
            client.append(values)
            held = store.get_records(list(values))
            assert all(zero_copy_safe(r) for records in held for r in records)
            got = client.get(list(values))
            client.drop()
            assert got == list(values.values())
        finally:
            client.close()
