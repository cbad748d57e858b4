"""Server: many clients, spilling, hostile messages, killed servers, CURVE, addresses."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import zmq

import shuffle_kit as sk
from shuffle_kit.errors import ServerError
from shuffle_kit.stores.keys import MAX_KEY_BYTES, encode_key
from shuffle_kit.stores.remote import protocol as P
from shuffle_kit.stores.remote.auth import generate_keys
from tests.helpers.servers import SILENT_SERVER, ServerProcess, append_worker, thread_server, wait_until


@pytest.fixture(autouse=True, scope="module")
def no_leaked_server_threads():
    yield
    assert wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("shuffle_kit server")])


# -- many client processes -----------------------------------------------------------------
def test_16_client_processes_every_byte_in_order():
    n_clients, n = 16, 500
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["shuffle_kit", "tests.helpers.servers"])
    with thread_server() as server:
        procs = [ctx.Process(target=append_worker, args=(server.address, c, n)) for c in range(n_clients)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * n_clients
        client = sk.Shared(server.address)
        expected = b"".join(b"%d," % i for i in range(n))
        assert client.get([("own", c) for c in range(n_clients)]) == [expected] * n_clients
        (records,) = client.get_records(["all"])
        assert len(records) == n_clients * n
        seen: dict[int, list[int]] = {c: [] for c in range(n_clients)}
        for r in records:
            c, i = struct.unpack("<II", r)
            seen[c].append(i)
        assert all(seq == list(range(n)) for seq in seen.values())
        assert server.stats()["keys"] == n_clients + 1
        client.close()


# -- spilling ------------------------------------------------------------------------------
def test_spill_keeps_everything_in_order(tmp_path):
    n_keys, n_appends, size = 10, 100, 50_000  # 50 MB through a 1 MB memory limit
    with thread_server(path=str(tmp_path / "s"), memory_limit=1e6) as server:
        client = sk.Shared(server.address)
        for i in range(n_appends):
            client.append({k: struct.pack("<II", k, i) + bytes([i % 251]) * (size - 8) for k in range(n_keys)})
        stats = client.stats()
        assert stats["memory_bytes"] <= 1e6
        assert stats["spilled_bytes"] >= n_keys * n_appends * size - 1e6
        # received messages stay whole in memory: spilled values must not keep them alive
        assert server.store.fast.nbytes_held <= 1.25 * stats["memory_bytes"] + n_keys * size
        records = client.get_records(list(range(n_keys)))
        for k, rs in enumerate(records):
            assert [len(r) for r in rs] == [size] * n_appends
            assert [struct.unpack_from("<II", r) for r in rs] == [(k, i) for i in range(n_appends)]
            assert all(bytes(r[8:12]) == bytes([i % 251]) * 4 for i, r in enumerate(rs))
        assert client.get(3) == b"".join(bytes(r) for r in records[3])
        client.close()


# -- hostile messages ----------------------------------------------------------------------
_DESTRUCTIVE = {P.DROP, P.DELETE, P.POP}


def _fuzz_message(rng: random.Random) -> list[bytes]:
    rid = rng.getrandbits(64)
    kind = rng.randrange(12)
    keys = P.pack_keys([b"sfuzz"])
    lengths = struct.pack("<Q", 3)
    if kind == 0:  # garbage header
        extra = [rng.randbytes(rng.randrange(8)) for _ in range(rng.randrange(3))]
        return [rng.randbytes(rng.randrange(0, 40))] + extra
    if kind == 1:  # unknown command
        return [P.header(rng.choice([0, *range(10, 256)]), rid), keys]
    if kind == 2:  # another protocol version or magic
        return [struct.pack("<2sBBB3xQ", rng.choice([b"SK", b"XX"]), rng.choice([0, 2, 255]), P.GET, 0, rid), keys]
    if kind == 3:  # wrong frame counts
        cmd = rng.choice([P.APPEND, P.GET, P.ISET, P.PING, P.STATS, P.FLUSH])
        return [P.header(cmd, rid)] + [rng.randbytes(rng.randrange(12)) for _ in range(rng.choice([0, 1, 2, 5, 50]))]
    if kind == 4:  # key tables claiming huge counts or lengths
        table = rng.choice([
            struct.pack("<I", 0xFFFFFFFF),
            struct.pack("<II", 1, 0xFFFFFFFF) + b"sx",
            struct.pack("<II", 2, 2) + b"sx",
            b"\x01\x00",
        ])
        return [P.header(rng.choice([P.GET, P.APPEND]), rid), table, lengths, b"abc"]
    if kind == 5:  # record lengths that lie
        table = rng.choice([
            struct.pack("<Q", 2**63), struct.pack("<QQ", 1, 2), struct.pack("<Q", 4), b"\x01", struct.pack("<Q", 2),
        ])
        return [P.header(P.APPEND, rid), keys, table, b"abc"]
    if kind == 6:  # keys that are not canonical key encodings (non-UTF-8 and friends)
        bad = rng.choice([
            b"s\xff\xfe", b"i01", b"i", b"ix", b"", b"q123", b"t\x09\x00\x00\x00sa", b"s" * (MAX_KEY_BYTES + 2),
        ])
        return [P.header(rng.choice([P.APPEND, P.GET]), rid), P.pack_keys([bad]), lengths, b"abc"]
    if kind == 7:  # an append flagged with a batch id but without frames, or unknown flags
        return [P.header(P.APPEND, rid, rng.choice([1, 4, 255]))]
    if kind == 8:  # iset with two keys
        return [P.header(P.ISET, rid), P.pack_keys([b"sa", b"sb"]), struct.pack("<QQ", 1, 1), b"xy"]
    if kind == 9:  # empty data frame
        return [P.header(P.APPEND, rid), keys, struct.pack("<Q", 0), b""]
    # a valid message with a few bytes flipped
    msg = [bytes(f) for f in P.append_request(rid, [b"sfuzz", encode_key(("fuzz", 1))], [b"abc", b"de"], None)]
    for _ in range(rng.randrange(1, 4)):
        f = rng.randrange(len(msg))
        if msg[f]:
            b = bytearray(msg[f])
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            msg[f] = bytes(b)
    try:
        if P.parse_header(msg[0])[0] in _DESTRUCTIVE:
            return [b"x"]  # hostile, but a destructive command is a legal request
    except ServerError:
        pass
    return msg


def test_fuzz_malformed_messages_never_stop_the_server():
    rng = random.Random(4)
    with thread_server() as server:
        client = sk.Shared(server.address, timeout=10)
        precious = {("precious", i): os.urandom(100 + i) for i in range(20)}
        client.append(precious)
        client.iset("set-once", b"1")
        ctx = zmq.Context()
        raw = ctx.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(server.address)
        replies = statuses = 0
        n = 3000
        try:
            for start in range(0, n, 100):
                for _ in range(100):
                    raw.send_multipart(_fuzz_message(rng))
                # every request gets exactly one reply (or one stream ending without MORE)
                while replies < start + 100:
                    assert raw.poll(10_000), "the server stopped answering"
                    reply = raw.recv_multipart()
                    status, flags, _ = P.parse_header(reply[0])
                    if not flags & P.FLAG_MORE:
                        replies += 1
                        statuses += status != P.OK
        finally:
            raw.close(0)
            ctx.term()
        assert server.running
        assert statuses > n * 0.8
        assert server.stats()["errors"] >= statuses
        assert client.get(list(precious)) == list(precious.values())
        assert client.get("set-once") == b"1"
        client.append({"after": b"ok"})
        assert client.get("after") == b"ok"
        client.close()


# -- killed and stopped server processes -------------------------------------------------
def test_killed_server_process(tmp_path):
    server = ServerProcess(tmp_path)
    try:
        client = sk.Shared(server.address, timeout=60)  # a loaded machine may take seconds
        flushed = {k: os.urandom(1000) for k in range(50)}
        client.append(flushed)
        client.flush()
        client.append({"unflushed": b"maybe lost"})
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(30)
        start = time.monotonic()
        with pytest.raises(ConnectionError):  # the lost connection, not the 60 s timeout
            client.get(list(flushed))
        assert time.monotonic() - start < 30
        client.close()
        store = sk.File(server.path)
        assert store.get(list(flushed)) == list(flushed.values())
        store.close()
    finally:
        server.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_server_process_stops_cleanly_with_data_flushed(tmp_path, sig):
    server = ServerProcess(tmp_path, "--memory-limit", "10MB")
    try:
        client = sk.Shared(server.address, timeout=10)
        data = {("k", i): os.urandom(200) for i in range(100)}
        client.append(data)
        client.iset("once", b"1")
        client.close()
        assert server.signal(sig) == 0
        assert not os.path.exists(server.address[len("ipc://"):])
        store = sk.File(server.path)
        assert store.get(list(data)) == list(data.values())
        assert store.get("once") == b"1"
        store.close()
    finally:
        server.stop()


def test_server_killed_during_a_request_is_reported_at_once(tmp_path):
    address = f"ipc://{tmp_path}/silent"
    proc = subprocess.Popen([sys.executable, "-c", SILENT_SERVER, address], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        client = sk.Shared(address, timeout=20)
        client_error = []

        def call():
            try:
                client.get("a")
            except Exception as e:  # noqa: BLE001 - checked below
                client_error.append(e)

        t = threading.Thread(target=call)
        start = time.monotonic()
        t.start()
        time.sleep(0.5)  # the request is waiting for its reply
        proc.kill()
        t.join(20)
        assert isinstance(client_error[0], ConnectionError), client_error
        assert "lost the connection" in str(client_error[0])
        assert time.monotonic() - start < 5
        client.close()
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()


def test_explicit_ipc_address_in_use(tmp_path):
    address = f"ipc://{tmp_path}/busy"
    with thread_server(address=address):
        with pytest.raises(OSError, match="in use"):
            sk.Server(address=address)
    with thread_server(address=address) as again:  # a stale socket file is fine
        assert sk.Shared(again.address).ping() < 5


def test_closed_server_refuses_clients():
    server = sk.Server()
    client = sk.Shared(server.address, timeout=60)
    client.append({"a": b"1"})
    server.close()
    with pytest.raises((ConnectionError, TimeoutError)):
        client.get("a")
    client.close()


def test_remote_shutdown_only_when_the_server_allows_it(tmp_path):
    with thread_server() as server:
        client = sk.Shared(server.address, timeout=60)
        client.append({"a": b"1"})
        with pytest.raises(sk.Refused, match="remote_shutdown"):
            client.shutdown_server()
        assert server.running and client.get("a") == b"1", "a refused request changes nothing"
        client.close()

    server = sk.Server(path=tmp_path / "store", remote_shutdown=True)
    client = sk.Shared(server.address, timeout=60)
    client.append({"a": b"2"})
    client.shutdown_server()
    server.block()  # returns once the server thread has stopped
    assert not server.running
    with pytest.raises((ConnectionError, TimeoutError)):
        sk.Shared(server.address, timeout=0.5).ping()
    assert sk.File(tmp_path / "store").get("a") == b"2", "flushed before stopping"
    client.close()


# -- CURVE -------------------------------------------------------------------------------
def test_curve_authorised_client_works_others_are_refused():
    server_public, server_secret = generate_keys()
    good_public, good_secret = generate_keys()
    _, bad_secret = generate_keys()
    with thread_server(address="tcp://127.0.0.1:0", secret_key=server_secret, authorized_keys=[good_public]) as server:
        assert server.public_key == server_public
        good = sk.Shared(server.address, server_key=server.public_key, secret_key=good_secret, timeout=60)
        good.append({"a": b"secret"})
        assert good.get("a") == b"secret"
        assert pickle_roundtrip(good).get("a") == b"secret"

        start = time.monotonic()
        bad = sk.Shared(server.address, server_key=server_public, secret_key=bad_secret, timeout=60)
        with pytest.raises(ConnectionError, match="refused"):
            bad.get("a")
        plain = sk.Shared(server.address, timeout=60)
        with pytest.raises(ConnectionError):
            plain.get("a")
        assert time.monotonic() - start < 30  # refused at the handshake, not after the timeouts
        assert good.stats()["requests"] == 4  # append, two gets and stats: the others never got in
        for c in (good, bad, plain):
            c.close()


def pickle_roundtrip(obj):
    import pickle

    return pickle.loads(pickle.dumps(obj))


# -- addresses ---------------------------------------------------------------------------
def test_default_address_is_a_private_ipc_socket():
    server = sk.Server()
    try:
        assert server.address.startswith("ipc://")
        directory = os.path.dirname(server.address[len("ipc://"):])
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    finally:
        server.close()
    assert not os.path.exists(directory)


def test_explicit_addresses(tmp_path):
    with thread_server(address="tcp://127.0.0.1:0") as server:
        assert server.address.startswith("tcp://127.0.0.1:") and not server.address.endswith(":0")
        assert sk.Shared(server.address).ping() < 5
    with thread_server(address=f"ipc://{tmp_path}/explicit".encode()) as server:
        assert server.address == f"ipc://{tmp_path}/explicit"
        assert sk.Shared(server.address).ping() < 5


def test_a_tcp_server_also_listens_on_a_private_ipc_socket():
    server = sk.Server(address="tcp://127.0.0.1:0", local_endpoint=True)
    try:
        assert server.local_address is not None and server.local_address.startswith("ipc://")
        path = server.local_address.removeprefix("ipc://")
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        near, far = sk.Shared(server.local_address), sk.Shared(server.address)
        near.append({"k": b"ab"}, batch_id=b"1")
        far.append({"k": b"ab"}, batch_id=b"1")  # one store behind both: the batch is known
        far.append({"k": b"cd"})
        assert near.get("k") == far.get("k") == b"abcd"
        near.close(), far.close()
    finally:
        server.close()
    assert not os.path.exists(os.path.dirname(path))
    with thread_server(address="tcp://127.0.0.1:0") as plain:  # only when asked
        assert plain.local_address is None
    with thread_server() as ipc:  # an ipc server is local already
        assert ipc.local_address == ipc.address


def test_the_local_endpoint_of_a_killed_server_is_swept_and_a_live_ones_kept(tmp_path, monkeypatch):
    from shuffle_kit.stores.remote.server import sweep_local_endpoints

    # a temporary directory of the test's own: any server started on this machine sweeps
    # the shared one (another copy of the suite too), which would take the killed one's first
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = (
        "import shuffle_kit as sk, sys, time\n"
        "s = sk.Server(address='tcp://127.0.0.1:0', local_endpoint=True)\n"
        "print(s.local_address, flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        killed = child.stdout.readline().strip().removeprefix("ipc://")  # type: ignore[union-attr]
    finally:
        child.kill()
        child.wait(timeout=60)
    live = sk.Server(address="tcp://127.0.0.1:0", local_endpoint=True)
    try:
        assert killed.startswith(str(tmp_path)) and os.path.exists(killed)
        swept = sweep_local_endpoints()
        assert os.path.dirname(killed) in swept and not os.path.exists(os.path.dirname(killed))
        assert live.local_address is not None and os.path.exists(live.local_address.removeprefix("ipc://"))
        assert sk.Shared(live.local_address).ping() < 5
    finally:
        live.close()


@pytest.mark.parametrize("address", ["tcp://*:0", "tcp://0.0.0.0:0", "tcp://eth0:0", "tcp://10.1.2.3:0"])
def test_non_loopback_tcp_requires_keys(address):
    with pytest.raises(ValueError, match="CURVE"):
        sk.Server(address=address)


def test_bad_arguments():
    with pytest.raises(ValueError, match="ipc:// or tcp://"):
        sk.Server(address="inproc://x")
    with pytest.raises(ValueError, match="either"):
        sk.Server(sk.Dict(), path="/tmp/x")
    with pytest.raises(ValueError, match="secret_key"):
        sk.Shared("tcp://127.0.0.1:1", server_key=generate_keys()[0])
    with pytest.raises(ValueError, match="address"):
        sk.Shared("localhost:5")


def test_clients_counts_only_connections_past_the_handshake():
    import socket

    with thread_server(address="tcp://127.0.0.1:0") as server:
        client = sk.Shared(server.address)
        client.ping()
        assert wait_until(lambda: server.stats()["clients"] == 1)
        host, port = server.address[len("tcp://"):].rsplit(":", 1)
        raw = [socket.create_connection((host, int(port))) for _ in range(3)]
        time.sleep(0.2)
        assert server.stats()["clients"] == 1  # no handshake: not a client
        for r in raw:
            r.close()
        time.sleep(0.3)  # their disconnections must not count off the real client
        assert server.stats()["clients"] == 1
        client.close()
        assert wait_until(lambda: server.stats()["clients"] == 0)
