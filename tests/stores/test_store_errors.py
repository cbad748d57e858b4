"""Bad input raises a clear, typed error and leaves the store exactly as it was."""

import pickle

import numpy as np
import pytest

import shuffle_kit as sk


@pytest.fixture(params=["dict", "file", "buffer"])
def store(request, tmp_path):
    s = {
        "dict": lambda: sk.Dict(),
        "file": lambda: sk.File(tmp_path / "s"),
        "buffer": lambda: sk.Buffer(sk.Dict(), sk.File(tmp_path / "slow"), memory_limit=8),
    }[request.param]()
    s.append({"a": b"12345", "b": b"x" * 20})
    yield s
    s.drop()


@pytest.mark.parametrize("bad", ["str", 1, None, 2.5, [b"a"], np.arange(6)[::2]])
def test_bad_value_names_key_and_stores_nothing(store, bad):
    with pytest.raises(TypeError, match="'c'"):
        store.append({"a": b"more", "c": bad, "d": b"new"})
    assert store.get(["a", "b", "c", "d"]) == [b"12345", b"x" * 20, b"", b""]


@pytest.mark.parametrize("bad_key", [1.5, None, True, ("a", 2.5), frozenset()])
def test_bad_key_stores_nothing(store, bad_key):
    with pytest.raises(TypeError, match="store key"):
        store.append({"a": b"more", bad_key: b"v"})
    assert store.get("a") == b"12345"


def test_unhashable_or_bad_keys_in_get_and_delete(store):
    with pytest.raises(TypeError, match="store key"):
        store.get(1.5)
    with pytest.raises(TypeError, match="store key"):
        store.delete([("a", None)])
    with pytest.raises(TypeError, match="value for key 'k'"):
        store.iset("k", "text")
    assert store.get(["a", "k"]) == [b"12345", b""]


def test_bytes_like_values_are_accepted(store):
    arr = np.arange(4, dtype="<i4")
    store.append({"n": arr, "ba": bytearray(b"ba"), "mv": memoryview(b"mv"), "2d": np.zeros((2, 2), "u1")})
    assert store.get(["n", "ba", "mv", "2d"]) == [arr.tobytes(), b"ba", b"mv", bytes(4)]


def test_values_are_copied_at_append(store):
    buf = bytearray(b"before")
    store.append({"m": buf})
    buf[:] = b"AFTER!"
    assert store.get("m") == b"before"


def test_batch_id_must_be_bytes(store):
    with pytest.raises(TypeError, match="batch_id"):
        store.append({"a": b"x"}, batch_id="text")
    assert store.get("a") == b"12345"


def test_pickle_round_trip(store):
    store.append({"ro": memoryview(b"read-only view"), "np": np.arange(3)})
    copy = pickle.loads(pickle.dumps(store))
    assert copy.get(["a", "b", "ro", "np"]) == store.get(["a", "b", "ro", "np"])


def test_file_iter_records_reads_lazily_and_a_drop_meanwhile_raises(tmp_path):
    store = sk.File(str(tmp_path / "s"))
    for i in range(6):
        store.append({"k": bytes([i]) * 1000})
    lists = store.iter_records("k", max_bytes=2000)
    assert [bytes(r) for r in next(lists)] == [bytes([0]) * 1000, bytes([1]) * 1000]
    store.append({"k": b"later"})  # after the first list: not part of this read
    assert [bytes(r)[:1] for rs in lists for r in rs] == [bytes([i]) for i in range(2, 6)]

    lists = store.iter_records("k", max_bytes=2000)
    next(lists)
    other = sk.File(store.path)  # another handle (as another process) drops and writes again
    other.drop()
    other.append({"k": b"new"})
    with pytest.raises(sk.CorruptionError, match="dropped while key 'k'"):
        next(lists)
    other.close()
