"""What a partition job is asked to do: :class:`Options` (the arguments of
:func:`shuffle_kit.partition`), the memory limit's default (its rule is
:func:`shuffle_kit.byte_sizes.check_memory_limit`), and :func:`check`, which
refuses bad options in one line before anything is read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..byte_sizes import check_memory_limit
from ..errors import JobError
from ..io.readers import ReadOptions
from .layout import Layout
from .writers import COMPRESSIONS, FORMATS

MAX_PARTITIONS = 1024  # directories --by-value makes unless told otherwise (as pyarrow's max_partitions)


@dataclass
class Options:
    """What :func:`run` is asked to do (the arguments of :func:`partition`)."""

    inputs: Sequence[str]
    on: Sequence[str]
    out: str
    npartitions: int | None = None
    by_value: bool = False
    by_range: bool = False  # partitions in key order (see shuffle_kit.partitioning.by_range)
    descending: Sequence[str] = ()  # columns ordered descending: by_range's keys, layout.sort_by's
    na_position: str = "last"  # where by_range and layout.sort_by put nulls and NaN: "last" or "first"
    format: str = "parquet"
    memory_limit: int = 10**9
    tmp: str | None = None
    exists: str = "error"
    compression: str = "lz4"
    progress: bool | None = None
    threads: int | None = None  # None: the CPUs this process may use
    max_partitions: int | None = MAX_PARTITIONS  # key values (directories) by_value may make
    read: ReadOptions = field(default_factory=ReadOptions)  # hive discovery, CSV delimiter
    # instead of ``inputs``: an in-memory or streamed input (a polars DataFrame or LazyFrame,
    # a pyarrow Table, RecordBatchReader or dataset, an object with __arrow_c_stream__)
    data: Any = None
    layout: Layout = Layout()



def check(opts: Options) -> None:
    """Refuse options that cannot work, in one line naming the option, before any input is
    read."""
    check_memory_limit(opts.memory_limit)
    if opts.format not in FORMATS:
        raise JobError(f"--format must be one of {', '.join(FORMATS)}, not {opts.format!r}")
    if opts.compression not in COMPRESSIONS:
        raise JobError(f"--compression must be one of {', '.join(COMPRESSIONS)}, not {opts.compression!r}")
    if opts.exists not in ("error", "overwrite", "append"):
        raise JobError(f"--exists must be error, overwrite or append, not {opts.exists!r}")
    layout = opts.layout
    if not isinstance(layout, Layout):
        raise JobError(f"layout must be a shuffle_kit.Layout, not {type(layout).__name__}")
    problem = layout.problem()
    if problem:
        raise JobError(problem)
    if layout.keep_keys and not opts.by_value:
        raise JobError("--keep-keys is for --by-value output (files by hash partition always hold their key columns)")
    if layout.empty_files and opts.by_value:
        raise JobError("--empty-files is for hash partitions (--by-value makes a directory only for a value present)")
    if layout.row_group_size is not None and opts.format == "csv":
        raise JobError("--row-group-size: CSV files have no row groups (use --format parquet or arrow)")
    if opts.by_range and opts.by_value:
        raise JobError("--by-range and --by-value exclude each other: files in key order, or a directory per key value")
    if opts.by_range and opts.exists == "append":
        raise JobError(
            "--by-range cannot --exists append: the new files' key ranges would overlap the old files', so the "
            "output would no longer be in key order (use --exists overwrite, or partition old and new rows together)"
        )
    if opts.npartitions is not None and opts.npartitions < 1:
        raise JobError(f"--npartitions must be at least 1, not {opts.npartitions}")
    if not opts.on or any(not k for k in opts.on):
        raise JobError("--on: give one or more column names, separated by commas")
    check_order(opts)


def check_order(opts: Options) -> None:
    """Refuse ``descending`` and ``na_position`` where they order nothing."""
    if opts.na_position not in ("last", "first"):
        raise JobError(f"--na-position must be last or first, not {opts.na_position!r}")
    if isinstance(opts.descending, str) or not all(isinstance(c, str) and c for c in opts.descending):
        raise JobError(f"--descending: give one or more column names, separated by commas (not {opts.descending!r})")
    ordered = [*(opts.on if opts.by_range else ()), *opts.layout.sort_by]
    if (opts.descending or opts.na_position != "last") and not ordered:
        what = "--descending" if opts.descending else "--na-position"
        raise JobError(f"{what} orders the key ranges of --by-range and the rows of --sort-by: give one of them")
    for c in opts.descending:
        if c not in ordered:
            raise JobError(
                f"--descending names {c!r}, which the job does not order by: name --sort-by columns"
                + (" or key columns (--on)" if opts.by_range else " (or key columns, with --by-range)")
            )
