"""A ZeroMQ server that holds a store for many client processes (see :class:`Shared`).

A :class:`Server` is not a store itself: it serves one (any :class:`Store`) to clients
in this process, other processes or other hosts, and they reach it through ``Shared``.

The server answers requests one at a time, in one thread, so each request is applied
atomically; it holds appends in memory up to ``memory_limit`` bytes and spills the
largest keys to its on-disk ``File`` store beyond that (see :class:`Buffer`).

>>> from shuffle_kit import Server, Shared
>>> server = Server(memory_limit=100)
>>> client = Shared(server.address)
>>> client.append({'k': b'x' * 80}); client.append({'k': b'y' * 80})    # 'k' spills
>>> client.get('k') == b'x' * 80 + b'y' * 80, server.stats()['keys']
(True, 1)
>>> client.close(); server.close()
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import stat
import tempfile
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import zmq

from ... import lifecycle
from ...defaults import STORE_MEMORY_LIMIT
from ...errors import JobError, MalformedMessage, Refused, ServerError, UnknownCommand
from ..base import Store, Usage
from ..buffer import Buffer
from ..file import File
from ..keys import Key, encode_keys
from ..memory_log import MemoryLog
from . import protocol as P
from .auth import KeyLike, KeySet, as_key, is_loopback
from .auth import public_key as derive_public_key
from .zmq_events import close_monitored, pending_events

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_LIMIT = STORE_MEMORY_LIMIT
# the directory of a tcp server's local endpoint, in the system's temporary directory: a
# scratch directory (shuffle_kit.lifecycle), which sweep_local_endpoints() removes once
# its server's process has died
LOCAL_PREFIX = "shuffle_kit-socket-"
# Replies ZeroMQ may queue for one client before the server stops sending to it: each
# queued reply is a copy of what was asked for, so a client that reads slowly (or not at
# all) would otherwise pin up to ZeroMQ's default of 1000 of them, and ROUTER drops the
# rest without a word.
SEND_QUEUE = 16
# Requests a client may have waiting, while its replies go unread, before more are dropped.
MAX_WAITING_BYTES = 64 << 20
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
_live: weakref.WeakSet[Server] = weakref.WeakSet()


def _close_all() -> None:
    for server in list(_live):
        try:
            server.close()
        except Exception:
            logger.debug("could not close %r at exit", server, exc_info=True)


atexit.register(_close_all)


class Server:
    """Serve ``store`` (default: ``Buffer(MemoryLog(), File(path), memory_limit)``) at ``address``.

    Not a store (codecs do not nest on it): clients read and write the served store
    through :class:`Shared`. In this process ``server.store`` is that store, and the
    server's own ``append``/``get``/``delete``/``drop`` (as partd's server offers) apply
    between requests, as a request would.

    ``address``: default ``ipc://`` in a new private directory (mode 0700); or an explicit
    ``ipc://PATH`` or ``tcp://HOST:PORT`` (port ``0`` or ``*`` picks a free one; the bound
    address is ``server.address``). With ``local_endpoint=True`` a tcp server also listens
    on an ``ipc://`` socket in a new private directory, ``server.local_address`` (for an
    ipc server, its address; else None): clients on this machine that use it skip the TCP
    stack, which costs more CPU per byte on both sides. That directory goes with the
    server, or, if its process is killed, with :func:`sweep_local_endpoints`.

    A tcp address that is not loopback-only requires CURVE: this server's ``secret_key``
    and the clients' ``authorized_keys`` (public keys); clients without an authorised key
    are refused. ``public_key`` is what clients pass as ``server_key``.

    The server runs in a thread of this process (``start=False`` defers it). ``close()``
    stops it; it flushes memory to disk first when the store is persistent (``path``
    given) and drops a temporary store it created. With ``remote_shutdown=True`` a
    client may do the same (``Shared.shutdown_server()``, partd's ``close_server()``).

    A client that does not read its replies gets at most ``SEND_QUEUE`` of them queued;
    the server then holds its next reply and later requests (up to ``MAX_WAITING_BYTES``;
    more are dropped) until it reads, and serves other clients meanwhile.
    """

    def __init__(
        self,
        store: Store | None = None,
        address: str | bytes | None = None,
        *,
        path: str | os.PathLike | None = None,
        memory_limit: float = DEFAULT_MEMORY_LIMIT,
        secret_key: KeyLike | None = None,
        authorized_keys: Iterable[KeyLike] | None = None,
        start: bool = True,
        max_message_bytes: int | None = None,
        reply_chunk: int = P.REPLY_CHUNK,
        remote_shutdown: bool = False,
        local_endpoint: bool = False,
    ):
        if store is not None and path is not None:
            raise JobError("pass either a store or a path for the default store, not both")
        self._owns_store = store is None
        self.persistent = path is not None
        self.store: Store = store if store is not None else Buffer(
            MemoryLog(), File(path) if path is not None else File(), memory_limit=memory_limit
        )
        self.reply_chunk = reply_chunk
        self.max_message_bytes = None if max_message_bytes is None else int(max_message_bytes)
        self.remote_shutdown = remote_shutdown
        self.requests = 0
        self.errors = 0
        self.clients = 0  # connections that finished the handshake, see _on_monitor
        self._connections = 0  # handshakes, less disconnections of connections past theirs
        self._check_keys = P.KeyCheck()
        self._tables: dict[bytes, list[bytes]] = {}  # recent key tables, see _key_table
        self._waiting: dict[bytes, _Waiting] = {}  # clients whose queue is full, see _send
        self._key_set: set[bytes] = set()  # for stats()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._shutdown_requested = False
        self._closed = False
        self._ipc_dir: str | None = None
        self._local_dir: str | None = None  # of the local endpoint, a lifecycle directory
        self._ipc_file: str | None = None  # an explicit ipc:// path we bound
        self._auth: ThreadAuthenticator | None = None
        self.public_key: bytes | None = None

        address = self._address(address)
        curve = secret_key is not None or authorized_keys is not None
        if address.startswith("tcp://") and not is_loopback(address) and not curve:
            raise JobError(
                f"binding {address} exposes the store beyond this machine: pass secret_key= and "
                "authorized_keys= (shuffle-kit serve: --secret-key-file and --authorized-keys-file; "
                "see shuffle_kit.stores.remote.auth.generate_keys) to require CURVE authentication, or bind "
                "tcp://127.0.0.1 or ipc://"
            )
        if address.startswith("ipc://@") and not curve:
            # an abstract socket has no file, so no permissions: every local user may connect
            raise JobError(
                f"binding {address} (a Linux abstract socket) lets every user of this machine in: "
                "pass secret_key= and authorized_keys= (shuffle-kit serve: --secret-key-file and "
                "--authorized-keys-file) to require CURVE authentication, or bind an ipc:// path "
                "(the default is one in a private directory)"
            )
        # receiving is the busiest part of serving many writers (kernel copies, fresh
        # pages for each message): two I/O threads take two connections at once
        self.context = zmq.Context(io_threads=2)
        try:
            self.socket = self.context.socket(zmq.ROUTER)
            self.socket.linger = 1000
            # a full queue raises Again instead of losing the reply (see _send)
            self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
            self.socket.sndhwm = SEND_QUEUE
            if self.max_message_bytes is not None:
                self.socket.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
            if curve:
                self._setup_curve(secret_key, authorized_keys)
            self.monitor = self.socket.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_SUCCEEDED | _HANDSHAKE_FAILED | zmq.EVENT_DISCONNECTED)
            try:
                self.socket.bind(address)
            except zmq.ZMQError as e:
                error = OSError(f"cannot bind {address}: {zmq.strerror(e.errno or 0)}")
                error.errno = e.errno
                raise error from None
            bound = address.startswith("tcp://")  # (port 0: the one the system chose)
            self.address: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT) if bound else address
            self.local_address: str | None = None if bound else address
            if bound and local_endpoint:
                # the same socket (and so the same CURVE rules) on a second endpoint
                self._local_dir = lifecycle.make(LOCAL_PREFIX, tempfile.gettempdir())  # mode 0700
                self.local_address = f"ipc://{self._local_dir}/socket"
                self.socket.bind(self.local_address)
        except BaseException:
            self._teardown()
            raise
        self._handlers: dict[int, Callable[[int, int, list], Iterable[list]]] = {
            P.PING: self._on_ping,
            P.APPEND: self._on_append,
            P.GET: self._on_get,
            P.POP: self._on_pop,
            P.ISET: self._on_iset,
            P.DELETE: self._on_delete,
            P.DROP: self._on_drop,
            P.FLUSH: self._on_flush,
            P.STATS: self._on_stats,
            P.SHUTDOWN: self._on_shutdown,
        }
        _live.add(self)
        if start:
            self.start()

    def _address(self, address: str | bytes | None) -> str:
        if address is None:
            self._ipc_dir = tempfile.mkdtemp(prefix="shuffle_kit-server-")  # mode 0700
            return f"ipc://{self._ipc_dir}/socket"
        if isinstance(address, bytes):
            address = address.decode()
        if address.startswith("tcp://"):
            if address.endswith(":0"):
                address = address[:-1] + "*"
            _check_port(address)
            return address
        if address.startswith("ipc://@"):
            return address  # abstract: no file to check or remove
        if address.startswith("ipc://"):
            _check_ipc_free(address[len("ipc://"):])
            self._ipc_file = address[len("ipc://"):]
            return address
        raise JobError(f"Server binds ipc:// or tcp:// addresses, not {address!r}")

    def _setup_curve(self, secret_key: KeyLike | None, authorized_keys: Iterable[KeyLike] | None) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        if secret_key is None or authorized_keys is None:
            raise JobError("CURVE needs both secret_key (the server's) and authorized_keys (the clients')")
        secret = as_key(secret_key, "secret key")
        allowed = KeySet(authorized_keys)
        self.public_key = derive_public_key(secret)
        self._auth = ThreadAuthenticator(self.context, log=logging.getLogger(__name__ + ".auth"))
        self._auth.start()
        self._auth.configure_curve_callback("*", allowed)
        self.socket.curve_server = True
        self.socket.curve_secretkey = secret

    # -- lifetime -------------------------------------------------------------------------
    def start(self) -> None:
        """Serve in a background thread (already done unless ``start=False``)."""
        if self._closed:
            raise RuntimeError("this server is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=f"shuffle_kit server {self.address}", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def block(self) -> None:
        """Wait until the server stops."""
        if self._thread is not None:
            self._thread.join()

    def close(self, flush: bool | None = None) -> None:
        """Stop serving and release the address. ``flush`` (default: whether the store is
        persistent) first writes everything held in memory to disk."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            if flush if flush is not None else self.persistent:
                self.flush()
        finally:
            self._teardown()
            if self._owns_store:
                if self.persistent:
                    self.store.close()
                else:
                    self.store.drop()
                    self.store.close()
            _live.discard(self)

    def _teardown(self) -> None:
        sock, monitor = getattr(self, "socket", None), getattr(self, "monitor", None)
        if sock is not None and monitor is not None:
            close_monitored(sock, monitor)
        elif sock is not None:  # (its set-up failed before the monitor was made)
            sock.close()
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        context = getattr(self, "context", None)
        if context is not None:
            context.term()
        if self._ipc_dir is not None:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self._ipc_dir = None
        if self._local_dir is not None:
            lifecycle.remove(self._local_dir)
            self._local_dir = None
        if self._ipc_file is not None and getattr(self, "address", None) is not None:
            try:  # ZeroMQ leaves the socket file behind
                if stat.S_ISSOCK(os.lstat(self._ipc_file).st_mode):
                    os.unlink(self._ipc_file)
            except OSError:
                pass
            self._ipc_file = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Server({self.store!r}, {self.address!r})"

    # -- local operations -----------------------------------------------------------------
    # in this process, applied between requests as a request would be (partd's Server
    # offers append, get and drop the same way)
    def append(self, data: Mapping[Key, Any], **kwargs: Any) -> None:
        """Append to the served store, as a client's ``append`` would."""
        with self.store.lock:
            self.store.append(data, lock=False, **kwargs)
        self._key_set.update(encode_keys(data))

    def get(self, keys: Any, **kwargs: Any) -> Any:
        """Read from the served store, as a client's ``get`` would."""
        with self.store.lock:
            return self.store.get(keys, lock=False, **kwargs)

    def delete(self, keys: Any) -> None:
        """Delete keys (one key or a list) from the served store."""
        flat = keys if isinstance(keys, list) else [keys]
        with self.store.lock:
            self.store.delete(flat, lock=False)
        self._key_set.difference_update(encode_keys(flat))

    def drop(self) -> None:
        """Remove every key from the served store."""
        with self.store.lock:
            self.store.drop()
        self._key_set.clear()

    def flush(self) -> None:
        """Write everything held in memory to the disk store (if the store buffers)."""
        with self.store.lock:
            self.store.flush()

    def stats(self) -> dict[str, Any]:
        """``keys`` (written through this server and not deleted since), ``memory_bytes``,
        ``spilled_bytes`` (on disk), ``clients`` (connected, past the ZeroMQ handshake),
        ``requests`` and ``errors`` (requests answered with an error),
        ``max_message_bytes`` (the largest message part accepted, or None)."""
        with self.store.lock:
            memory, spilled = _usage(self.store)
        return {
            "address": self.address,
            "keys": len(self._key_set),
            "memory_bytes": memory,
            "spilled_bytes": spilled,
            "clients": self.clients,
            "max_message_bytes": self.max_message_bytes,
            "requests": self.requests,
            "errors": self.errors,
        }

    # -- serving --------------------------------------------------------------------------
    def _serve(self) -> None:
        sock, monitor = self.socket, self.monitor
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        logger.debug("serving %s at %s", self.store, self.address)
        while not self._stop.is_set():
            try:
                # ROUTER cannot say when one client's queue has room again: while a client
                # waits for room, look again every few milliseconds
                ready = dict(poller.poll(2 if self._waiting else 100))
                if monitor in ready:
                    self._on_monitor()
                if self._waiting:
                    self._resume()
                if sock in ready:
                    for _ in range(100):  # a burst, then look at the stop flag again
                        try:
                            # no copy: values are sliced straight out of ZeroMQ's buffers
                            msg = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(msg)
            except Exception:  # never let one bad moment stop the server
                logger.exception("server loop error")
        if self._shutdown_requested:
            self.close()  # the reply is on its way: the socket lingers to deliver it

    def _on_monitor(self) -> None:
        # every connection ends with one DISCONNECTED, also one that never finished the
        # ZeroMQ handshake (a port scan, a stray telnet), which reports its failure first;
        # the events carry no file descriptor to tell them apart, so count both kinds
        for event in pending_events(self.monitor):
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._connections += 1
            elif event == zmq.EVENT_DISCONNECTED:
                self._connections -= 1
            elif event & _HANDSHAKE_FAILED:  # its DISCONNECTED follows
                self._connections += 1
        self.clients = max(self._connections, 0)

    def _handle(self, msg: list[Any]) -> None:
        ident = msg[0].bytes if isinstance(msg[0], zmq.Frame) else bytes(msg[0])
        waiting = self._waiting.get(ident)
        if waiting is None:
            self._answer(ident, msg)
            return
        # its replies wait for room: answer its requests in order once they are out
        size = sum(len(f) for f in msg)
        if waiting.request_bytes + size > MAX_WAITING_BYTES:
            self.requests += 1
            self.errors += 1
            logger.warning("dropped a request from a client that leaves %d bytes of requests waiting "
                           "and does not read its replies", waiting.request_bytes)
            return
        waiting.requests.append(msg)
        waiting.request_bytes += size

    def _answer(self, ident: bytes, msg: list[Any]) -> None:
        """Apply one request and send its replies; those that do not fit the client's
        queue wait in ``self._waiting`` (copies, which no later request can change)."""
        self.requests += 1
        frames = [f.buffer if isinstance(f, zmq.Frame) else f for f in msg[1:]]
        rid = P.request_id_of(frames[0]) if frames else 0
        held: deque | None = None
        try:
            command, flags, rid, rest = P.parse_request(frames)
            handler = self._handlers.get(command)
            if handler is None:
                raise UnknownCommand(f"unknown command {command}")
            for reply in handler(rid, flags, rest):
                if held is None and self._send(ident, reply):
                    continue
                if held is None:
                    held = self._waiting.setdefault(ident, _Waiting()).replies
                held.append(reply)
        except Exception as e:
            self.errors += 1
            if not isinstance(e, ServerError):
                logger.warning("request %d failed: %r", rid, e)
            error = P.error_reply(rid, e)
            try:
                if held is not None or not self._send(ident, error):
                    self._waiting.setdefault(ident, _Waiting()).replies.append(error)
            except zmq.ZMQError:
                logger.exception("could not send an error reply")

    def _send(self, ident: bytes, reply: list) -> bool:
        """Send ``reply`` unless the client's queue is full (False). A client that is gone
        counts as sent: nobody is left to answer."""
        try:
            self.socket.send_multipart([ident, *reply], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        except zmq.ZMQError as e:
            if e.errno != zmq.EHOSTUNREACH:
                raise
            logger.debug("a client left before its reply")
        return True

    def _resume(self) -> None:
        """Send what waits for each client with a full queue, then answer its waiting
        requests in order, until its queue is full again."""
        for ident in list(self._waiting):
            waiting = self._waiting.pop(ident)
            replies, requests = waiting.replies, waiting.requests
            while replies and self._send(ident, replies[0]):
                replies.popleft()
            if replies:
                self._waiting[ident] = waiting
                continue
            while requests:
                msg = requests.popleft()
                waiting.request_bytes -= sum(len(f) for f in msg)
                self._answer(ident, msg)
                again = self._waiting.get(ident)
                if again is not None:  # full again: the rest keep waiting behind its replies
                    again.requests, again.request_bytes = requests, waiting.request_bytes
                    break

    def _no_flags(self, flags: int, rest: Sequence, n: int | None = 0) -> None:
        if flags:
            raise MalformedMessage(f"unexpected flags {flags:#x}")
        if n is not None and len(rest) != n:
            raise MalformedMessage(f"expected {n} frames after the header, got {len(rest)}")

    def _key_table(self, frame: bytes) -> list[bytes]:
        """The checked keys of a key table frame. Writers send the same table again and
        again (the same partitions on every append), so recent tables are remembered."""
        tables = self._tables
        frame = bytes(frame)
        kbs = tables.get(frame)
        if kbs is None:
            kbs = P.unpack_keys(frame)
            self._check_keys(kbs)
            if len(tables) >= 64:
                tables.clear()
            if len(frame) <= 1 << 20:
                tables[frame] = kbs
        return kbs

    def _keys(self, flags: int, rest: Sequence, allowed: int = 0) -> list[bytes]:
        self._no_flags(flags & ~allowed, rest, None)
        kbs = P.parse_keys_only(rest)
        self._check_keys(kbs)
        return kbs

    def _reply(self, rid: int, flags: int, records: list[list[Any]]) -> Iterator[list]:
        return P.records_reply(rid, records, self.reply_chunk, joined=bool(flags & P.FLAG_JOINED))

    def _on_ping(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        self._no_flags(flags, rest)
        yield P.ok_reply(rid)

    def _on_append(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        # a store that keeps bodies (a MemoryLog, a Buffer over one) keeps the received
        # message whole, with no object per value; other stores get each value as bytes
        store = self.store
        if store.keeps_bodies:
            parts, batch_id = P.parse_append_bodies(flags, rest, self._key_table)
            store.append_bodies(parts, batch_id)
            for kbs, _, _ in parts:
                self._key_set.update(kbs)
        else:
            kbs, values, batch_id = P.parse_append(flags, rest, self._key_table)
            if kbs:
                with store.lock:
                    store._append(kbs, values, batch_id)
                self._key_set.update(kbs)
        yield P.ok_reply(rid)

    def _on_get(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        kbs = self._keys(flags, rest, P.FLAG_JOINED)
        with self.store.lock:
            records = self.store._records(kbs)
        return self._reply(rid, flags, records)

    def _on_pop(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        kbs = self._keys(flags, rest, P.FLAG_JOINED)
        store = self.store
        with store.lock:
            records = store._records(kbs)
            # own the bytes before deleting: views may point into what the store frees
            records = [[r if type(r) is bytes else bytes(r) for r in rs] for rs in records]
            store._delete(kbs)
        self._key_set.difference_update(kbs)
        return self._reply(rid, flags, records)

    def _on_iset(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        self._no_flags(flags, rest, None)
        kb, value = P.parse_iset(rest)
        self._check_keys([kb])
        with self.store.lock:
            self.store._iset(kb, value)
        self._key_set.add(kb)
        yield P.ok_reply(rid)

    def _on_delete(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        kbs = self._keys(flags, rest)
        with self.store.lock:
            self.store._delete(kbs)
        self._key_set.difference_update(kbs)
        yield P.ok_reply(rid)

    def _on_drop(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        self._no_flags(flags, rest)
        self.store.drop()
        self._key_set.clear()
        yield P.ok_reply(rid)

    def _on_flush(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        self._no_flags(flags, rest)
        self.flush()
        yield P.ok_reply(rid)

    def _on_stats(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        self._no_flags(flags, rest)
        yield P.stats_reply(rid, self.stats())

    def _on_shutdown(self, rid: int, flags: int, rest: list) -> Iterator[list]:
        self._no_flags(flags, rest)
        if not self.remote_shutdown:
            raise Refused("this server does not accept shutdown requests (start it with remote_shutdown=True)")
        self._shutdown_requested = True
        self._stop.set()
        yield P.ok_reply(rid)


class _Waiting:
    """What waits for a client whose queue is full: replies not yet sent, then requests
    not yet answered."""

    __slots__ = ("replies", "requests", "request_bytes")

    def __init__(self) -> None:
        self.replies: deque[list] = deque()
        self.requests: deque[list] = deque()
        self.request_bytes = 0


def sweep_local_endpoints() -> list[str]:
    """Remove the local endpoints' directories of servers whose process has died (a
    ``kill -9`` leaves them behind); those of live servers stay. The directories removed."""
    return lifecycle.sweep(LOCAL_PREFIX, tempfile.gettempdir())


def _usage(store: Store) -> Usage:
    """(bytes in memory, bytes on disk) as the store declares them."""
    try:
        return store.usage()
    except Exception:  # statistics never break serving
        logger.debug("could not measure %r", store, exc_info=True)
    return Usage(None, None)


def _check_port(address: str) -> None:
    """Refuse a tcp:// port outside 1-65535: ZeroMQ would bind the port number modulo 65536."""
    host, sep, port = address[len("tcp://"):].rpartition(":")
    if not sep or not host:
        raise JobError(f"a tcp:// address needs a host and a port (tcp://127.0.0.1:PORT), not {address!r}")
    if port != "*" and not (port.isdigit() and 0 < int(port) < 65536):
        raise JobError(f"port {port!r} of {address!r} is not 1-65535 (or 0 or * for a free one)")


def _check_ipc_free(path: str) -> None:
    """Refuse an ipc:// path where a server is listening: ZeroMQ would silently take the
    address over from it."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1)
        probe.connect(path)
    except OSError:
        return  # a stale socket file: nobody listens
    finally:
        probe.close()
    raise OSError(f"address in use: a server already listens at ipc://{path}")

