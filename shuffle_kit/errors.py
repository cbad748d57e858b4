"""Every public exception of shuffle_kit: all derive from :class:`ShuffleKitError`, and each
from the builtin it specialises, so ``except ValueError`` still catches a bad option and
``except ShuffleKitError`` catches anything shuffle_kit raises on purpose.

>>> issubclass(JobError, ShuffleKitError) and issubclass(JobError, ValueError)
True
"""


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


def one_line(e: BaseException) -> str:
    """An exception's message on one line (a KeyError's without the quotes it adds).

    >>> one_line(KeyError("no column 'x'")), one_line(ValueError("a\\n  b"))
    ("no column 'x'", 'a b')
    """
    text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(str(text).split()) or type(e).__name__
