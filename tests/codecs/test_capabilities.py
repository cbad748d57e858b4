"""Every store and codec declares what it can do, and does what it declares.

The layers above ask these declarations instead of probing attributes, so a wrong one
would send a shuffle down the wrong path: each flag is checked against behaviour here.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import shuffle_kit
import shuffle_kit.codecs as codecs
import shuffle_kit.stores as stores
from shuffle_kit import (
    LZ4,
    ArrowIPC,
    Buffer,
    Dict,
    Encode,
    File,
    MemoryLog,
    Numpy,
    PandasBlocks,
    PandasColumns,
    Pickle,
    Python,
    Server,
    Shared,
    TableBuffer,
    Zstd,
)
from shuffle_kit.codecs import Codec, Compressed
from shuffle_kit.shuffling.api import check_store
from shuffle_kit.stores import Store
from shuffle_kit.stores.keys import encode_key

ROOT = Path(shuffle_kit.__file__).parent


def _files(directory: str) -> list[str]:
    return [os.path.join(d, f) for d, _, fs in os.walk(directory) for f in fs]


# -- codecs --------------------------------------------------------------------------------
# class -> (stores_frames, stores_arrow, sorted_appends)
CODEC_FLAGS = {
    Encode: (False, False, False),
    Pickle: (False, False, False),
    Python: (False, False, False),
    Numpy: (False, False, False),
    ArrowIPC: (True, True, False),
    PandasBlocks: (True, False, False),
    PandasColumns: (True, False, False),
    TableBuffer: (True, True, True),
}


def _make_codec(cls: type, store: Store) -> Codec:
    if cls is Encode:
        return Encode(zlib.compress, zlib.decompress, b"".join, store)
    if cls is TableBuffer:
        return TableBuffer(store, memory_limit=0)  # spill at once: the store is used
    return cls(store)


def test_every_codec_class_is_covered():
    shipped = {c for c in vars(codecs).values() if inspect.isclass(c) and issubclass(c, Codec) and c is not Codec}
    assert shipped == set(CODEC_FLAGS)


@pytest.mark.parametrize("cls", list(CODEC_FLAGS), ids=lambda c: c.__name__)
@pytest.mark.parametrize("bottom", ["Dict", "LZ4(Dict)", "File", "Buffer(Dict, File)"])
def test_codecs_do_what_they_declare(cls, bottom, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a temporary File would go
    store = {
        "Dict": lambda: Dict(),
        "LZ4(Dict)": lambda: LZ4(Dict()),
        "File": lambda: File(tmp_path / "f"),
        "Buffer(Dict, File)": lambda: Buffer(Dict(), File(tmp_path / "f"), memory_limit=0),
    }[bottom]()
    codec = _make_codec(cls, store)
    frames, arrow, sorted_appends = CODEC_FLAGS[cls]
    assert (codec.stores_frames, codec.stores_arrow, codec.sorted_appends) == (frames, arrow, sorted_appends)
    assert codec.in_memory == (bottom in ("Dict", "LZ4(Dict)")) == store.in_memory

    a = pd.DataFrame({"x": [1, 2], "s": ["u", None]}, index=[5, 6])
    b = pd.DataFrame({"x": [3], "s": ["w"]}, index=[7])
    if frames:
        codec.append({"k": a})
        codec.append({"k": b})
        pd.testing.assert_frame_equal(codec.get("k"), pd.concat([a, b]))
        check_store(codec)  # the shuffle takes it
        pieces = list(codec.iter_pieces("k"))
        assert [len(p) if isinstance(p, pd.DataFrame) else p.num_rows for p in pieces] == [2, 1]
    else:
        with pytest.raises(TypeError, match="does not store DataFrames"):
            check_store(codec)
        value = {Encode: b"ab", Numpy: np.arange(2)}.get(cls, [1, 2])
        codec.append({"k": value})
        codec.append({"k": value})
        assert len(list(codec.iter_pieces("k"))) == 2  # one piece per append
    table = pa.table({"x": [1, 2]})
    if arrow:
        codec.append({"t": table})
        assert codec.get("t", as_arrow=True).equals(table)
    elif frames:
        with pytest.raises(TypeError, match="Table"):
            codec.append({"t": table})
    if sorted_appends:
        codec.append_sorted(pa.table({"v": [5, 6, 7]}), np.array([1, 0, 2]))
        assert codec.get(2)["v"].tolist() == [6, 7]
    else:
        with pytest.raises(NotImplementedError, match="sorted_appends"):
            codec.append_sorted(table, np.array([2]))
    if isinstance(codec, TableBuffer):
        codec.flush()
    if codec.in_memory:
        assert _files(str(tmp_path)) == []
    else:
        assert _files(str(tmp_path))
    codec.delete("k")
    codec.drop()
    store.close()


# -- stores --------------------------------------------------------------------------------
STORE_CLASSES = {Dict, MemoryLog, File, Buffer, Shared, Compressed}


def test_every_store_class_is_covered():
    shipped = {c for c in vars(stores).values() if inspect.isclass(c) and issubclass(c, Store) and c is not Store}
    shipped |= {c for c in vars(codecs).values() if inspect.isclass(c) and issubclass(c, Store)}
    # compressors share Compressed's declarations (the wrapped store's)
    assert {c for c in shipped if not issubclass(c, Compressed)} | {Compressed} == STORE_CLASSES


STORES = {
    # name: (factory, in_memory, keeps_bodies)
    "Dict": (lambda d: Dict(), True, False),
    "MemoryLog": (lambda d: MemoryLog(), True, True),
    "File": (lambda d: File(d / "f"), False, False),
    "Buffer(MemoryLog, Dict)": (lambda d: Buffer(MemoryLog(), Dict(), memory_limit=1e6), True, True),
    "Buffer(Dict, File)": (lambda d: Buffer(Dict(), File(d / "f"), memory_limit=1e6), False, False),
    "Buffer(MemoryLog, File)": (lambda d: Buffer(MemoryLog(), File(d / "f"), memory_limit=1e6), False, True),
    "LZ4(MemoryLog)": (lambda d: LZ4(MemoryLog()), True, False),
    "Zstd(File)": (lambda d: Zstd(File(d / "f")), False, False),
}


@pytest.mark.parametrize("name", list(STORES))
def test_stores_do_what_they_declare(name, tmp_path):
    make, in_memory, keeps_bodies = STORES[name]
    store = make(tmp_path)
    assert (store.in_memory, store.keeps_bodies) == (in_memory, keeps_bodies)
    body = b"abcdefghij" * 3
    kbs = [encode_key("x"), encode_key("y"), encode_key("x")]
    store.append_bodies([(kbs, np.array([10, 15, 5]), body)])
    assert store.get(["x", "y"]) == [body[:10] + body[25:], body[10:25]]
    if keeps_bodies and in_memory:  # the buffer itself, with no object per value
        whole = np.frombuffer(body, np.uint8)
        assert all(np.shares_memory(np.asarray(r), whole) for r in store.get_records(["x"])[0])
    elif in_memory:
        assert not any(isinstance(r, np.ndarray) and np.shares_memory(r, np.frombuffer(body, np.uint8))
                       for r in store.get_records(["x"])[0])
    usage = store.usage()
    if in_memory:
        assert _files(str(tmp_path)) == []
        assert usage.disk in (0, None)
    else:
        assert _files(str(tmp_path))
        assert usage.disk is None or usage.disk > 0
    store.flush()  # every store takes it; a Buffer empties its fast store
    if isinstance(store, Buffer):
        assert store.usage().memory == 0
    assert store.get(["x", "y"]) == [body[:10] + body[25:], body[10:25]]
    store.drop()
    store.close()


def test_shared_declares_what_it_is(tmp_path):
    with Server(Dict(), f"ipc://{tmp_path}/s") as server:
        client = Shared(server.address)
        assert (client.in_memory, client.keeps_bodies) == (False, False)  # another process holds it
        client.append_bodies([([encode_key("a")], np.array([2]), b"hi")])
        assert client.get("a") == b"hi"
        assert server.stats()["memory_bytes"] == 2  # the served Dict's declared usage
        client.close()


# -- nobody probes -------------------------------------------------------------------------
# what a store or codec offers or holds, by name
OWN = r"_?(append\w*|get\w*|iter_\w+|delete|drop|flush|data|records|usage|stores_\w+|in_memory|keeps_bodies)"


def test_the_shuffle_and_the_server_ask_instead_of_probing():
    # (hasattr on other libraries' objects, such as polars' version or the Arrow stream
    # protocol of an input, is not a probe of ours)
    shuffling = sorted((ROOT / "shuffling").glob("*.py"))
    assert shuffling, "the shuffle's modules moved: point this test at them"
    sources = [*shuffling, ROOT / "stores" / "remote" / "server.py"]
    for path in sources:
        text = path.read_text()
        assert not re.search(r"(hasattr|getattr)\([^,()]*(store|codec|obj)\b", text), path
        assert not re.search(rf"(hasattr|getattr)\([^,()]+,\s*[\"']{OWN}[\"']", text), path
        assert not re.search(r"\b(store|codec)\._(data|append_bodies)\b", text), path


def test_no_module_imports_another_modules_underscore_names():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                found += [
                    f"{path.relative_to(ROOT)}: {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert found == []
