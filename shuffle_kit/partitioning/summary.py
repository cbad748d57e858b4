"""What a partition job did: :class:`Summary` (rows, files, bytes, time, peak memory and
rows per file), as the command line prints it (its ``str``), as ``--json`` and as a notebook
shows it."""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import Any

from ..byte_sizes import format_size
from ..partition_sizes import PartitionSizes


@dataclass(repr=False)
class Summary:
    """What a job did: rows, files, bytes, time, peak memory, and the rows of every
    partition (``sizes``: hash partitions by number, or ``--by-value`` directories with
    their key values) to see skew; ``lines()`` is what the command line prints (and
    ``str(summary)``, so ``print(summary)`` shows the same), ``warnings()`` what it warns
    about, ``to_dict()`` its ``--json``, and a notebook shows it as a table with a chart of
    the partition sizes. Its ``repr`` is one short line, whatever the number of files.

    >>> s = Summary('out', rows_in=10, rows_out=10, partitions=4, files=3, bytes_out=2048)
    >>> s
    Summary(out='out', ok=True, rows_in=10, rows_out=10, partitions=4, files=3, bytes_out='2.0 kB')
    >>> print(s)  # doctest: +ELLIPSIS
    output      out
    rows in     10 (from 0 files, 0 B)
    rows out    10
    partitions  4 (3 files, 2.0 kB)
    ...
    """

    out: str
    rows_in: int = 0
    rows_out: int = 0
    partitions: int = 0
    files: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    peak_rss: int = 0
    inputs: int = 0
    sizes: PartitionSizes | None = None
    source: str = ""  # what was read when it was not files ("polars LazyFrame", ...); bytes_in: its size in memory

    @property
    def ok(self) -> bool:
        return self.rows_in == self.rows_out

    def lines(self) -> list[str]:
        mark = "" if self.ok else "   <-- MISMATCH"
        return [
            f"output      {self.out}",
            f"rows in     {self.rows_in:,} (from {self._read_from()})",
            f"rows out    {self.rows_out:,}{mark}",
            f"partitions  {self.partitions:,} ({self.files:,} file{'s' if self.files != 1 else ''}, "
            f"{format_size(self.bytes_out)})",
            f"time        {self.seconds:.2f} s ({self.rows_in / max(self.seconds, 1e-9) / 1e6:.1f} M rows/s)",
            f"peak memory {format_size(self.peak_rss)} (resident)",
            *self._size_lines(),
        ]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        # the counts only: the sizes of thousands of partitions belong to str() and the notebook
        return (f"Summary(out={self.out!r}, ok={self.ok}, rows_in={self.rows_in:_}, rows_out={self.rows_out:_}, "
                f"partitions={self.partitions:_}, files={self.files:_}, bytes_out={format_size(self.bytes_out)!r})")

    def _size_lines(self) -> list[str]:
        if self.sizes is None or not len(self.sizes):
            return []
        largest = self.sizes.largest(1)[0]
        return [f"{'rows/' + self.sizes.unit:<11} {self.sizes.describe()} (largest: {largest.name()})"]

    def warnings(self) -> list[str]:
        """Lines worth a warning: a file holding more than 10× the median rows (skew)."""
        warning = self.sizes.warning() if self.sizes is not None else None
        return [warning] if warning else []

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain numbers and strings (what ``--json`` prints)."""
        return {
            "out": self.out, "ok": self.ok, "rows_in": self.rows_in, "rows_out": self.rows_out,
            "inputs": self.inputs, "source": self.source or None, "bytes_in": self.bytes_in,
            "partitions": self.partitions, "files": self.files, "bytes_out": self.bytes_out,
            "seconds": self.seconds, "peak_rss": self.peak_rss,
            "sizes": self.sizes.to_dict() if self.sizes is not None else None,
        }

    def _read_from(self) -> str:
        what = self.source or f"{self.inputs} file{'s' if self.inputs != 1 else ''}"
        return f"{what}, {format_size(self.bytes_in)}" if self.bytes_in or not self.source else what

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(line[:12].strip())}</th>"
            f"<td style='text-align:left'>{html.escape(line[12:])}</td></tr>"
            for line in self.lines()
        )
        if self.sizes is not None:  # lines() has the statistics already
            rows += self.sizes.html(stats=False)
        return f"<div><strong>shuffle_kit.partition</strong><table>{rows}</table></div>"


def peak_rss() -> int:
    """This process's peak resident memory in bytes.

    Linux's VmHWM belongs to the memory of this program; ``ru_maxrss`` survives
    ``fork`` + ``exec`` and so can report a large parent's peak instead of ours.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
