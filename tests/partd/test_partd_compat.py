"""Programs written against partd 1.4 run on shuffle_kit, with the same results."""

import subprocess
import sys

import partd
import pytest

import shuffle_kit as sk
import shuffle_kit.partd as skp

PROGRAM = """
import sys
import shuffle_kit.partd
sys.modules["partd"] = shuffle_kit.partd

import partd
from partd.file import cleanup_files
from partd.core import Interface
from partd.utils import flatten

with partd.File() as p:
    assert isinstance(p, Interface)
    p.append({'x': b'Hello', 'y': b'abc'})
    p.append({'x': b'World!', 'y': b'def'})
    assert p.get('x') == b'HelloWorld!'
    assert p.get(['y', 'x']) == [b'abcdef', b'HelloWorld!']
    assert p.get([['y'], 'x']) == [[b'abcdef'], b'HelloWorld!']
    with p.lock:
        assert p.get('x', lock=False) == b'HelloWorld!'
    p.iset('z', b'1'); p.iset('z', b'2')
    assert p.get('z') == b'1'
    p.delete('z')
    assert p.get('z') == b''
    path = p.path
import os
assert not os.path.exists(path)

b = partd.Buffer(partd.Dict(), partd.File(), available_memory=10)
b.append({'a': b'0123456789', 'b': b'x'})
b.append({'a': b'!'})
assert b.get('a') == b'0123456789!'
print('ok')
"""


def test_partd_program_runs_unchanged():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


OPS = [
    ("append", {"a": b"1", "b": b"22"}),
    ("append", {"a": b"333", ("t", 1): b"t"}),
    ("iset", ("c", b"first")),
    ("iset", ("c", b"second")),
    ("delete", ["b"]),
    ("append", {"b": b"again"}),
]


@pytest.mark.parametrize("names", [("File", "File"), ("Dict", "Dict")])
def test_same_results_as_partd(tmp_path, names):
    ours = getattr(skp, names[0])(*([str(tmp_path / "ours")] if names[0] == "File" else []))
    theirs = getattr(partd, names[1])(*([str(tmp_path / "theirs")] if names[1] == "File" else []))
    keys = ["a", "b", "c", ("t", 1), "never"]
    for op, arg in OPS:
        for store in (ours, theirs):
            if op == "append":
                store.append(arg)
            elif op == "iset":
                store.iset(*arg)
            else:
                store.delete(arg)
        assert ours.get(keys) == theirs.get(keys), (op, arg)


def test_client_close_server_stops_the_facade_server():
    server = skp.zmq.Server()
    client = skp.zmq.Client(server.address)
    client.append({"x": b"1"})
    client.close_server()
    server.block()
    assert not server.running
    client.close()


def test_facade_names_are_shuffle_kit_classes():
    assert skp.File is sk.File and skp.Dict is sk.Dict and skp.Buffer is sk.Buffer
    assert skp.file.File is sk.File and skp.dict.Dict is sk.Dict
    assert isinstance(skp.file.cleanup_files, list)


def test_facade_server_appends_gets_deletes_and_drops_in_process():
    # as partd's own test_zmq does: the server's methods beside its clients' requests
    with skp.zmq.Server() as server:
        client = skp.zmq.Client(server.address)
        server.append({"x": b"ab", ("t", 1): b"c"})
        client.append({"x": b"cd"})
        assert server.get("x") == b"abcd" and server.get(["x", ("t", 1)]) == [b"abcd", b"c"]
        assert client.get(("t", 1)) == b"c"
        assert server.stats()["keys"] == 2
        server.delete("x")
        assert client.get(["x", ("t", 1)]) == [b"", b"c"] and server.stats()["keys"] == 1
        server.drop()
        assert client.get(("t", 1)) == b"" and server.stats()["keys"] == 0
        client.close()


def test_sk_file_refuses_a_partd_directory(tmp_path):
    path = str(tmp_path / "partd-store")
    theirs = partd.File(path)
    theirs.append({"x": b"abc", ("y", 1): b"d"})
    with pytest.raises(ValueError, match="partd store") as info:
        sk.File(path)
    assert path in str(info.value) and "'x'" in str(info.value)
    assert theirs.get("x") == b"abc"  # and left it as it was
    assert sorted(p.name for p in (tmp_path / "partd-store").iterdir()) == [".lock", "x", "y"]
