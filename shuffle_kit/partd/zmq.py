"""partd.zmq: ``Server`` and ``Client`` with partd 1.4's constructor arguments.

``Server(partd=None, bind=None, start=True, block=False, hostname=None)`` serves
``partd`` (default ``Buffer(MemoryLog(), File())``) and, like partd's, offers
``append``/``get``/``delete``/``drop`` in process; ``Client(address)`` is a
:class:`~shuffle_kit.stores.remote.shared.Shared`. Differences from partd 1.4, all on the safe
side: without ``bind`` the server listens on a private ``ipc://`` socket rather than on
every interface; a ``bind`` address beyond loopback needs CURVE keys (use
``shuffle_kit.Server``); ``hostname`` is accepted and ignored; keys keep their types.
"""

from __future__ import annotations

from typing import Any

from shuffle_kit.stores.remote.server import Server as _Server
from shuffle_kit.stores.remote.shared import Shared


class Server(_Server):
    def __init__(self, partd: Any = None, bind: str | bytes | None = None, start: bool = True,
                 block: bool = False, hostname: str | None = None, **kwargs: Any):
        kwargs.setdefault("remote_shutdown", True)  # partd's Client.close_server stops it
        super().__init__(store=partd, address=bind, start=start, **kwargs)
        if block:
            self.block()

    @property
    def partd(self) -> Any:
        return self.store


class Client(Shared):
    def __init__(self, address: str | bytes | None = None, create_server: bool = False, **kwargs: Any):
        if address is None:
            raise ValueError("Client needs the address of a running Server")
        super().__init__(address, **kwargs)

    def close_server(self) -> None:
        """Stop the server (this package's partd ``Server`` allows it; ``shuffle_kit.Server``
        only with ``remote_shutdown=True``)."""
        self.shutdown_server()


__all__ = ["Server", "Client"]
