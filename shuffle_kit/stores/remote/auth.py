"""CURVE keys for :class:`Server` and :class:`Shared` (ZeroMQ's public-key authentication).

A server listening on a non-loopback tcp address must know its own secret key and the
public keys of the clients it serves; a client must know the server's public key and
its own key pair. Keys are Z85 text (40 characters), as ZeroMQ writes them.

>>> public, secret = generate_keys()
>>> len(public), len(secret), public_key(secret) == public
(40, 40, True)
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable

import zmq

from ...errors import ArgumentTypeError, JobError

KeyLike = str | bytes


def generate_keys() -> tuple[bytes, bytes]:
    """A new (public, secret) CURVE key pair, Z85-encoded."""
    if not zmq.has("curve"):
        raise RuntimeError("this libzmq was built without CURVE support")
    return zmq.curve_keypair()


def as_key(key: KeyLike, what: str = "key") -> bytes:
    """A Z85 key as bytes; raise ValueError for anything else.

    >>> as_key('x')
    Traceback (most recent call last):
    shuffle_kit.errors.JobError: a CURVE key is 40 Z85 characters; this key has 1
    """
    if isinstance(key, str):
        key = key.strip().encode("ascii", "replace")
    if not isinstance(key, bytes):
        raise ArgumentTypeError(f"a CURVE {what} must be str or bytes, not {type(key).__name__}")
    key = key.strip()
    if len(key) != 40:
        raise JobError(f"a CURVE {what} is 40 Z85 characters; this {what} has {len(key)}")
    return key


def public_key(secret: KeyLike) -> bytes:
    """The public key that goes with ``secret``."""
    return zmq.curve_public(as_key(secret, "secret key"))


def read_keys(path: str | os.PathLike) -> list[bytes]:
    """Keys from a text file, one per line (blank lines and ``#`` comments ignored)."""
    with open(path) as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    return [as_key(line) for line in lines if line]


class KeySet:
    """The authorised client keys, as pyzmq's authenticator asks for them."""

    def __init__(self, keys: Iterable[KeyLike]):
        self.keys = frozenset(as_key(k, "client public key") for k in keys)

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.keys


def is_loopback(address: str) -> bool:
    """Whether a ``tcp://`` address binds only the loopback interface.

    >>> [is_loopback(a) for a in ('tcp://127.0.0.1:5', 'tcp://[::1]:5', 'tcp://*:5', 'tcp://10.0.0.1:5')]
    [True, True, False, False]
    """
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # '*', an interface name, a host name
        return False
