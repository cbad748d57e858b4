"""``shuffle-kit serve`` as a real subprocess: what it does on SIGTERM, and one-line errors
for addresses it cannot or will not bind (issue 14, items 11 and 12)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import shuffle_kit as sk
from shuffle_kit.stores.remote.auth import generate_keys
from tests.helpers.servers import ServerProcess

HELD = 32 << 20
FILE_SIZE_LIMIT = 1 << 20  # far less than what the server holds


@contextmanager
def _serving(*args: str, **popen) -> Iterator[subprocess.Popen]:
    """``shuffle-kit serve ARGS`` as a subprocess, killed at the end if it still runs."""
    proc = subprocess.Popen([sys.executable, "-m", "shuffle_kit", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()


def _limit_file_size() -> None:
    # writing past this kills the process with SIGXFSZ: a flush of what it holds would
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_sigterm_drops_a_temporary_store_without_writing_it(tmp_path):
    spill = tmp_path / "tmp"
    spill.mkdir()
    address = f"ipc://{tmp_path}/server.sock"
    env = dict(os.environ, TMPDIR=str(spill), PYTHONDONTWRITEBYTECODE="1")
    with _serving("--address", address, env=env, preexec_fn=_limit_file_size) as proc:
        assert proc.stdout.readline().strip() == address, proc.stderr.read()
        client = sk.Shared(address, timeout=10)
        chunk = os.urandom(1 << 20)
        for i in range(HELD >> 20):
            client.append({("k", i): chunk})
        assert client.stats()["memory_bytes"] >= HELD
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, f"exit {proc.returncode}: {proc.stderr.read()}"
        assert proc.stderr.read() == ""
        assert os.listdir(spill) == []  # the temporary store is gone


def test_sigterm_still_flushes_a_store_given_by_path(tmp_path):
    server = ServerProcess(tmp_path)
    try:
        client = sk.Shared(server.address, timeout=10)
        data = {("k", i): os.urandom(1 << 16) for i in range(64)}
        client.append(data)
        client.close()
        assert server.signal(signal.SIGTERM) == 0
        store = sk.File(server.path)
        assert store.get(list(data)) == list(data.values())
        store.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    "address, words",
    [
        ("ipc:///nonexistent-dir/sub/server.sock",
         ["cannot bind ipc:///nonexistent-dir/sub/server.sock", "No such file"]),
        ("tcp://127.0.0.1:99999", ["99999", "1-65535"]),
        ("tcp://127.0.0.1", ["needs a host and a port", "tcp://127.0.0.1"]),
        ("udp://127.0.0.1:5", ["udp://127.0.0.1:5"]),
        ("ipc://@shuffle-kit-test", ["ipc://@shuffle-kit-test", "abstract", "CURVE"]),
    ],
)
def test_serve_refuses_an_address_in_one_line(address, words):
    r = subprocess.run([sys.executable, "-m", "shuffle_kit", "serve", "--address", address],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("shuffle-kit: error: "), r.stderr
    for word in words:
        assert word in lines[0]


def test_serve_names_a_missing_key_file(tmp_path):
    missing = str(tmp_path / "no-such.key")
    r = subprocess.run([sys.executable, "-m", "shuffle_kit", "serve", "--secret-key-file", missing,
                        "--authorized-keys-file", missing], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and missing in r.stderr, r.stderr


def test_abstract_ipc_socket_needs_curve():
    with pytest.raises(ValueError, match="abstract socket"):
        sk.Server(address="ipc://@shuffle-kit-test")
    public, secret = generate_keys()
    # a name of this process alone: two copies of the suite may run side by side
    address = f"ipc://@shuffle-kit-test-curve-{os.getpid()}"
    server = sk.Server(address=address, secret_key=secret, authorized_keys=[public])
    try:
        client = sk.Shared(server.address, server_key=server.public_key, secret_key=secret, timeout=10)
        client.append({"a": b"1"})
        assert client.get("a") == b"1"
        client.close()
    finally:
        server.close()



@pytest.mark.parametrize("flag", ["-v", "-q"])
def test_verbose_logs_to_stderr_and_quiet_keeps_the_address(tmp_path, flag):
    address = f"ipc://{tmp_path}/server.sock"
    with _serving("--address", address, flag) as proc:
        assert proc.stdout.readline().strip() == address  # what others read, whatever the flag
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert proc.stdout.read() == ""
        err = proc.stderr.read()
        if flag == "-v":
            assert "INFO shuffle_kit.cli: serving" in err and address in err
        else:
            assert err == ""


def test_serve_has_no_json_summary():
    # its stdout is already for programs (the address, then the public key) and it ends on a
    # signal, with nobody left to read a summary
    r = subprocess.run([sys.executable, "-m", "shuffle_kit", "serve", "--json"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "unrecognized arguments: --json" in r.stderr and r.stdout == ""
