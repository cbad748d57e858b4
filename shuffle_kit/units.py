"""Sizes in bytes, read from and written for people: the one parser and the one formatter
of the package (memory limits, the command line's summary, reprs).

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

from .errors import ArgumentTypeError, JobError

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


def check_bytes(value: Any, name: str) -> float:
    """``value``, a number of bytes given as argument ``name``, checked: a number, not negative.

    >>> check_bytes(5e8, 'memory_limit')
    500000000.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} must be a number of bytes, not {value!r}")
    if not value >= 0:
        raise JobError(f"{name} must be at least 0 bytes, not {value!r}")
    return float(value)


def format_size(n: float) -> str:
    """``n`` bytes with a decimal unit, one decimal from kB on."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
