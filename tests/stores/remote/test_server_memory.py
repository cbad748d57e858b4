"""Server memory with clients that read their replies slowly or not at all (issue 14, item 8).

The server runs in a subprocess (``shuffle-kit serve``) so that its RSS alone is measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest
import zmq

import shuffle_kit as sk
from shuffle_kit.stores.keys import encode_key
from shuffle_kit.stores.remote import protocol as P

MiB = 1 << 20
VALUE_BYTES = 300_000
GETS = 2000
GROWTH_BOUND = 64 * MiB  # while 2,000 replies of 300 kB (600 MB) go unread
AFTER_CLOSE_BOUND = 16 * MiB


@pytest.fixture(params=["ipc", "tcp"])
def served(request, tmp_path):
    address = f"ipc://{tmp_path}/server.sock" if request.param == "ipc" else "tcp://127.0.0.1:0"
    cmd = [sys.executable, "-m", "shuffle_kit", "serve", "--address", address]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        bound = proc.stdout.readline().strip()
        assert bound.startswith(request.param), proc.stderr.read()
        yield bound, psutil.Process(proc.pid)
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()


def _rss(process: psutil.Process) -> int:
    return process.memory_info().rss


def _peak_while(process: psutil.Process, seconds: float) -> int:
    peak, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, _rss(process))
        time.sleep(0.02)
    return peak


def _pipelined_gets(context: zmq.Context, address: str, n: int) -> zmq.Socket:
    """A client that sends ``n`` GETs at once and does not read yet (a receive queue of
    one message, so that the replies stay with the server)."""
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.rcvhwm = 1
    sock.connect(address)
    for rid in range(1, n + 1):
        sock.send_multipart(P.keys_request(P.GET, rid, [encode_key("k")], P.FLAG_JOINED))
    return sock


def test_unread_replies_do_not_pile_up_in_the_server(served):
    address, process = served
    value = os.urandom(VALUE_BYTES)
    client = sk.Shared(address)
    client.append({"k": value})
    for _ in range(20):
        assert client.get("k") == value
    time.sleep(0.2)
    base = _rss(process)
    context = zmq.Context()
    try:
        reader = _pipelined_gets(context, address, GETS)
        peak = _peak_while(process, 1.5)
        assert peak - base < GROWTH_BOUND, f"server grew by {(peak - base) / MiB:.0f} MiB"

        # every reply arrives, in order, once the reader reads (none is dropped)
        got = []
        while len(got) < GETS and reader.poll(10_000):
            msg = reader.recv_multipart()
            status, flags, rid = P.parse_header(msg[0])
            assert status == P.OK and not flags
            assert msg[3] == value
            got.append(rid)
        assert got == list(range(1, GETS + 1))
        reader.close()

        # a reader that leaves without reading: what was held for it is let go
        gone = _pipelined_gets(context, address, GETS)
        _peak_while(process, 0.5)
        gone.close()
        assert client.ping() < 10  # the server still answers others
        time.sleep(1.0)
        after = _rss(process)
        assert after - base < AFTER_CLOSE_BOUND, f"server still holds {(after - base) / MiB:.0f} MiB"
    finally:
        context.destroy(0)
        client.close()


def test_a_slow_reader_does_not_hold_up_other_clients(served):
    address, _ = served
    value = os.urandom(VALUE_BYTES)
    client = sk.Shared(address, timeout=10)
    client.append({"k": value})
    context = zmq.Context()
    try:
        stuck = _pipelined_gets(context, address, 200)
        start = time.monotonic()
        for i in range(50):
            client.append({("other", i): b"x"})
            assert client.get(("other", i)) == b"x"
        assert time.monotonic() - start < 5
        stuck.close()
    finally:
        context.destroy(0)
        client.close()


def test_requests_waiting_behind_unread_replies_are_bounded(monkeypatch):
    from shuffle_kit.stores.remote import server as server_module
    from tests.helpers.servers import thread_server, wait_until

    monkeypatch.setattr(server_module, "MAX_WAITING_BYTES", 1 << 20)
    with thread_server() as server:
        value = os.urandom(VALUE_BYTES)
        client = sk.Shared(server.address, timeout=10)
        client.append({"k": value})
        context = zmq.Context()
        try:
            reader = _pipelined_gets(context, server.address, 200)  # its replies fill its queue
            for i in range(40):  # then 4 MB of appends wait behind them: 1 MB is kept
                reader.send_multipart(P.append_request(1000 + i, [encode_key(("late", i))], [bytes(100_000)], None))
            assert wait_until(lambda: server.stats()["errors"] >= 25)
            assert client.get(("late", 0)) == b""  # nothing is applied before its turn
            reader.close()
            # the kept requests are still answered in order (to nobody), the dropped are not
            assert wait_until(lambda: client.get(("late", 0)) == bytes(100_000))
            kept = [i for i in range(40) if client.get(("late", i))]
            assert kept == list(range(len(kept))) and 0 < len(kept) < 15
            assert client.ping() < 10
        finally:
            context.destroy(0)
            client.close()
