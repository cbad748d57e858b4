"""Shared: the client of a store server (servers in threads of this process)."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import socket
import subprocess
import sys
import threading
import time

import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.errors import MessageTooLarge, ServerError
from shuffle_kit.stores.remote import protocol as P
from tests.helpers.servers import thread_server


@pytest.fixture(scope="module")
def server():
    with thread_server() as s:
        yield s


@pytest.fixture
def shared(server):
    client = sk.Shared(server.address, timeout=10)
    client.drop()
    yield client
    client.close()


def test_store_api(shared):
    shared.append({"x": b"ab", ("y", 1): b"c", 1: b"int", "1": b"str", b"1": b"bytes"})
    shared.append({"x": bytearray(b"cd"), ("y", 1): memoryview(b"d")})
    assert shared.get("x") == b"abcd"
    assert shared.get([("y", 1), [1, "1"], b"1", "never"]) == [b"cd", [b"int", b"str"], b"bytes", b""]
    shared.iset("i", b"1")
    shared.iset("i", b"2")
    assert shared.get("i") == b"1"
    shared.delete(["i", "never"])
    assert shared.get("i") == b""
    shared.iset("i", b"3")
    assert shared.get("i") == b"3"
    assert shared.pop(["x", [1]]) == [b"abcd", [b"int"]]
    assert shared.get(["x", 1]) == [b"", b""]
    shared.drop()
    assert shared.get(("y", 1)) == b""


def test_records_keep_their_boundaries(shared):
    big = os.urandom(P.LARGE + 5)
    shared.append({"k": b"one", "e": b""})
    shared.append({"k": b"", "e": b""})
    shared.append({"k": big})
    shared.append({"k": b"two"})
    (k, e) = shared.get_records(["k", "e"])
    assert [bytes(r) for r in k] == [b"one", b"", big, b"two"]
    assert [bytes(r) for r in e] == [b"", b""]


def test_codecs_nest_on_shared(shared):
    from shuffle_kit.codecs import Pickle

    p = Pickle(shared)
    p.append({"a": [1, "x"]})
    p.append({"a": [(2, 3)]})
    assert p.get("a") == [1, "x", (2, 3)]


def test_batch_id_ignores_a_retried_append(shared):
    shared.append({"a": b"1"}, batch_id=b"writer-1/0")
    shared.append({"a": b"1"}, batch_id=b"writer-1/0")
    shared.append({"a": b"2"}, batch_id=b"writer-1/1")
    assert shared.get("a") == b"12"
    with pytest.raises(TypeError, match="batch_id"):
        shared.append({"a": b"3"}, batch_id="text")


def test_bad_values_and_keys_raise_before_sending(shared, server):
    before = server.stats()["requests"]
    with pytest.raises(TypeError, match="value for key"):
        shared.append({"a": b"ok", "b": "text"})
    with pytest.raises(TypeError, match="keys must be"):
        shared.append({1.5: b"x"})
    with pytest.raises(TypeError):
        shared.iset("a", 3)
    assert server.stats()["requests"] == before
    assert shared.get("a") == b""


def test_close_keeps_server_data_and_with_block_only_closes(server):
    with sk.Shared(server.address) as a:
        a.drop()
        a.append({"kept": b"yes"})
    b = sk.Shared(server.address)
    assert b.get("kept") == b"yes"
    b.close()
    assert b.get("kept") == b"yes"  # a closed client reconnects on use
    b.close()


def test_pickle_reconnects(shared):
    shared.append({"p": b"1"})
    other = pickle.loads(pickle.dumps(shared))
    assert other.address == shared.address and other.timeout == shared.timeout
    other.append({"p": b"2"})
    assert shared.get("p") == b"12"
    other.close()


def _child_appends(client, n):
    for i in range(n):
        client.append({"child": b"%d," % i})
    client.close()


def test_pickled_into_another_process(shared):
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_child_appends, args=(shared, 5))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert shared.get("child") == b"0,1,2,3,4,"


def test_threads_share_one_client(shared):
    n_threads, n = 8, 100
    errors = []

    def work(t):
        try:
            for i in range(n):
                shared.append({("t", t): b"%d," % i, "all": b"x"})
                if i % 10 == 0:
                    assert shared.get(("t", t)).count(b",") == i + 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert shared.get("all") == b"x" * n_threads * n
    for t in range(n_threads):
        assert shared.get(("t", t)) == b"".join(b"%d," % i for i in range(n))
    assert len(shared._pool) <= n_threads


def test_stats_and_flush(tmp_path):
    with thread_server(path=str(tmp_path / "s"), memory_limit=1000) as server:
        client = sk.Shared(server.address)
        client.append({"a": b"x" * 600, "b": b"y" * 300})
        client.append({"a": b"x" * 600})  # over the limit: 'a' spills
        stats = client.stats()
        assert stats["keys"] == 2
        assert stats["memory_bytes"] == 300
        assert stats["spilled_bytes"] >= 1200
        assert stats["clients"] >= 1
        assert stats["requests"] >= 3
        assert stats == {**server.stats(), "requests": stats["requests"]}
        client.flush()
        assert client.stats()["memory_bytes"] == 0
        assert client.get(["a", "b"]) == [b"x" * 1200, b"y" * 300]
        client.delete("a")
        assert client.stats()["keys"] == 1
        client.close()


def test_unreachable_server_raises_connection_error(tmp_path):
    client = sk.Shared(f"ipc://{tmp_path}/nobody-here", timeout=0.5)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="could not reach"):
        client.append({"a": b"1"})
    assert time.monotonic() - start < 3
    client.close()


def test_silent_server_raises_timeout_error(tmp_path):
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    address = f"ipc://{tmp_path}/silent"
    router.bind(address)
    try:
        client = sk.Shared(address, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            client.get("a")
        assert time.monotonic() - start < 3
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            client.ping(timeout=0.2)  # per-call timeout
        assert time.monotonic() - start < 2
        client.close()
    finally:
        router.close(0)
        ctx.term()


def test_a_slowly_streaming_reply_is_not_a_dead_server(tmp_path):
    """Each message of a multi-message reply restarts the clock."""
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    address = f"ipc://{tmp_path}/slow"
    router.bind(address)
    n = 6

    def serve():
        ident, head, keys = router.recv_multipart()
        _, _, rid = P.parse_header(head)
        msgs = list(P.records_reply(rid, [[b"ab"] for _ in range(n)], chunk=1))
        for m in msgs:
            time.sleep(0.15)
            router.send_multipart([ident, *m])

    t = threading.Thread(target=serve)
    t.start()
    try:
        client = sk.Shared(address, timeout=0.5)
        start = time.monotonic()
        records = client.get_records(list(range(n)))
        assert time.monotonic() - start > 0.5  # longer than the timeout in total
        assert [[bytes(r) for r in rs] for rs in records] == [[b"ab"]] * n
        client.close()
    finally:
        t.join()
        router.close(0)
        ctx.term()


def test_server_errors_are_typed_exceptions(server):
    class Broken(sk.Dict):
        def _records(self, kbs):
            raise sk.CorruptionError("checksum failed for key 'x'")

    with thread_server(store=Broken()) as s:
        client = sk.Shared(s.address)
        with pytest.raises(sk.CorruptionError, match="checksum failed") as info:
            client.get("x")
        assert isinstance(info.value, ServerError)
        assert info.value.remote_type == "CorruptionError"
        client.append({"still": b"works"})
        client.close()


def test_partd_facade():
    import shuffle_kit.partd as partd

    server = partd.Server()
    try:
        client = partd.Client(server.address)
        client.append({"x": b"Hello", ("y", 1): b"a"})
        client.append({"x": b"World"})
        assert client.get(["x", ("y", 1)]) == [b"HelloWorld", b"a"]
        assert server.partd is server.store
        client.close()
    finally:
        server.close()
    with pytest.raises(ValueError, match="CURVE"):
        partd.Server(bind="tcp://*:0")


@given(st.lists(st.binary(max_size=40) | st.integers(0, 3).map(lambda n: os.urandom(P.LARGE * n // 2)), max_size=12),
       st.integers(1, 64))
def test_record_framing_round_trips(records, group):
    frames = P.pack_records(records, group=group, large=48)
    assert [bytes(r) for r in P.unpack_records(frames[0], frames[1:])] == records
    assert P.unpack_records(frames[0], frames[1:], as_bytes=True) == records
    joined = P.pack_joined([records, [], records[:1]], group=group, large=48)
    unpacked = [bytes(r) for r in P.unpack_records(joined[0], joined[1:])]
    assert unpacked == [b"".join(records), b"", b"".join(records[:1])]


def test_an_oversized_append_names_its_size_and_the_limit():
    limit = 1 << 20
    with thread_server(max_message_bytes=limit) as server:
        client = sk.Shared(server.address, timeout=10)
        client.append({"a": b"kept"})
        with pytest.raises(MessageTooLarge) as info:
            client.append({"a": b"x" * (2 * limit), "b": b"y"})
        message = str(info.value)
        assert f"{limit:,}" in message and f"{2 * limit:,}" in message and "max_message_bytes" in message
        assert client.get(["a", "b"]) == [b"kept", b""]  # nothing of it was stored
        client.append({"a": b"!"})  # the client goes on
        assert client.get("a") == b"kept!"
        client.close()


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_a_dead_server_is_given_up_in_seconds_not_after_the_timeout(tmp_path, transport):
    address = f"ipc://{tmp_path}/s" if transport == "ipc" else "tcp://127.0.0.1:0"
    server = sk.Server(sk.Dict(), address)
    client = sk.Shared(server.address, timeout=60, heartbeat=0.2)
    client.append({"a": b"1"})
    assert client.get("a") == b"1"
    server.close()  # the server dies (as with its host): its port refuses connections
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="no server at|lost the connection"):
        client.get("a")
    assert time.monotonic() - start < 5  # 5 heartbeats, not the 60 s timeout
    never = sk.Shared(f"ipc://{tmp_path}/never", timeout=60, heartbeat=0.2)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="no server at"):
        never.append({"a": b"1"})
    assert time.monotonic() - start < 5
    client.close()
    never.close()


def test_a_server_that_never_answers_the_handshake_is_given_up_in_seconds():
    # a listening socket nobody reads: the kernel accepts the connection, as it does for
    # a stopped server process, and nothing ever answers
    with socket.create_server(("127.0.0.1", 0)) as silent:
        client = sk.Shared(f"tcp://127.0.0.1:{silent.getsockname()[1]}", timeout=60, heartbeat=0.2)
        start = time.monotonic()
        with pytest.raises(ConnectionError, match="did not answer the handshake"):
            client.ping()
        assert time.monotonic() - start < 5  # 5 heartbeats, not ZeroMQ's 30 s handshake timeout
        client.close()


IDLE_CLIENT_OF_A_DEAD_SERVER = """
import gc, sys, time
import shuffle_kit as sk
from shuffle_kit.errors import ConnectionLost

server = sk.Server()
idle = sk.Shared(server.address, heartbeat=0.01, timeout=60)  # reconnects every millisecond
for attempt in range(50):  # a 50 ms heartbeat timeout: a loaded machine may miss one
    try:
        idle.append({"a": b"1"})  # its connection now waits in the pool
        break
    except ConnectionLost:
        time.sleep(0.1)
else:
    sys.exit("no append reached the live server")
server.close()
time.sleep(float(sys.argv[1]))  # thousands of reconnection attempts, each a monitor event
with sk.Server() as again:
    other = sk.Shared(again.address, timeout=60)
    other.append({"b": b"2"})
    assert other.get("b") == b"2"
    other.close()
del idle
gc.collect()
print("ok", flush=True)
"""


def test_an_idle_client_of_a_dead_server_blocks_nothing():
    """A connection waiting in the pool while its server is gone keeps reconnecting; were
    its monitor's events not drained, ZeroMQ's I/O thread would block once the monitor is
    full (every other client of the process could then not connect), and closing the
    client would wait for that thread forever, holding the GIL."""
    result = subprocess.run(
        [sys.executable, "-c", IDLE_CLIENT_OF_A_DEAD_SERVER, "6"], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr[-2000:]
