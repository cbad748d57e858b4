"""How the partition job lays out each output file: :class:`Layout`, one option object
for ``shuffle_kit.partition(..., layout=...)`` and the command line's output flags.

>>> Layout(max_rows_per_file=1_000_000, sort_by='ts')
Layout(max_rows_per_file=1000000, row_group_size=None, keep_keys=False, sort_by=('ts',), empty_files=False)
>>> Layout(sort_by='a, b').sort_by
('a', 'b')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Layout:
    """Output file controls (all off by default):

    - ``max_rows_per_file``: a partition (or key value) with more rows gets several files,
      all but its last with exactly this many rows;
    - ``row_group_size``: rows of each Parquet row group (Arrow IPC record batch), all but
      a file's last; the rows held for an unfinished group count against the memory
      limit (not for CSV files, which have none);
    - ``keep_keys``: with ``by_value``, the key columns stay in the files too (polars'
      ``include_key``), besides the directory names;
    - ``sort_by``: columns the rows of each file are sorted by (ascending, NaN and nulls
      last, stable, as pandas' ``sort_values``; ``partition(..., descending=...,
      na_position=...)`` changes that; see :mod:`~shuffle_kit.partitioning.sorting`), in
      bounded memory however large a partition is. A string is split at commas;
    - ``empty_files``: a hash partition without rows still gets its file (empty, with the
      schema), so that there is exactly one file per partition (or one series, with
      ``max_rows_per_file``), for readers that expect a fixed set of buckets. By default
      a partition without rows writes no file, as polars and DuckDB do (the job's summary
      still counts it, with 0 rows).
    """

    max_rows_per_file: int | None = None
    row_group_size: int | None = None
    keep_keys: bool = False
    sort_by: tuple[str, ...] = field(default=())
    empty_files: bool = False

    def __post_init__(self) -> None:
        sort_by: str | Sequence[str] | None = self.sort_by
        if sort_by is None:
            sort_by = ()
        elif isinstance(sort_by, str):
            sort_by = [c.strip() for c in sort_by.split(",")]
        object.__setattr__(self, "sort_by", tuple(sort_by))

    def problem(self) -> str | None:
        """What is wrong with these settings alone, in one line naming the option."""
        for name in ("max_rows_per_file", "row_group_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                return f"--{name.replace('_', '-')} must be a whole number of at least 1, not {value!r}"
        for name in ("keep_keys", "empty_files"):
            if not isinstance(getattr(self, name), bool):
                return f"--{name.replace('_', '-')} must be True or False, not {getattr(self, name)!r}"
        if not all(isinstance(c, str) and c for c in self.sort_by):
            return f"--sort-by: give one or more column names, separated by commas (not {list(self.sort_by)!r})"
        if len(set(self.sort_by)) != len(self.sort_by):
            return f"--sort-by names a column twice: {', '.join(self.sort_by)}"
        return None


DEFAULT_LAYOUT = Layout()  # every control off; one shared instance serves as a default argument (Layout is frozen)
