"""A store served by a :class:`~shuffle_kit.stores.remote.server.Server` over ZeroMQ.

``Shared(address)`` is a store like any other (codecs nest on it) whose data lives in
a server that any number of processes, on this machine or others, talk to at once.

>>> from shuffle_kit import Server, Shared
>>> with Server() as server:
...     s = Shared(server.address)
...     s.append({'x': b'ab'}); s.append({'x': b'cd', ('y', 1): b'e'})
...     s.get(['x', ('y', 1)]), [bytes(r) for r in s.get_records(['x'])[0]]
...     s.close()
([b'abcd', b'e'], [b'ab', b'cd'])
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import zmq

from ...defaults import CLIENT_TIMEOUT
from ...errors import ArgumentTypeError, ConnectionLost, JobError, MalformedMessage, MessageTooLarge
from ..base import Record, Store, as_key_list, as_record, flatten, get_nested, nested_get
from ..keys import Key, encode_key, encode_keys
from . import protocol as P
from .auth import KeyLike, as_key
from .auth import public_key as derive_public_key
from .zmq_events import close_monitored, pending_event_values

DEFAULT_TIMEOUT = CLIENT_TIMEOUT
_SMALL_PART = 1 << 16  # see Shared._check_size

_context: zmq.Context | None = None
_context_pid: int | None = None
_context_lock = threading.Lock()


def _process_context() -> zmq.Context:
    """One ZeroMQ context per process (a forked child makes its own)."""
    global _context, _context_pid
    with _context_lock:
        if _context is None or _context_pid != os.getpid():
            _context = zmq.Context()
            _context_pid = os.getpid()
        return _context


_MONITORED = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_CONNECT_RETRIED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class _Connection:
    """One DEALER socket (used by one thread at a time) and a monitor of its connection.

    ``IMMEDIATE`` keeps requests from queueing for a server that is not there; the
    monitor reports a lost connection at once (a killed server), and ZeroMQ heartbeats,
    answered by the server's I/O thread even while it is busy, find a silent peer. A
    server that refuses every connection attempt (it died, with or without its host) is
    given up after ``5 * heartbeat`` seconds, not after the whole ``timeout``; so is one
    that accepts the connection but never answers the handshake (its process is stopped
    or its host hangs: the kernel still accepts).

    The monitor must be read: ZeroMQ's I/O thread writes an event for every reconnection
    attempt, and once a monitor holds as many as its pipe takes (about 2,000) that thread
    blocks on the next one, stalling every socket of the process's context. A connection
    that waits in the pool is drained by :class:`_PoolSweeper`; ``close`` drains before it
    stops the monitor (stopping it waits for the I/O thread, holding the GIL).
    """

    def __init__(self, context: zmq.Context, address: str, curve: tuple[bytes, bytes, bytes] | None, heartbeat: float):
        self.address = address
        sock = context.socket(zmq.DEALER)
        sock.linger = 0
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.rcvhwm = 0
        ivl = max(int(heartbeat * 1000), 1)
        sock.setsockopt(zmq.HEARTBEAT_IVL, ivl)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5 * ivl)
        sock.setsockopt(zmq.CONNECT_TIMEOUT, 5 * ivl)  # one attempt at a host that does not answer
        sock.setsockopt(zmq.HANDSHAKE_IVL, 5 * ivl)  # ZeroMQ waits 30 s by default
        # ZeroMQ's default (100 ms) at the default heartbeat; it sets how fast the events of a
        # dead server's connection pile up, so it scales with the interval the sweeps follow
        sock.setsockopt(zmq.RECONNECT_IVL, max(ivl // 10, 1))
        self.give_up = 5 * ivl / 1000  # seconds of failed attempts before a server counts as gone
        self.first_failure: float | None = None
        if curve is not None:
            server_key, public, secret = curve
            sock.curve_serverkey = server_key
            sock.curve_publickey = public
            sock.curve_secretkey = secret
        self.monitor = sock.get_monitor_socket(_MONITORED)
        sock.connect(address)
        self.sock = sock
        self.connected = False  # a finished handshake, not yet disconnected
        self.lost = False  # disconnected since it was made: not worth keeping in the pool
        self.poller = zmq.Poller()
        self.poller.register(sock, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)

    def idle_and_usable(self) -> bool:
        """Drain the monitor of a connection that waits in the pool; False once its server
        has gone (it disconnected, or attempts to reconnect failed)."""
        for event, _ in pending_event_values(self.monitor):
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.connected = True
                self.lost = False
                self.first_failure = None
            elif event in (zmq.EVENT_DISCONNECTED, zmq.EVENT_CONNECT_RETRIED):
                self.connected = False
                self.lost = True
        return not self.lost

    def _events(self, waiting_reply: bool) -> None:
        """Drain the monitor; raise ConnectionError for a refused or (during a request) lost
        connection."""
        for event, value in pending_event_values(self.monitor):
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.connected = True
                self.lost = False
                self.first_failure = None
            elif event == zmq.EVENT_CONNECT_RETRIED and self.first_failure is None:
                self.first_failure = time.monotonic()
            elif event == zmq.EVENT_DISCONNECTED:
                was = self.connected
                self.connected = False
                self.lost = True
                if waiting_reply and was:
                    raise ConnectionLost(f"lost the connection to the server at {self.address}")
            elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and value == errno.EAGAIN:  # HANDSHAKE_IVL ran out
                raise ConnectionError(
                    f"the server at {self.address} accepted the connection but did not answer the handshake "
                    f"within {self.give_up:g} s (its process stopped, or its host hangs)"
                )
            elif event & _HANDSHAKE_FAILED:
                why = "refused: authentication failed" if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH else (
                    "handshake failed (wrong keys or not a shuffle_kit server?)")
                raise ConnectionError(f"server at {self.address} {why}")
        # a request can be sent into a connection that is already going (the disconnect
        # reported before the socket dropped it): no reply comes, and none can come while
        # every attempt to reconnect fails
        if waiting_reply and not self.connected and self.first_failure is not None and (
            time.monotonic() - self.first_failure > self.give_up
        ):
            raise ConnectionError(
                f"lost the connection to the server at {self.address}: every attempt to reconnect failed "
                f"for {self.give_up:g} s"
            )

    def call(self, frames: list, rid: int, timeout: float, on_reply: Callable[[int, list], bool]) -> None:
        """Send ``frames``; hand each reply message for ``rid`` to ``on_reply(flags, frames)``
        until it returns False. ``timeout``: the longest wait without progress."""
        self._events(False)
        deadline = time.monotonic() + timeout
        sock = self.sock
        while True:
            try:
                sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
                break
            except zmq.Again:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionError(f"could not reach a server at {self.address} within {timeout:g} s")
            if self.first_failure is not None and time.monotonic() - self.first_failure > self.give_up:
                raise ConnectionError(
                    f"no server at {self.address}: every connection attempt failed for {self.give_up:g} s"
                )
            # no connection yet: wait for the monitor to report one
            if self.monitor.poll(min(left, 0.05) * 1000):
                self._events(False)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply from the server at {self.address} within {timeout:g} s")
            ready = dict(self.poller.poll(int(min(left, self.give_up) * 1000) + 1))
            if sock not in ready:
                self._events(True)
                continue
            msg = sock.recv_multipart(copy=False)
            status, flags, got = P.parse_header(msg[0].buffer)
            if got != rid:
                continue  # a late reply to an abandoned request
            if status != P.OK:
                parts = [bytes(f.buffer).decode("utf-8", "replace") for f in msg[1:3]]
                parts += [""] * (2 - len(parts))
                raise P.error_from_reply(status, parts[0], parts[1])
            if not on_reply(flags, msg[1:]):
                return
            deadline = time.monotonic() + timeout  # a streaming reply is progress

    def close(self) -> None:
        """Close without waiting (:func:`~.zmq_events.close_monitored`)."""
        close_monitored(self.sock, self.monitor, linger=0)


class _PoolSweeper:
    """One daemon thread per process that drains the monitors of the connections waiting
    in the pools of live ``Shared`` clients and closes those whose server has gone, so an
    idle client of a dead server never fills its monitor (see :class:`_Connection`).

    It wakes every ``heartbeat`` of the most eager client (at most every second): a
    connection retries every tenth of a heartbeat, so a monitor holds a few dozen events
    at most between two sweeps.
    """

    def __init__(self) -> None:
        self._clients: weakref.WeakSet[Shared] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._pid: int | None = None

    def watch(self, client: Shared) -> None:
        with self._lock:
            self._clients.add(client)
            if self._pid != os.getpid():  # none yet, or the parent's (not running in a fork)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="shuffle_kit pool sweeper", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                clients = list(self._clients)
            interval = min((c.heartbeat for c in clients), default=1.0)
            for client in clients:
                client._sweep_pool()
            del clients  # no strong reference while asleep: a client can be collected
            time.sleep(min(max(interval, 0.01), 1.0))


_sweeper = _PoolSweeper()


class Shared(Store):
    """A store held by a server at ``address`` (``ipc://...`` or ``tcp://...``).

    ``timeout``: seconds any call may wait without progress (connecting, or for the next
    part of a reply) before raising ``ConnectionError``/``TimeoutError``; every method
    takes ``timeout=`` too. For a CURVE server pass ``server_key`` (its public key) and
    this client's ``secret_key`` (``public_key`` is derived from it if omitted).

    Each request is applied atomically by the server, so the ``lock`` arguments of the
    store API are accepted and ignored, and threads share a ``Shared`` freely (each
    thread in a call uses a socket of its own). A pickled ``Shared`` reconnects to
    the same address; with CURVE keys the pickle carries this client's secret key, so
    send it only where that key may go. ``close()`` closes this client's sockets and never touches the
    server's data; leaving a ``with Shared(...)`` block closes too (``drop()`` is
    explicit).
    """

    def __init__(
        self,
        address: str | bytes,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        server_key: KeyLike | None = None,
        secret_key: KeyLike | None = None,
        public_key: KeyLike | None = None,
        heartbeat: float = 1.0,
    ):
        if isinstance(address, bytes):
            address = address.decode()
        if not isinstance(address, str) or "://" not in address:
            raise JobError(f"Shared: not a ZeroMQ address: {address!r} (expected ipc://PATH or tcp://HOST:PORT)")
        self.address = address
        self.timeout = float(timeout)
        self.heartbeat = float(heartbeat)
        if server_key is not None:
            if secret_key is None:
                raise JobError("a CURVE client needs its secret_key as well as the server_key")
            secret = as_key(secret_key, "secret key")
            public = as_key(public_key, "public key") if public_key is not None else derive_public_key(secret)
            self._curve: tuple[bytes, bytes, bytes] | None = (as_key(server_key, "server key"), public, secret)
        else:
            self._curve = None
        self._setup()

    def _setup(self) -> None:
        super().__init__()
        self._pool: list[_Connection] = []
        self._pool_lock = threading.Lock()
        self._pid = os.getpid()
        self._ids = itertools.count(1)
        self._tables: dict[tuple, bytes] = {}  # see _key_table

    # -- connections ----------------------------------------------------------------------
    def _checkout(self) -> _Connection:
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            self._setup()
        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        _sweeper.watch(self)
        return _Connection(_process_context(), self.address, self._curve, self.heartbeat)

    def _sweep_pool(self) -> None:
        """Drain the waiting connections' monitors; close those whose server has gone."""
        if not self._pool_lock.acquire(blocking=False):
            return  # in use: the next sweep comes soon enough
        try:
            if self._pid != os.getpid():
                return
            gone = [c for c in self._pool if not c.idle_and_usable()]
            self._pool = [c for c in self._pool if c not in gone]
        finally:
            self._pool_lock.release()
        for conn in gone:
            conn.close()

    def _call(
        self, build: Callable[[int], list], timeout: float | None,
        on_reply: Callable[[int, list], bool] | None = None,
    ) -> None:
        conn = self._checkout()
        rid = next(self._ids)
        frames = build(rid)
        try:
            conn.call(frames, rid, self.timeout if timeout is None else float(timeout), on_reply or _no_reply)
        except ConnectionError as e:
            conn.close()
            self._check_size(frames, e)
            raise
        except BaseException:
            conn.close()  # its state is unknown: a late reply may still arrive
            raise
        with self._pool_lock:
            if self._pid != os.getpid():
                conn.close()
            else:
                self._pool.append(conn)

    def _check_size(self, frames: list, error: ConnectionError) -> None:
        """Raise MessageTooLarge if the server dropped the connection because a part of
        ``frames`` is larger than it accepts: ZeroMQ says nothing else, so ask it."""
        largest = max(memoryview(f).nbytes for f in frames)
        if largest <= _SMALL_PART:
            return  # not worth a question: no server limits parts this small
        try:
            limit = self.stats(timeout=min(self.timeout, 5.0)).get("max_message_bytes")
        except Exception:  # the server is gone after all: the connection error stands
            return
        if limit is not None and largest > limit:
            total = sum(memoryview(f).nbytes for f in frames)
            raise MessageTooLarge(
                f"the server at {self.address} accepts message parts of at most {limit:,} bytes "
                f"(max_message_bytes) and dropped a request of {total:,} bytes with a part of {largest:,}: "
                "send smaller values, or start the server with a larger max_message_bytes"
            ) from error

    def _fetch(
        self, command: int, kbs: Sequence[bytes], timeout: float | None, joined: bool = False
    ) -> list[list[Record]]:
        """Records of ``kbs`` (views of the received frames), or with ``joined`` each key's
        bytes joined by the server, as ``[[bytes], ...]``."""
        assembler = P.RecordsAssembler(len(kbs), as_bytes=joined)
        flags = P.FLAG_JOINED if joined else 0

        def on_reply(flags: int, frames: list) -> bool:
            assembler.feed([f.buffer for f in frames])
            return bool(flags & P.FLAG_MORE)

        self._call(lambda rid: P.keys_request(command, rid, kbs, flags), timeout, on_reply)
        return assembler.result()

    def _joined(self, kbs: Sequence[bytes], timeout: float | None = None) -> list[bytes]:
        return [bytes(r[0]) for r in self._fetch(P.GET, kbs, timeout, joined=True)]

    # -- the store interface, applied by the server ---------------------------------------
    def _append(
        self, kbs: Sequence[bytes], values: Sequence[Record], batch_id: bytes | None, timeout: float | None = None
    ) -> None:
        self._call(lambda rid: P.append_request(rid, kbs, values, batch_id), timeout)

    def _records(self, kbs: Sequence[bytes], timeout: float | None = None) -> list[list[Record]]:
        return self._fetch(P.GET, kbs, timeout)

    def _iset(self, kb: bytes, value: Record, timeout: float | None = None) -> None:
        self._call(lambda rid: P.iset_request(rid, kb, value), timeout)

    def _delete(self, kbs: Sequence[bytes], timeout: float | None = None) -> None:
        self._call(lambda rid: P.keys_request(P.DELETE, rid, kbs), timeout)

    def _drop(self, timeout: float | None = None) -> None:
        self._call(lambda rid: P.simple_request(P.DROP, rid), timeout)

    def append(
        self, data: Mapping[Key, Any], lock: bool = True, *, batch_id: bytes | None = None,
        timeout: float | None = None, **kwargs: Any,
    ) -> None:
        """Append each value to its key, all or nothing; returns once the server applied it."""
        table = self._key_table(data)
        values = list(data.values())
        if not set(map(type, values)) <= {bytes}:  # all bytes is the common case
            values = [as_record(k, v) for k, v in zip(data, values)]
        if batch_id is not None and not isinstance(batch_id, bytes):
            raise ArgumentTypeError(f"batch_id must be bytes, not {type(batch_id).__name__}")
        if values:
            self._call(lambda rid: P.append_request(rid, table, values, batch_id), timeout)

    def _key_table(self, data: Mapping[Key, Any]) -> bytes:
        """The packed keys of ``data``. A writer appends to the same keys again and again,
        so recent tables of plain str/int keys are remembered (other types always go
        through ``encode_key``: ``True == 1``, but only ``1`` is a key)."""
        if set(map(type, data)) <= {str, int}:
            keys = tuple(data)
            table = self._tables.get(keys)
            if table is None:
                table = P.pack_keys(encode_keys(keys))
                if len(self._tables) >= 16:
                    self._tables.clear()
                self._tables[keys] = table
            return table
        return P.pack_keys(encode_keys(data))

    def get_records(
        self, keys: Sequence[Key], lock: bool = True, *, timeout: float | None = None
    ) -> list[list[Record]]:
        """The records of each key, in append order, as views of the received frames."""
        return self._records(encode_keys(keys), timeout)

    def get(self, keys: Any, lock: bool = True, *, timeout: float | None = None, **kwargs: Any) -> Any:
        return get_nested(keys, lambda flat: self._joined(encode_keys(flat), timeout))

    def iset(self, key: Key, value: Any, lock: bool = True, *, timeout: float | None = None, **kwargs: Any) -> None:
        self._iset(encode_key(key), as_record(key, value), timeout)

    def delete(self, keys: Any, lock: bool = True, *, timeout: float | None = None, **kwargs: Any) -> None:
        self._delete(encode_keys(as_key_list(keys)), timeout)

    def pop(self, keys: Any, *, timeout: float | None = None, **kwargs: Any) -> Any:
        """``get`` then ``delete``, atomically on the server."""
        flat = list(flatten(keys)) if isinstance(keys, list) else [keys]
        kbs = encode_keys(flat)
        values = [r[0] for r in self._fetch(P.POP, kbs, timeout, joined=True)]
        if not isinstance(keys, list):
            return values[0]
        return nested_get(keys, dict(zip(flat, values))) if any(isinstance(k, list) for k in keys) else values

    def drop(self, *, timeout: float | None = None) -> None:
        """Remove every key from the server's store."""
        self._drop(timeout)

    # -- server control ---------------------------------------------------------------
    def ping(self, *, timeout: float | None = None) -> float:
        """Round-trip time to the server in seconds."""
        start = time.perf_counter()
        self._call(lambda rid: P.simple_request(P.PING, rid), timeout)
        return time.perf_counter() - start

    def flush(self, *, timeout: float | None = None) -> None:
        """Have the server write everything it holds in memory to its disk store."""
        self._call(lambda rid: P.simple_request(P.FLUSH, rid), timeout)

    def shutdown_server(self, *, timeout: float | None = None) -> None:
        """Ask the server to stop, as ``Server.close()`` would (flushing a persistent
        store first). Only a server started with ``remote_shutdown=True`` agrees; any
        other raises ``Refused``."""
        try:
            self._call(lambda rid: P.simple_request(P.SHUTDOWN, rid), timeout)
        except ConnectionLost:
            # the server left while we waited: what was asked (on a busy machine its reply
            # may not be seen before its leaving is)
            pass

    def stats(self, *, timeout: float | None = None) -> dict:
        """The server's statistics (see :meth:`Server.stats`)."""
        out: dict = {}

        def on_reply(flags: int, frames: list) -> bool:
            import json

            if len(frames) != 1:
                raise MalformedMessage("stats reply is one JSON frame")
            out.update(json.loads(bytes(frames[0].buffer)))
            return False

        self._call(lambda rid: P.simple_request(P.STATS, rid), timeout, on_reply)
        return out

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Close this client's sockets (the server keeps its data); calls reconnect.
        Never waits for the server, which may be gone."""
        with self._pool_lock:
            self._close_pool()

    def _close_pool(self) -> None:  # the pool lock held
        pool, self._pool = self._pool, []
        if self._pid == os.getpid():
            for conn in pool:
                conn.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Only a thread frozen at interpreter exit can hold the lock of a client nobody
        # refers to: then the sockets are left to the process's end rather than waited for.
        try:
            if self._pool_lock.acquire(blocking=False):
                try:
                    self._close_pool()
                finally:
                    self._pool_lock.release()
        except Exception:
            pass

    def __getstate__(self) -> dict[str, Any]:
        return {"address": self.address, "timeout": self.timeout, "curve": self._curve, "heartbeat": self.heartbeat}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.address = state["address"]
        self.timeout = state["timeout"]
        self._curve = state["curve"]
        self.heartbeat = state["heartbeat"]
        self._setup()

    def __repr__(self) -> str:
        return f"Shared({self.address!r})"


def _no_reply(flags: int, frames: list) -> bool:
    if frames:
        raise MalformedMessage(f"unexpected {len(frames)} frames in a reply")
    return False
