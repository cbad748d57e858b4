"""Every exception class shuffle_kit defines: all derive from :class:`ShuffleKitError`, and
each from the builtin it specialises, so ``except ValueError`` still catches a bad job option
and ``except ShuffleKitError`` catches every failure that is shuffle_kit's own (corrupt data,
lost pieces, a refused server, a job that cannot run). An argument of the wrong type or value
raises the builtin ``TypeError`` or ``ValueError``, as Python's own functions do.

>>> issubclass(JobError, ShuffleKitError) and issubclass(JobError, ValueError)
True
"""

from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "ShuffleKitError", "CorruptionError", "CodecError", "UnhashableKeyError", "JobError", "ShuffleDataLost",
    "ClusterError",
    "ServerError", "MalformedMessage", "UnknownCommand", "UnsupportedVersion", "BadValue", "Refused",
    "RemoteStoreError", "RemoteTypeError", "RemoteValueError", "RemoteKeyError", "RemoteOSError",
    "RemoteCorruptionError", "MessageTooLarge",
]


class ShuffleKitError(Exception):
    """Base of every exception shuffle_kit raises on purpose."""


class CorruptionError(ShuffleKitError, ValueError):
    """Stored bytes fail their checksum or cannot be parsed.

    Raised instead of returning wrong data. The message names the key (or the
    file and offset when the damage is in the log's own bookkeeping).
    """


class CodecError(ShuffleKitError, ValueError):
    """A stored record was written by a different codec than the one reading it."""


class UnhashableKeyError(ShuffleKitError, TypeError):
    """A key column has a type that cannot be hashed (lists, maps, arbitrary objects)."""


class JobError(ShuffleKitError, ValueError):
    """A problem with a partition job the user can fix (bad option, missing column,
    unreadable file, ...); its message is one line naming the file, column or option."""


class ShuffleDataLost(ShuffleKitError, RuntimeError):
    """Pieces of a ``shuffle_kit.dask`` shuffle were lost (a store server died with its
    data, or the run's store was removed): rows would be missing, so nothing is returned.
    Computing the shuffle again starts a new run."""


class ClusterError(ShuffleKitError, RuntimeError):
    """A ``shuffle_kit.dask`` shuffle could not run on its cluster: no workers, no store
    server could start, or the run was released before it started."""


# -- a store served over ZeroMQ (shuffle_kit.stores.remote) ------------------------------
# The wire protocol maps each of these to the status code it travels as (the table is in
# shuffle_kit.stores.remote.protocol, with the rest of the format).


class ServerError(ShuffleKitError):
    """A store server answered a request with an error; ``remote_type`` names the class of
    the exception the server raised.

    >>> e = RemoteKeyError("server: no key 'x'", "KeyError")
    >>> isinstance(e, ServerError) and isinstance(e, KeyError), e.remote_type
    (True, 'KeyError')
    """

    def __init__(self, message: str = "", remote_type: str = ""):
        super().__init__(message)
        self.remote_type = remote_type or type(self).__name__


class MalformedMessage(ServerError, ValueError):
    """The server could not parse a request (or the client a reply)."""


class UnknownCommand(ServerError, ValueError):
    """The server does not know the request's command."""


class UnsupportedVersion(ServerError):
    """The two sides speak different versions of the wire protocol."""


class BadValue(ServerError, ValueError):
    """A request carried a value of the wrong kind (for example a key that is not a
    canonical key encoding)."""


class Refused(ServerError, PermissionError):
    """The server does not accept this request (a shutdown it was not started to allow)."""


class RemoteStoreError(ServerError):
    """The server's store raised; ``remote_type`` names the exception's class. The
    subclasses below are also the builtin (or shuffle_kit) exception the store raised."""


class RemoteTypeError(RemoteStoreError, TypeError):
    """The server's store raised a TypeError."""


class RemoteValueError(RemoteStoreError, ValueError):
    """The server's store raised a ValueError."""


class RemoteKeyError(RemoteStoreError, KeyError):
    """The server's store raised a KeyError."""


class RemoteOSError(RemoteStoreError, OSError):
    """The server's store raised an OSError (a full disk, a missing or unreadable file)."""


class RemoteCorruptionError(RemoteStoreError, CorruptionError):
    """The server's store found stored bytes damaged."""


class MessageTooLarge(ShuffleKitError, ValueError):
    """A request has a part larger than the server accepts (``max_message_bytes``): ZeroMQ
    drops the connection without a reply, so the client names the sizes itself."""


def column_list(names: Sequence[Any], show: Callable[[Any], str] = str, limit: int = 20) -> str:
    """The first ``limit`` of ``names`` for a message, and ``...`` if there are more.

    >>> column_list(['a', 'b', 'c'], limit=2), column_list([1, '1'], show=repr)
    ('a, b, ...', "1, '1'")
    """
    return ", ".join(map(show, names[:limit])) + (", ..." if len(names) > limit else "")


def one_line(e: BaseException) -> str:
    """An exception's message on one line (a KeyError's without the quotes it adds).

    >>> one_line(KeyError("no column 'x'")), one_line(ValueError("a\\n  b"))
    ("no column 'x'", 'a b')
    """
    text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(str(text).split()) or type(e).__name__
