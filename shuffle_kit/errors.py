"""Exceptions shared by every layer."""


class CorruptionError(ValueError):
    """Stored bytes fail their checksum or cannot be parsed.

    Raised instead of returning wrong data. The message names the key (or the
    file and offset when the damage is in the log's own bookkeeping).
    """


class CodecError(ValueError):
    """A stored record was written by a different codec than the one reading it."""
