"""Every exception class shuffle_kit defines: all derive from :class:`ShuffleKitError`, and
each from the builtin it specialises, so ``except ValueError`` still catches a bad job option
and ``except ShuffleKitError`` catches every failure that is shuffle_kit's own (corrupt data,
lost pieces, a refused server, a job that cannot run).

Every error a user can cause through the public API (an argument of the wrong value or type,
a missing column or input path, a store path that is a file, a full disk) is a
:class:`JobError` or one of its subclasses, each also the builtin Python would raise
(``KeyError`` for a missing column, ``FileNotFoundError`` for a missing path, ...), with a
one-line message naming the argument, column or path: the line the command line prints.

>>> issubclass(JobError, ShuffleKitError) and issubclass(JobError, ValueError)
True
>>> e = missing_column('Dest', ['dest', 'x'])
>>> isinstance(e, KeyError), str(e)
(True, "key column 'Dest' is not in the input (columns: 'dest', 'x'); did you mean 'dest'?")
"""

import difflib
import errno
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "ShuffleKitError", "CorruptionError", "CodecError", "UnhashableKeyError", "UnorderableKeyError", "JobError",
    "ArgumentTypeError", "PartitionIndexError",
    "MissingColumnError", "PathError", "InputNotFoundError", "NotADirectory", "DiskFullError", "ShuffleDataLost",
    "ClusterError", "ConcurrentChange", "ConnectionLost",
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


class UnorderableKeyError(ShuffleKitError, TypeError):
    """A key to sort or range-partition by has no order (lists, structs, maps, Python
    objects of several types)."""


class ConnectionLost(ShuffleKitError, ConnectionError):
    """A server's connection went away while a client waited for its reply."""


class JobError(ShuffleKitError, ValueError):
    """A problem the user can fix, with a call or a partition job (bad argument or option,
    missing column, unreadable file, ...); its message is one line naming the file, column
    or option. The subclasses below are also the builtin exception that names the problem."""


class ArgumentTypeError(JobError, TypeError):
    """An argument of the wrong type (``npartitions="4"``, an input shuffle_kit cannot read)."""


class PartitionIndexError(JobError, IndexError):
    """A partition number outside ``0 .. npartitions - 1``."""


class MissingColumnError(JobError, KeyError):
    """A key (or ``sort_by``) column is not in the input; the message suggests the near
    names. Its ``str`` is the message itself, without the quotes ``KeyError`` adds."""

    def __str__(self) -> str:
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class PathError(OSError, JobError):
    """An ``OSError`` about a path the user gave (an input that cannot be read, an output
    that cannot be written); its ``str`` is its one-line message, which names the path, and
    ``errno`` and ``filename`` are set as the builtin's are."""

    default_errno: int | None = None

    def __init__(self, message: str, filename: str | None = None, err: int | None = None):
        super().__init__(message)
        self.errno = err if err is not None else self.default_errno
        self.filename = filename

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> Any:
        return type(self), (str(self), self.filename, self.errno)


class InputNotFoundError(PathError, FileNotFoundError):
    """An input path, glob or directory that names no data file.

    >>> e = InputNotFoundError("no such input file: 'a.parquet'", 'a.parquet')
    >>> str(e), e.errno == errno.ENOENT, isinstance(e, FileNotFoundError)
    ("no such input file: 'a.parquet'", True, True)
    """

    default_errno = errno.ENOENT


class NotADirectory(PathError, NotADirectoryError):
    """A path that must be a directory (a ``File`` store, ``--out``'s parent, ``--tmp``) is
    something else."""

    default_errno = errno.ENOTDIR


class DiskFullError(PathError):
    """A write failed for lack of space (``errno.ENOSPC``, or a quota: ``EDQUOT``); the
    message names the path written and what it is (``--out``, ``--tmp``, a store)."""

    default_errno = errno.ENOSPC


class ShuffleDataLost(ShuffleKitError, RuntimeError):
    """Pieces of a ``shuffle_kit.dask`` shuffle were lost (a store server died with its
    data, or the run's store was removed): rows would be missing, so nothing is returned.
    Computing the shuffle again starts a new run."""


class ConcurrentChange(ShuffleKitError, RuntimeError):
    """A store changed under a reader in a way it cannot follow (a buffer flushed while
    the pieces of a key were being read): read them again."""


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


def near_names(name: Any, names: Sequence[Any], limit: int = 3) -> list[str]:
    """The names of ``names`` a user who typed ``name`` probably meant: those equal to it but
    for case first, then the close ones (``difflib``), at most ``limit``.

    >>> near_names('Dest', ['dest', 'dep_time', 'x']), near_names('k', ['a'])
    (['dest'], [])
    >>> near_names('dep_tme', ['dep_time', 'arr_time', 'sched_dep_time'])
    ['dep_time']
    """
    text = str(name)
    strings = [str(n) for n in names]
    same = [n for n in strings if n.casefold() == text.casefold() and n != text]
    close = difflib.get_close_matches(text, strings, n=limit, cutoff=0.75)
    folded = difflib.get_close_matches(text.casefold(), [n.casefold() for n in strings], n=limit, cutoff=0.75)
    close += [n for n in strings if n.casefold() in folded]
    return list(dict.fromkeys(same + [n for n in close if n != text]))[:limit]


def missing_column(
    name: Any, names: Sequence[Any], where: str = "the input", what: str = "key column",
    show: Callable[[Any], str] = repr,
) -> MissingColumnError:
    """The :class:`MissingColumnError` for column ``name`` absent from ``names`` (the input's
    columns): one line naming the column, the columns there are, and the near names.

    >>> str(missing_column('Dest', ['dest', 'x'], "the input file 'a.parquet'", show=str))
    "key column 'Dest' is not in the input file 'a.parquet' (columns: dest, x); did you mean 'dest'?"
    """
    near = near_names(name, names)
    hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
    return MissingColumnError(f"{what} {name!r} is not in {where} (columns: {column_list(list(names), show)}){hint}")


def not_a_directory(path: str, what: str) -> NotADirectory:
    """The :class:`NotADirectory` for ``path`` (named by ``what``, e.g. ``"--tmp '/x/f'"``)
    when it, or the nearest of its parents that exists, is not a directory: the message
    names that one.

    >>> import tempfile, os; d = tempfile.mkdtemp(); open(f'{d}/f', 'w').close()
    >>> str(not_a_directory(f'{d}/f', f"--tmp '{d}/f'")).replace(d, 'D')
    "--tmp 'D/f' is not a directory"
    >>> str(not_a_directory(f'{d}/f/sub', f"--tmp '{d}/f/sub'")).replace(d, 'D')
    "--tmp 'D/f/sub': 'D/f' is not a directory"
    >>> import shutil; shutil.rmtree(d)
    """
    import os

    where = path
    while not os.path.lexists(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    if where == path:
        return NotADirectory(f"{what} is not a directory", path)
    return NotADirectory(f"{what}: {where!r} is not a directory", where)


def prefixed(e: JobError, prefix: str) -> JobError:
    """``e``, of the same class (and errno), its message one line after ``prefix``.

    >>> str(prefixed(MissingColumnError("key column 'k' is missing"), 'cannot read: '))
    "cannot read: key column 'k' is missing"
    """
    e.args = (prefix + one_line(e), *e.args[1:])
    return e


def one_line(e: BaseException) -> str:
    """An exception's message on one line (a KeyError's without the quotes it adds).

    >>> one_line(KeyError("no column 'x'")), one_line(ValueError("a\\n  b"))
    ("no column 'x'", 'a b')
    """
    text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(str(text).split()) or type(e).__name__
