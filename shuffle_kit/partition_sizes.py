"""Rows per partition, for seeing skew: the statistics and the small chart that the partition
job's summary and a shuffle's result both show.

Shuffles fail in practice on skew: one key holding most rows makes one partition (one file,
one task) as large as the whole input. What shows it is the distribution of partition sizes,
so :class:`PartitionSizes` keeps the rows of every partition (counted by whoever wrote them:
nothing reads the data again) with what each partition holds (its number, or its key values)
and where it went, and gives min/median/max, the largest partitions, those above
:data:`SKEW_FACTOR` times the median, and an inline-SVG chart (no plotting library).

Ties among equal sizes go to the earlier partition, so the text is the same on every run.

>>> s = PartitionSizes.of([5, 0, 90, 7, 6], unit="file")
>>> s.min, s.median, s.max
(0, 6.0, 90)
>>> s.describe()
'min 0, median 6, max 90'
>>> [(big.key, big.rows) for big in s.largest(2)]
[(2, 90), (3, 7)]
>>> [big.key for big in s.skewed()]
[2]
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

SKEW_FACTOR = 10  # a partition above this many times the median is worth a warning
TOP = 5  # the largest partitions shown by reprs
_CHART_COLUMNS = 120  # more partitions than this share a column (its largest is drawn)


class Partition(NamedTuple):
    """One partition: its key (a number, or a tuple of key values), its rows, and the file or
    directory it was written to (None where it was not written anywhere)."""

    key: Any
    rows: int
    path: str | None

    def name(self) -> str:
        """How the partition is named in text: its path if it has one, else its number."""
        if self.path is not None:
            return self.path
        return f"partition {self.key}"


@dataclass(frozen=True, eq=False)
class PartitionSizes:
    """Rows in each partition (``rows``), with each one's ``keys`` (default: its number) and
    ``paths`` (where each was written; None for one written nowhere); ``unit`` is what one
    partition is called in text ("partition", "file", "value")."""

    rows: np.ndarray
    keys: Sequence[Any] | None = None
    paths: Sequence[str | None] | None = None
    unit: str = "partition"

    @classmethod
    def of(cls, rows: Any, keys: Sequence[Any] | None = None, paths: Sequence[str | None] | None = None,
           unit: str = "partition") -> PartitionSizes:
        """From any sequence of row counts.

        >>> PartitionSizes.of([3, 1]).largest(1)
        [Partition(key=0, rows=3, path=None)]
        """
        counts = np.asarray(rows, dtype=np.int64).ravel()
        for given, what in ((keys, "keys"), (paths, "paths")):
            if given is not None and len(given) != len(counts):
                raise ValueError(f"{len(given)} {what} for {len(counts)} partitions")
        return cls(counts, keys, paths, unit)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def total(self) -> int:
        return int(self.rows.sum())

    @property
    def min(self) -> int:
        return int(self.rows.min()) if len(self.rows) else 0

    @property
    def max(self) -> int:
        return int(self.rows.max()) if len(self.rows) else 0

    @property
    def median(self) -> float:
        return float(np.median(self.rows)) if len(self.rows) else 0.0

    def partition(self, i: int) -> Partition:
        """Partition ``i``: its key, rows and path."""
        key = i if self.keys is None else self.keys[i]
        return Partition(key, int(self.rows[i]), None if self.paths is None else self.paths[i])

    def largest(self, k: int = TOP) -> list[Partition]:
        """The ``k`` largest partitions, largest first (equal sizes: the earlier first)."""
        order = np.argsort(-self.rows, kind="stable")[:k]
        return [self.partition(int(i)) for i in order]

    def skewed(self, factor: float = SKEW_FACTOR) -> list[Partition]:
        """Partitions holding more than ``factor`` times the median, largest first. A median
        below one row counts as one: a few rows in mostly empty partitions are not skew."""
        bound = factor * max(self.median, 1.0)
        over = np.flatnonzero(self.rows > bound)
        order = over[np.argsort(-self.rows[over], kind="stable")]
        return [self.partition(int(i)) for i in order]

    def describe(self) -> str:
        """``'min A, median B, max C'``, with thousands separators."""
        return f"min {self.min:,}, median {_number(self.median)}, max {self.max:,}"

    def warning(self, factor: float = SKEW_FACTOR) -> str | None:
        """One line naming the largest partition if it holds more than ``factor`` times the
        median (see :meth:`skewed`), else None.

        >>> print(PartitionSizes.of([10, 12, 9, 500], paths=['a', 'b', 'c', 'd'], unit='file').warning())
        skew: d (partition 3) holds 500 rows, 45.5× the median of 11 rows per file
        """
        over = self.skewed(factor)
        if not over:
            return None
        big = over[0]
        times = big.rows / max(self.median, 1.0)
        # a file named after its number says nothing of its key: name both
        which = f"{big.path} (partition {big.key})" if big.path is not None and isinstance(big.key, int) else big.name()
        line = (f"skew: {which} holds {big.rows:,} rows, {_number(times)}× the median of "
                f"{_number(self.median)} rows per {self.unit}")
        if len(over) > 1:
            line += f" ({len(over) - 1:,} more {self.unit}{'s' if len(over) > 2 else ''} above {factor:g}×)"
        return line

    def to_dict(self, k: int = TOP) -> dict[str, Any]:
        """The statistics as plain numbers and strings (for JSON): a partition's key is its
        number, or the list of its key values where JSON has them (else its path)."""
        return {
            "unit": self.unit,
            "count": len(self),
            "min": self.min,
            "median": self.median,
            "max": self.max,
            "largest": [
                {"key": _plain(big.key, big.path), "rows": big.rows, "path": big.path} for big in self.largest(k)
            ],
        }

    def html(self, k: int = TOP, stats: bool = True) -> str:
        """Table rows (``<tr>``...) for a repr: min/median/max (unless ``stats`` is False), the
        ``k`` largest, a chart of every partition's rows, largest first, with the median as a
        dashed line, and the skew warning if there is one."""
        top = ", ".join(f"{html.escape(big.name())} ({big.rows:,})" for big in self.largest(k))
        warning = self.warning()
        rows = [(f"Rows per {html.escape(self.unit)}", html.escape(self.describe()))] if stats else []
        rows += [
            ("Largest", top or "none"),
            ("", chart(self.rows, self.median, f"rows per {self.unit}, largest first; dashed: the median")),
        ]
        if warning:
            rows.append(("Skew", f"<span style='color:#b00'>{html.escape(warning)}</span>"))
        return "".join(
            f"<tr><th style='text-align:left'>{label}</th><td style='text-align:left'>{value}</td></tr>"
            for label, value in rows
        )


class HotKey(NamedTuple):
    """A key of a join with more rows than a partition pair's share of memory: its pair
    (``pair``), its key columns (the left's) and values, and its
    rows on each side. Splitting the pair again cannot shrink it, so its pair was joined in
    chunks (block by block: the smaller side in blocks, the larger streamed against each);
    it is what makes that pair's file large.

    >>> hot = HotKey(3, ('k',), (7,), 900_000, 2)
    >>> hot.warning()
    'skew: key k=7 holds 900,000 left rows and 2 right rows (pair 3, joined in chunks)'
    >>> hot.to_dict()['key']
    [7]
    """

    pair: int
    columns: tuple
    key: tuple
    left_rows: int
    right_rows: int

    def name(self) -> str:
        """``col=value`` for each key column, as the warning names the key."""
        return ", ".join(f"{c}={v!r}" for c, v in zip(self.columns, self.key))

    def warning(self) -> str:
        return (f"skew: key {self.name()} holds {_rows(self.left_rows, 'left')} and "
                f"{_rows(self.right_rows, 'right')} (pair {self.pair}, joined in chunks)")

    def to_dict(self) -> dict[str, Any]:
        """For JSON: the key values as a list where JSON has them (else as text)."""
        return {"pair": self.pair, "columns": list(self.columns), "key": _plain(self.key, None),
                "left_rows": self.left_rows, "right_rows": self.right_rows}


def chart(rows: np.ndarray, median: float, title: str, width: int = 240, height: int = 40) -> str:
    """An inline SVG of ``rows`` sorted largest first (a column per partition, or per group of
    neighbours in that order when there are many), with ``median`` as a dashed line.

    >>> chart(np.array([1, 3, 2]), 2.0, 'rows').startswith('<svg')
    True
    """
    title = html.escape(title)
    if not len(rows) or not rows.max():
        return f"<svg width='{width}' height='{height}' role='img'><title>{title}</title></svg>"
    ranked = np.sort(rows)[::-1]
    columns = min(len(ranked), _CHART_COLUMNS)
    # the first of each group is its largest: a single huge partition is never averaged away
    tops = ranked[np.linspace(0, len(ranked), columns, endpoint=False).astype(np.int64)]
    scale = height / float(ranked[0])
    step = width / columns
    bars = "".join(
        f"<rect x='{i * step:.2f}' y='{height - h:.2f}' width='{max(step - 0.5, 0.5):.2f}' height='{h:.2f}'/>"
        for i, h in enumerate(np.where(tops > 0, np.maximum(tops * scale, 1.0), 0.0))
    )
    y = height - median * scale
    return (
        f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"style='background:#f6f6f6'><title>{title}</title><g fill='#4878a8'>{bars}</g>"
        f"<line x1='0' x2='{width}' y1='{y:.2f}' y2='{y:.2f}' stroke='#c33' stroke-dasharray='3,2'/></svg>"
    )


def _number(x: float, decimals: int = 1) -> str:
    """``x`` with thousands separators, without a decimal part when it is whole."""
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.{decimals}f}"


def _rows(n: int, side: str) -> str:
    return f"{n:,} {side} row{'' if n == 1 else 's'}"


def _plain(key: Any, path: str | None) -> Any:
    """``key`` as JSON has it: a number, a string, a list of key values; else its path.

    >>> _plain(3, None), _plain(('DE', 2, None), 'c=DE/d=2/e=x'), _plain((float('nan'),), 'f=nan')
    (3, ['DE', 2, None], 'f=nan')
    """
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    if isinstance(key, tuple) and all(_json_value(v) for v in key):
        return list(key)
    if isinstance(key, str):
        return key
    return path if path is not None else str(key)


def _json_value(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, str)) or (isinstance(v, float) and np.isfinite(v))
