"""A store served over ZeroMQ to other processes and hosts.

Two halves, one on each side of the wire:

- :class:`Server` is not a store: it serves any store (by default a memory buffer that
  spills to a ``File``) to many clients at once, applying each request atomically.
- :class:`Shared` is the client, and is itself a store: codecs and the shuffle nest on it
  as on ``File`` or ``Dict``, while its data lives in the server.

Modules: ``server`` and ``shared`` (the two halves), ``protocol`` (the wire format, pure
functions), ``auth`` (CURVE keys for servers reachable from other hosts) and
``zmq_events`` (socket-monitor events both halves watch).

>>> from shuffle_kit.stores.remote import Server, Shared
>>> with Server() as server:
...     client = Shared(server.address)
...     client.append({'k': b'ab'})
...     client.get('k')
...     client.close()
b'ab'
"""

from .server import Server
from .shared import Shared

__all__ = ["Server", "Shared"]
