"""Keys: an injective encoding, and hostile keys that can never escape or collide."""

import os

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import shuffle_kit as sk
from shuffle_kit.stores.keys import decode_key, encode_key, encode_keys

ATOMS = st.text() | st.binary() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
KEYS = st.recursive(
    ATOMS,
    lambda inner: st.tuples(inner) | st.tuples(inner, inner) | st.lists(inner, max_size=3).map(tuple),
    max_leaves=6,
)

HOSTILE = [
    "../x", "../../etc/passwd", "/etc/passwd", "", ".", "..", ".lock", ".users", "data.sklog",
    "a\x00b", "\x00", "a/b", ("a", "b"), "a!", "a?", "a*", "~", "$HOME", "con", "nul",
    "x" * 10_000, b"../x", b"\xff\xfe", ("..", ".."), ("/",), "\udcff", 1, "1", b"1", ("1",), (1,),
]


@given(KEYS)
def test_encoding_round_trips(key):
    assert decode_key(encode_key(key)) == key


@given(KEYS, KEYS)
def test_encoding_is_injective(a, b):
    # equal encodings only for equal keys (of the same types all the way down)
    if encode_key(a) == encode_key(b):
        assert a == b and repr(a) == repr(b)


def test_numpy_integers_are_ints():
    assert encode_key(np.int64(7)) == encode_key(7)
    assert encode_key((np.uint8(3), "a")) == encode_key((3, "a"))


@pytest.mark.parametrize("bad", [1.5, None, True, False, ["a"], {"a": 1}, ("a", 1.0), object(), ("a", [1])])
def test_non_keys_raise_typeerror_naming_the_key(bad):
    with pytest.raises(TypeError, match="store key"):
        encode_key(bad)


def test_huge_key_raises_valueerror():
    with pytest.raises(ValueError, match="limit"):
        encode_key("k" * 100_000)


def _tree(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)


@pytest.mark.parametrize("make", [sk.Dict, sk.File, lambda: sk.Buffer(sk.Dict(), sk.File(), memory_limit=100)])
def test_hostile_keys_are_ordinary_distinct_keys(make, tmp_path):
    before = set(os.listdir(tmp_path.parent))
    store = make() if make is not sk.File else sk.File(tmp_path / "store")
    data = {k: f"value of {k!r:.30}".encode() + bytes([i]) for i, k in enumerate(HOSTILE)}
    for k, v in data.items():
        store.append({k: v[:3]})
        store.append({k: v[3:]})
    assert store.get(HOSTILE) == list(data.values())
    if isinstance(store, sk.File):
        # keys never become file names: only the store's own files exist
        assert _tree(store.path) == [".lock", ".users", "data.sklog"]
        assert set(os.listdir(tmp_path.parent)) == before
    store.delete("../x")
    assert store.get(["../x", b"../x"]) == [b"", data[b"../x"]]


@given(st.lists(KEYS, min_size=1, max_size=12, unique_by=lambda k: encode_key(k)))
def test_distinct_keys_never_share_data(keys):
    store = sk.File()
    try:
        store.append({k: encode_key(k) for k in keys})
        assert store.get(keys) == [encode_key(k) for k in keys]
        assert os.listdir(store.path) and all(not n.startswith("s") for n in os.listdir(store.path))
    finally:
        store.__exit__(None, None, None)


def _encoded_one_by_one(keys):
    try:
        return [encode_key(k) for k in keys]
    except (TypeError, ValueError) as e:
        return type(e)


# lists a writer might repeat, and look-alikes: True == 1 == 1.0, but only 1 is a key
SAME_LOOKING = st.sampled_from([[1, 2], [True, 2], [1.0, 2], ["1", "2"], [b"1", b"2"], [("1",), 2], [1, "2"]])


@given(st.lists(SAME_LOOKING | st.lists(ATOMS | st.booleans(), max_size=4), max_size=8))
def test_encode_keys_equals_encode_key_for_any_sequence_of_calls(calls):
    for keys in calls:  # encode_keys remembers the last keys: repeats and look-alikes must not fool it
        expected = _encoded_one_by_one(keys)
        if isinstance(expected, type):
            with pytest.raises(expected):
                encode_keys(keys)
        else:
            got = encode_keys(keys)
            assert got == expected
            got.append(b"changed by the caller")  # must not change what is remembered
