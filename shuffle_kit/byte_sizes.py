"""Sizes in bytes, read from and written for people: the one parser and the one formatter
of the package (memory limits, the command line's summary, reprs), and the one rule for a
memory limit a user gives (:func:`check_memory_limit`).

Decimal prefixes are powers of 1000 and binary ones (``KiB``, ``MiB``, ...) powers of 1024,
as in ``--memory-limit 1GB`` = 1,000,000,000 bytes. Sizes are written with decimal units.

>>> parse_size('1.5 GiB'), parse_size('500mb'), parse_size(2e6), parse_size('1e9')
(1610612736, 500000000, 2000000, 1000000000)
>>> format_size(1536), format_size(3.2e9)
('1.5 kB', '3.2 GB')
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import ArgumentTypeError, JobError, one_line

# the smallest memory limit of a job (partition, shuffle): below it the chunks it reads
# alone (at least this size) would exceed the limit, so the promise could not be kept
MIN_MEMORY_LIMIT = 2**20

_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgtp]?)(i?)b?\s*")


def parse_size(value: int | float | str) -> int:
    """Bytes from a positive number or a string such as ``'500MB'``, ``'2 GiB'`` or ``'1e9'``."""
    if isinstance(value, bool):
        raise ArgumentTypeError(f"a size must be a number of bytes or a string like '2GB', not {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        m = _SIZE.fullmatch(str(value).lower())
        if not m:
            raise JobError(f"cannot read {value!r} as a size (try '500MB' or '2GiB')")
        digits, prefix, binary = m.groups()
        number = float(digits) * (1024 if binary else 1000) ** "_kmgtp".index(prefix or "_")
    if not number > 0 or not math.isfinite(number):
        raise JobError(f"a size must be positive, not {value!r}")
    return int(number)


def format_size(n: float) -> str:
    """``n`` bytes with a decimal unit, one decimal from kB on."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def check_memory_limit(value: Any, argument: str = "memory_limit", minimum: int = MIN_MEMORY_LIMIT) -> int:
    """``value`` (bytes, or a size such as ``'2GB'``, see :func:`parse_size`) as a memory
    limit in bytes, at least ``minimum``: the rule of every entry point that takes one (the
    command line's ``--memory-limit``, ``partition``, ``shuffle``, ``groupby_shuffle``, the
    dask integration's server memory; a store's spill threshold takes ``minimum=0``).
    Anything else raises :class:`~shuffle_kit.errors.JobError` (a ``ValueError``), or for
    a value of another type :class:`~shuffle_kit.errors.ArgumentTypeError` (a
    ``TypeError``), one line naming ``argument``.

    >>> check_memory_limit('1.5 GiB'), check_memory_limit(0, 'available_memory', minimum=0)
    (1610612736, 0)
    >>> check_memory_limit('1KB')
    Traceback (most recent call last):
    ...
    shuffle_kit.errors.JobError: memory_limit: '1KB' is below the smallest memory limit, 1 MiB
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ArgumentTypeError(f"{argument}: {value!r} is not a number of bytes or a size such as '2GB'")
    if minimum == 0 and not isinstance(value, str) and value == 0:
        return 0  # (parse_size wants a positive size; a store may be told to hold nothing)
    try:
        size = parse_size(value)
    except ValueError as e:
        raise JobError(f"{argument}: {one_line(e)}") from None
    if size < minimum:
        least = "1 MiB" if minimum == MIN_MEMORY_LIMIT else f"{minimum:,} bytes"
        raise JobError(f"{argument}: {value!r} is below the smallest memory limit, {least}")
    return size
