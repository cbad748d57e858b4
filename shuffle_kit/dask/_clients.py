"""Connections from tasks to the per-worker servers: one thread-safe ``Shared`` client per
server address (and key), shared by every task of this process and reused across runs,
at most :data:`MAX_CLIENTS` of them (the oldest, of finished runs, are closed)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..stores import Shared

if TYPE_CHECKING:
    from ._plans import ClientKeys

CLIENT_TIMEOUT = 60.0
MAX_CLIENTS = 32

_clients: OrderedDict[tuple[str, bytes | None], Shared] = OrderedDict()
_lock = threading.Lock()


def client_for(address: str, keys: ClientKeys | None) -> Shared:
    """The client of the server at ``address`` (CURVE-authenticated with ``keys``)."""
    key = (address, None if keys is None else keys.server_public)
    with _lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
    if keys is None:
        client = Shared(address, timeout=CLIENT_TIMEOUT)
    else:
        client = Shared(address, timeout=CLIENT_TIMEOUT, server_key=keys.server_public, secret_key=keys.client_secret)
    with _lock:
        kept = _clients.setdefault(key, client)
        while len(_clients) > MAX_CLIENTS:  # servers of finished runs
            _, old = _clients.popitem(last=False)
            old.close()
    if kept is not client:  # another thread connected first
        client.close()
    return kept
