"""Helpers for the Server/Shared tests: servers in threads and in subprocesses, all
bound to 127.0.0.1 or ipc:// in a temporary directory, all stopped by their fixtures."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import shuffle_kit as sk


@contextmanager
def thread_server(**kwargs) -> Iterator[sk.Server]:
    server = sk.Server(**kwargs)
    try:
        yield server
    finally:
        server.close()
        assert not server.running


class ServerProcess:
    """``python -m shuffle_kit serve ...`` in a subprocess."""

    def __init__(self, tmp_path, *args: str, path: str | None = None):
        self.path = path or str(tmp_path / "store")
        self.address = f"ipc://{tmp_path}/server.sock"
        cmd = [sys.executable, "-m", "shuffle_kit", "serve", "--address", self.address, "--path", self.path, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != self.address:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read()}")

    def signal(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def append_worker(address: str, c: int, n: int) -> None:
    """A client process: ``n`` appends to its own key and to a key all clients share."""
    import struct

    client = sk.Shared(address, timeout=60)
    for i in range(n):
        client.append({("own", c): b"%d," % i, "all": struct.pack("<II", c, i)})
    client.close()


SILENT_SERVER = """
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    s.recv_multipart()  # never answers
"""
