"""Compression wrappers: byte stores equal to a dict-of-bytes model, and frame codecs over
every store with and without each compressor."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
from hypothesis import given, settings

from shuffle_kit import (
    BZ2,
    LZ4,
    Buffer,
    CodecError,
    CorruptionError,
    Dict,
    File,
    Snappy,
    ZLib,
    Zstd,
)
from shuffle_kit.codecs import COMPRESSORS
from shuffle_kit.testing import StoreTests
from tests.helpers.frames import FRAME_CODECS, LIGHT, appends, check


def ids(c):
    return c.__name__


def _store_tests(compressor):
    class Suite(StoreTests):
        def make_store(self):
            return compressor(Dict())

    Suite.__name__ = Suite.__qualname__ = f"TestStore{compressor.__name__}"
    return Suite


# every compressor is a byte store held to the store suite's model (records, iset, batch
# ids, delete, drop, pickling), the same suite every store runs
for _compressor in COMPRESSORS:
    globals()[f"TestStore{_compressor.__name__}"] = _store_tests(_compressor)


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=ids)
def test_store_interface(compressor, tmp_path):
    store = compressor(File(tmp_path / "s"))
    store.append({"a": b"1" * 100}, batch_id=b"b1")
    store.append({"a": b"1" * 100}, batch_id=b"b1")  # retried: ignored
    store.iset("i", b"first")
    store.iset("i", b"second")
    assert store.get(["a", "i"]) == [b"1" * 100, b"first"]
    assert store.pop("a") == b"1" * 100 and store.get("a") == b""
    copy = pickle.loads(pickle.dumps(store))
    assert copy.get("i") == b"first"
    assert store.lock is store.store.lock  # one lock for the wrapper and its store
    with store.lock:
        store.delete("i", lock=False)
    assert store.get("i") == b""
    store.drop()
    store.close()


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=ids)
def test_damage_is_clear(compressor):
    inner = Dict()
    store = compressor(inner)
    store.append({"k": b"some bytes to compress " * 50})
    (kb,) = inner._data
    (record,) = inner._data[kb]
    flipped = bytearray(record)
    flipped[-3] ^= 0xFF
    inner._data[kb] = [bytes(flipped)]
    with pytest.raises(CorruptionError, match="'k'"):
        store.get("k")
    inner._data[kb] = [record[:30]]
    with pytest.raises(CorruptionError):
        store.get("k")


def test_wrong_or_missing_compressor_is_clear():
    inner = Dict()
    LZ4(inner).append({"k": b"data"})
    with pytest.raises(CodecError, match="written by LZ4, cannot be read by ZLib"):
        ZLib(inner).get("k")
    from shuffle_kit import PandasBlocks

    with pytest.raises(CodecError, match=r"wrap the store in LZ4"):
        PandasBlocks(inner).get("k")
    PandasBlocks(inner).append({"p": pd.DataFrame({"a": [1]})})
    with pytest.raises(CodecError, match="not compressed"):
        Zstd(inner).get("p")
    inner.append({"raw": b"plain"})
    with pytest.raises(CodecError, match="untagged"):
        Snappy(inner).get("raw")


def test_buffer_over_compressed_stores(tmp_path):
    # compressors are byte stores: they sit anywhere a store does
    b = Buffer(LZ4(Dict()), BZ2(File(tmp_path / "s")), available_memory=50)
    for i in range(10):
        b.append({"a": bytes([i]) * 40, "b": b"x"})
    assert b.get("a") == b"".join(bytes([i]) * 40 for i in range(10))
    assert b.get("b") == b"x" * 10


STORES = ["dict", "file", "buffer"]


def _store(kind, path):
    if kind == "dict":
        return Dict()
    if kind == "file":
        return File(path / "f")
    return Buffer(Dict(), File(path / "b"), memory_limit=400)


@pytest.mark.parametrize("compressor", [None, *COMPRESSORS], ids=lambda c: c.__name__ if c else "raw")
@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize("codec", FRAME_CODECS, ids=ids)
@settings(max_examples=4)
@given(appended=appends(kinds=LIGHT, max_rows=5))
def test_frame_codecs_over_stores_and_compressors(codec, kind, compressor, appended, tmp_path_factory):
    inner = _store(kind, tmp_path_factory.mktemp("s"))
    with codec(compressor(inner) if compressor else inner) as c:
        check(c, appended)


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_a_temporary_store_is_gone_when_its_with_block_ends(compressor):
    import os

    with compressor() as p:
        p.append({"x": b"data" * 100})
        path = p.store.path
        assert os.path.isdir(path)
    assert not os.path.exists(path)  # not left for the garbage collector
