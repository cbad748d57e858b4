"""The partition job (``shuffle_kit.partition``, ``shuffle-kit partition``): files in, one
file per hash partition (or per key value) out.

The inputs are read in chunks of at most ``memory_limit / 32`` (64 MiB at most), on a
thread of their own one chunk ahead (unless ``threads=1``); memory stays within
``memory_limit`` plus the interpreter (see :data:`OVERHEAD`). Half the limit holds data
waiting to be written.

- Hash partitions go through the partition engine (:mod:`shuffle_kit.partition.engine`)
  for every partition count and budget: row groups into open files while the input is
  read when the files and their writers fit, sorted runs under ``tmp`` merged into whole
  files otherwise. String columns stored dictionary-encoded in Parquet inputs travel as
  dictionary indices, into Parquet outputs' dictionary pages.
- ``by_value``: the same engine, through sorted runs: each hash partition, once whole, is
  grouped by key value into hive directories (:mod:`shuffle_kit.partition.values`).

Everything is written into a hidden directory beside ``out`` and put in its place only
when complete and when the rows written equal the rows read (:func:`_publish`); the runs
and that directory are removed on success, failure and interrupt, and by a later job
after ``kill -9`` (:mod:`shuffle_kit.scratch`).

``exists="append"`` adds files to an existing output instead: every file the job writes
has a token of its own in its name (``part-00003-<token>.parquet``, ``k=1/part-<token>-
00000.parquet``), so no name can be one already there; once complete, each file is moved
in with a rename that refuses to replace anything (:func:`_publish_new`), and a failure
while moving them takes back those moved so far. Appends are refused when the existing
files' columns differ from the new rows' (:func:`_check_append`).

Each file's layout (rows per file, row groups, key columns kept, sort order) is a
:class:`~shuffle_kit.partition.layout.Layout`.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pyarrow as pa

from .. import scratch
from ..filesystems import Location, locate
from ..limits import arrow_threads, resolve_threads
from ..shuffle.inputs import ReadOptions
from ..sizes import PartitionSizes
from ..units import format_size, parse_size
from . import engine, object_store
from .layout import Layout
from .values import ValueFiles
from .writers import COMPRESSIONS, FORMATS

MAX_PARTITIONS = 1024  # directories --by-value makes unless told otherwise (as pyarrow's max_partitions)
OVERHEAD = 300 * 2**20  # interpreter, pandas, pyarrow, allocator slack: peak RSS <= limit + this
STREAM_NPARTITIONS = 64

logger = logging.getLogger(__name__)


class JobError(Exception):
    """A problem the user can fix (bad option, missing column, unreadable file, ...)."""


@dataclass
class Options:
    """What :func:`run` is asked to do (the arguments of :func:`partition`)."""

    inputs: Sequence[str]
    on: Sequence[str]
    out: str
    npartitions: int | None = None
    by_value: bool = False
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


@dataclass
class Summary:
    """What a job did: rows, files, bytes, time, peak memory, and the rows of every output
    file (``sizes``: hash partitions by number, or ``--by-value`` directories with their key
    values) to see skew; ``lines()`` is what the command line prints, ``warnings()`` what it
    warns about, ``to_dict()`` its ``--json``, and a notebook shows it as a table with a
    chart of the partition sizes."""

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
            f"partitions  {self.partitions:,} ({self.files:,} file{'s' if self.files != 1 else ''}, {format_size(self.bytes_out)})",
            f"time        {self.seconds:.2f} s ({self.rows_in / max(self.seconds, 1e-9) / 1e6:.1f} M rows/s)",
            f"peak memory {format_size(self.peak_rss)} (resident)",
            *self._size_lines(),
        ]

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
            "partitions": self.partitions, "files": self.files, "bytes_out": self.bytes_out, "seconds": self.seconds, "peak_rss": self.peak_rss,
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


def use_fast_allocator() -> None:
    """Make Arrow allocate with jemalloc (else the system allocator) in THIS process, unless
    ARROW_DEFAULT_MEMORY_POOL says otherwise. For the command line, which owns its process:
    on the 20M-row benchmark mimalloc (pyarrow's default) spent ~1 s more in the kernel
    (page faults of buffers allocated and released per chunk)."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    for make in (pa.jemalloc_memory_pool, pa.system_memory_pool):
        try:
            pa.set_memory_pool(make())
            return
        except (NotImplementedError, pa.ArrowException, AttributeError):
            continue


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


def default_limit() -> int:
    """1 GB, or half the memory this process may use if that is less (a container's cgroup
    limit counts, not the host's memory)."""
    from ..limits import available_memory

    return int(min(10**9, max(2**20, available_memory() // 2)))


def parse_limit(text: int | str) -> int:
    """A memory limit in bytes (see :func:`shuffle_kit.units.parse_size`), at least 1 MiB.

    >>> parse_limit('1GB'), parse_limit('1.5 GiB')
    (1000000000, 1610612736)
    """
    value = parse_size(text)
    if value < 2**20:
        raise ValueError(f"memory limit {text!r} is below 1 MiB")
    return value


def one_line(e: BaseException) -> str:
    text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(str(text).split()) or type(e).__name__


# -- checks before any work --------------------------------------------------------------------


def _target(opts: Options, inputs: list[Any]) -> Location:
    """Where the output goes; checks of a remote ``--out`` (a local one: :func:`_check_out`)."""
    try:
        target = locate(opts.out)
    except ValueError as e:
        raise JobError(f"--out: {one_line(e)}") from None
    if target.local:
        return target
    if opts.exists == "append":
        raise JobError(f"--exists append: only for a local --out (object stores have no rename that refuses to replace a file): {opts.out!r}")
    for f in inputs:
        if f.location.fs.type_name == target.fs.type_name and (f.location.path + "/").startswith(target.path.rstrip("/") + "/"):
            raise JobError(f"--out {opts.out!r} contains the input file {f.location.url!r}: choose another place")
    try:
        object_store.check(target, opts.exists)
    except ValueError as e:
        raise JobError(one_line(e)) from None
    return target


def _check_out(opts: Options, paths: list[str]) -> str:
    out = os.path.abspath(opts.out)
    if os.path.lexists(out) and not os.path.isdir(out):
        raise JobError(f"--out {opts.out!r} exists and is not a directory")
    if os.path.isdir(out) and os.listdir(out) and opts.exists == "error":
        raise JobError(f"--out {opts.out!r} is not empty (use --exists overwrite to replace it, or append to add files)")
    real = os.path.realpath(out)
    for p in paths:
        rp = os.path.realpath(p)
        if rp == real or rp.startswith(real + os.sep):
            raise JobError(f"--out {opts.out!r} contains the input file {p!r}: choose another directory")
    for given in opts.inputs:
        # a directory read whole (or a recursive glob) would read this output next time
        base = given.split("**")[0] if "**" in given else given
        if os.path.isdir(base):
            rb = os.path.realpath(base)
            if real == rb or real.startswith(rb.rstrip(os.sep) + os.sep):
                raise JobError(
                    f"--out {opts.out!r} is inside the input directory {given!r}: every later job over that "
                    "directory would read the output as input; choose a directory outside it"
                )
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise JobError(f"cannot create the parent of --out {opts.out!r}: {one_line(e)}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise JobError(f"cannot write into {parent!r} (the parent of --out)")
    return out


def _open_inputs(opts: Options, chunk_bytes: int) -> Any:
    source = _open_data(opts, chunk_bytes) if opts.data is not None else _open_files(opts, chunk_bytes)
    columns = source.columns or []
    if opts.by_value and len(opts.on) == len(columns):
        raise JobError("--by-value: every column is a key column, so the files would hold no data")
    return source


def _open_files(opts: Options, chunk_bytes: int) -> Any:
    from ..shuffle.inputs import open_source

    on = list(opts.on)
    try:
        # (hash partitions: string columns stay dictionary-encoded from the files to the files)
        source = open_source(list(opts.inputs), chunk_bytes, dictionary_except=None if opts.by_value else on,
                             read=opts.read)
    except Exception as e:
        raise JobError(one_line(e)) from None
    first: dict[tuple[str, str], str] = {}
    for f in source.files:
        where = os.path.realpath(f.location.path) if f.location.local else f.location.path
        twice = first.get((f.location.fs.type_name, where))
        if twice is not None:
            also = f" (also as {f.location.url!r})" if twice != f.location.url else ""
            raise JobError(f"the input file {twice!r} is given twice{also}: its rows would be read twice")
        first[(f.location.fs.type_name, where)] = f.location.url
    for f, schema in zip(source.files, source.file_schemas):  # a file without a key: null keys
        absent = [k for k in on if k not in schema.names]
        if absent:
            names = schema.names
            shown = ", ".join(map(str, names[:20])) + (", ..." if len(names) > 20 else "")
            raise JobError(f"key column {absent[0]!r} is not in the input file {f.location.url!r} (columns: {shown})")
    return source


def _open_data(opts: Options, chunk_bytes: int) -> Any:
    """The source of an input that is not files (read once, so opened once)."""
    from ..shuffle.inputs import frame_as_arrow, open_source

    pd = sys.modules.get("pandas")  # (without pandas loaded, nothing is a pandas frame)
    try:
        if pd is not None and isinstance(opts.data, pd.DataFrame):
            source = frame_as_arrow(opts.data, chunk_bytes)
        else:
            source = open_source(opts.data, chunk_bytes)
    except Exception as e:
        raise JobError(f"cannot read the input: {one_line(e)}") from None
    if source.schema is None:  # an iterable of pandas frames: no Arrow schema up front
        raise JobError(
            f"partition() takes files, a DataFrame or Arrow data (a polars frame, a pyarrow Table or "
            f"dataset, an Arrow C stream), not a {source.description}: concatenate it, or give a pyarrow "
            f"RecordBatchReader"
        )
    columns = source.columns or []
    missing = [k for k in opts.on if k not in columns]
    if missing:
        shown = ", ".join(map(str, columns[:20])) + (", ..." if len(columns) > 20 else "")
        raise JobError(f"key column {missing[0]!r} is not in the input (columns: {shown})")
    return source


# -- the job -----------------------------------------------------------------------------------


def _dictionary_keys(source: Any, on: list[str]) -> list[str]:
    """Key columns to store with a dictionary: those the Parquet inputs store with one (their
    values repeat; a hash partition then holds a fraction of them). Keys that are all
    distinct would make the writer build a dictionary, give up and write a larger file."""
    from ..shuffle.inputs import stored_with_dictionary

    return stored_with_dictionary(source.parquet_metadata, on)


def _budget(limit: int) -> tuple[int, int]:
    """(chunk bytes, bytes held waiting to be written) for a memory limit."""
    # measured: peak RSS grew by ~13x the chunk size (the chunk read ahead, reader batches,
    # chunks being split and their sorted copies, writes being encoded), so chunks are
    # small. Not a function of the thread count: the files must not be either
    chunk = int(min(64 * 2**20, max(2**20, limit // 32)))
    return chunk, max(2**20, limit // 2)


def partition(
    inputs: str | Sequence[str] | Any,
    on: str | Sequence[str],
    out: str,
    *,
    npartitions: int | None = None,
    by_value: bool = False,
    memory_limit: int | str | None = None,
    threads: int | None = None,
    format: str = "parquet",
    compression: str = "lz4",
    exists: str = "error",
    tmp: str | None = None,
    progress: bool | None = None,
    max_partitions: int | None = MAX_PARTITIONS,
    read: ReadOptions | None = None,
    layout: Layout | None = None,
) -> Summary:
    """Partition the files ``inputs`` (paths, globs, directories or URLs such as
    ``s3://bucket/sales/`` of Parquet, CSV or Arrow files) by the key columns ``on`` into
    ``out``: one file per hash partition (``part-00000.parquet`` ...), or with ``by_value``
    one hive directory per key value. What ``shuffle-kit partition`` does, with the same
    options; returns its summary. Hive directory names in the inputs become columns unless
    ``read=ReadOptions(partitioning="none")``; ``read`` also sets the CSV delimiter.
    ``inputs`` may also be Arrow data in memory or in a stream, read in chunks: a polars
    DataFrame or LazyFrame (streamed, never collected whole), a pyarrow Table,
    RecordBatchReader or dataset, or any object with ``__arrow_c_stream__``.

    ``memory_limit`` bounds what the job holds (peak memory is about this plus
    :data:`OVERHEAD`; default :func:`default_limit`); ``threads`` defaults to the CPUs this process may use, and the
    files are the same for any number. Arrow's own thread pool is sized to ``threads``
    while the job runs (it is process-wide); ``threads=1`` runs everything in the calling
    thread. Raises :class:`JobError` for problems the user
    can fix, with one line naming the file, column or option; ``out`` is then unchanged.
    ``by_value`` refuses more than ``max_partitions`` distinct key values (None: no limit),
    before it makes that many directories. ``exists``: what to do when ``out`` is not
    empty: ``"error"``, ``"overwrite"`` (replaced once the new output is complete) or
    ``"append"`` (new files beside the old ones, see :mod:`~shuffle_kit.partition.job`).
    ``layout``: rows per file and per row group, key columns kept in files by value, sort
    order within files (:class:`~shuffle_kit.partition.layout.Layout`).

    >>> import tempfile, os, pyarrow as pa, pyarrow.parquet as pq
    >>> d = tempfile.mkdtemp()
    >>> pq.write_table(pa.table({'user': [1, 2, 1, 3], 'x': [1.0, 2.0, 3.0, 4.0]}), f'{d}/in.parquet')
    >>> s = partition(f'{d}/in.parquet', 'user', f'{d}/out', npartitions=2, progress=False)
    >>> s.rows_in, s.rows_out, sorted(os.listdir(f'{d}/out'))
    (4, 4, ['part-00000.parquet', 'part-00001.parquet'])
    >>> import shutil; shutil.rmtree(d)
    """
    try:
        limit = default_limit() if memory_limit is None else parse_limit(memory_limit)
    except ValueError as e:
        raise JobError(f"memory_limit: {one_line(e)}") from None
    files = _paths(inputs)
    opts = Options(
        files if files is not None else [], [on] if isinstance(on, str) else list(on), out,
        npartitions=npartitions, by_value=by_value, format=format, memory_limit=limit, tmp=tmp,
        exists=exists, compression=compression, progress=progress, threads=threads, max_partitions=max_partitions,
        read=read or ReadOptions(),
        data=inputs if files is None else None,
        layout=Layout() if layout is None else layout,
    )
    return run(opts)


def _paths(inputs: Any) -> list[str] | None:
    """``inputs`` as a list of paths, or None if it is data rather than file names."""
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    if isinstance(inputs, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in inputs):
        return [os.fspath(p) for p in inputs]
    return None


def run(opts: Options) -> Summary:
    """Run the job; raise :class:`JobError` for problems the user can fix."""
    from ..shuffle.hashing import UnhashableKeyError

    start = time.perf_counter()
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
    if layout.row_group_size is not None and opts.format == "csv":
        raise JobError("--row-group-size: CSV files have no row groups (use --format parquet or arrow)")
    if opts.npartitions is not None and opts.npartitions < 1:
        raise JobError(f"--npartitions must be at least 1, not {opts.npartitions}")
    on = list(opts.on)
    if not on or any(not k for k in on):
        raise JobError("--on: give one or more column names, separated by commas")
    limit = int(opts.memory_limit)
    threads = _threads(opts.threads)
    chunk_bytes, in_memory = _budget(limit)

    source = _open_inputs(opts, chunk_bytes)
    _check_sort_by(layout.sort_by, source.schema)
    if opts.by_value and layout.sort_by:  # files by value are sorted by their keys first
        _check_sort_by(on, source.schema, "--on (sorted first, for --sort-by with --by-value)")
    target = _target(opts, source.files)
    appending = False
    if target.local:
        out = _check_out(opts, [f.location.path for f in source.files if f.location.local])
        parent = os.path.dirname(out)
        appending = opts.exists == "append" and os.path.isdir(out) and bool(os.listdir(out))
        if appending:
            _check_append(out, source.schema, opts)
    else:  # staged on the local disk, then uploaded (--tmp stays local)
        out = target.url
        parent = opts.tmp or tempfile.gettempdir()
    token = _token() if opts.exists == "append" else None
    tmp = opts.tmp or parent
    if not os.path.isdir(tmp):
        raise JobError(f"--tmp {tmp!r} is not a directory")
    summary = Summary(out=out, inputs=len(source.files), bytes_in=sum(f.size for f in source.files))
    if opts.data is not None:  # in memory or streamed: its size in memory, when known
        summary.source, summary.bytes_in = source.description, source.nbytes or 0
    nbytes = source.nbytes
    rows = "unknown" if source.nrows is None else f"{source.nrows:,}"
    held = "unknown" if nbytes is None else format_size(nbytes)
    if opts.data is None:
        logger.info("inputs: %d file%s, %s rows, %s stored, ~%s in memory", summary.inputs,
                    "s" if summary.inputs != 1 else "", rows, format_size(summary.bytes_in), held)
    else:
        logger.info("input: %s, %s rows, ~%s in memory", source.description, rows, held)
    if opts.by_value:
        # partitions are grouped by value a batch at a time: make each about one batch
        n = max(1, math.ceil(nbytes / engine.batch_bytes(in_memory))) if nbytes else STREAM_NPARTITIONS
        n = min(n, 4096)
        why = "by value: hash partitions of about one batch each, grouped by value"
    elif opts.npartitions is not None:
        n = opts.npartitions
        why = "as asked"
    else:
        from ..shuffle.api import PARTITION_BYTES

        n = max(1, math.ceil(nbytes / PARTITION_BYTES)) if nbytes else STREAM_NPARTITIONS
        why = f"input size / {format_size(PARTITION_BYTES)}" if nbytes else "input size unknown"
    logger.info("hash partitions: %d (%s); threads: %d; memory limit %s, chunks of %s", n, why, threads,
                format_size(limit), format_size(chunk_bytes))
    show = _show(opts.progress)

    staging = None
    try:
        _sweep(parent, target.name, tmp)
        staging = scratch.make(f".{target.name}.partial-", parent)
        counter = [0]

        def counted() -> Iterator[Any]:
            with _bar(show, total=source.nrows, unit="rows", unit_scale=True, desc="read") as bar:
                # one thread reads ahead while the others partition, unless there is only one
                for chunk in _read_ahead(source.chunks()) if threads > 1 else source.chunks():
                    rows = chunk.num_rows if isinstance(chunk, pa.Table) else len(chunk)
                    counter[0] += rows
                    bar.update(rows)
                    yield chunk

        try:
            with arrow_threads(threads), _prompt_release(limit), _bar(show, total=source.nrows, unit="rows", unit_scale=True, desc="write") as bar:
                if not opts.by_value:
                    rows = np.zeros(n, dtype=np.int64)
                    summary.rows_out = engine.write_partitions(
                        counted(), on, n, source.schema, staging, opts.format, opts.compression, in_memory, bar.update,
                        source.dictionary, _dictionary_keys(source, on), threads=threads, spill_dir=tmp, sizes=rows,
                        layout=layout, token=token,
                    )
                    summary.partitions = n
                    summary.files = sum(len(files) for _, _, files in os.walk(staging))
                    if layout.max_rows_per_file is None:  # a file per partition
                        names = [engine.part_name(p, opts.format, token) for p in range(n)]
                        summary.sizes = PartitionSizes.of(rows, paths=names, unit="file")
                    else:  # a series of files per partition
                        names = [engine.part_name(p, opts.format, token, "*") for p in range(n)]
                        summary.sizes = PartitionSizes.of(rows, paths=names)
                else:
                    values = ValueFiles(staging, source.schema, on, opts.format, opts.compression,
                                        max_values=opts.max_partitions, layout=layout, token=token)
                    summary.rows_out = engine.partition_into(
                        counted(), on, n, values, in_memory, bar.update, threads=threads, spill_dir=tmp,
                    )
                    summary.files, summary.partitions = values.files, len(values.dirs)
                    dirs = sorted(values.rows)  # not in the order threads finished them
                    summary.sizes = PartitionSizes.of(
                        [values.rows[d] for d in dirs], keys=[values.values[d] for d in dirs], paths=dirs, unit="value",
                    )
        except (KeyError, UnhashableKeyError, TypeError, ValueError, pa.ArrowException) as e:
            raise JobError(one_line(e)) from None
        summary.rows_in = counter[0]
        summary.bytes_out = sum(
            os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(staging) for f in files
        )
        if summary.ok and target.local:
            if appending:
                _publish_new(staging, out)
            else:
                _publish(staging, out)
            staging = None
        elif summary.ok:
            try:
                object_store.publish(staging, target, opts.exists)
            except OSError as e:
                raise JobError(f"cannot publish to {out!r}: {one_line(e)}") from None
        if summary.ok:
            logger.info("published %s: %s rows in %s files, %s", out, f"{summary.rows_out:,}", f"{summary.files:,}",
                        format_size(summary.bytes_out))
        else:
            logger.warning("rows in (%s) != rows out (%s): nothing published", f"{summary.rows_in:,}",
                           f"{summary.rows_out:,}")
        summary.seconds = time.perf_counter() - start
        summary.peak_rss = peak_rss()
        return summary
    finally:
        _cleanup(staging)


def _check_sort_by(columns: Sequence[str], schema: pa.Schema, option: str = "--sort-by") -> None:
    from .sorting import sortable

    for c in columns:
        if c not in schema.names:
            shown = ", ".join(map(str, schema.names[:20])) + (", ..." if len(schema.names) > 20 else "")
            raise JobError(f"{option} column {c!r} is not in the input (columns: {shown})")
        if not sortable(schema.field(c).type):
            raise JobError(f"{option} column {c!r} holds {schema.field(c).type}, which has no order")


def _token() -> str:
    """A word for the names of one job's files: the time (so that appends list in the
    order they were made) and 48 random bits (so that two jobs in one second differ)."""
    import secrets

    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + secrets.token_hex(6)


def _comparable(t: pa.DataType) -> pa.DataType:
    """A type as a file stores it, whatever way Arrow holds it in memory."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    return t


def _check_append(out: str, schema: pa.Schema, opts: Options) -> None:
    """Refuse to append to ``out`` unless it holds files like the new ones: the same format,
    hash files or the same key directories, and the same columns with the same types (of
    the first file found; CSV: the same names)."""
    from . import hive

    ext = FORMATS[opts.format]
    data = []
    for root, dirs, files in os.walk(out):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for f in sorted(files):
            if f.startswith((".", "_")):  # _SUCCESS, _common_metadata, hidden files
                continue
            path = os.path.join(root, f)
            if not f.endswith(ext):
                raise JobError(f"--exists append: {path!r} in --out is not a {opts.format} file like the new ones")
            data.append(os.path.relpath(path, out))
    if not data:
        raise JobError(f"--exists append: --out {opts.out!r} holds no {opts.format} files to append to")
    first = data[0]
    parts = first.split(os.sep)[:-1]
    want = [hive.encode_name(k) for k in opts.on] if opts.by_value else []
    names = [d.split("=", 1)[0] for d in parts]
    if names != want or any("=" not in d for d in parts):
        where = f"in directories {'/'.join(parts)!r}" if parts else "at the top of --out"
        shape = f"in hive directories {'/'.join(f'{n}=...' for n in want)}" if want else "at the top of --out"
        raise JobError(f"--exists append: --out holds files {where} (e.g. {first!r}); the new ones go {shape}")
    new = schema
    if opts.by_value and not opts.layout.keep_keys:
        new = pa.schema([f for f in schema if f.name not in opts.on])
    old = _file_schema(os.path.join(out, first), opts.format)
    for field in new:
        if field.name not in old.names:
            raise JobError(f"--exists append: column {field.name!r} of the new rows is not in the files of --out (e.g. {first!r})")
        if opts.format != "csv" and _comparable(old.field(field.name).type) != _comparable(field.type):
            raise JobError(
                f"--exists append: column {field.name!r} is {_comparable(field.type)} in the new rows but "
                f"{_comparable(old.field(field.name).type)} in the files of --out (e.g. {first!r})"
            )
    for name in old.names:
        if name not in new.names:
            raise JobError(f"--exists append: column {name!r} of the files in --out (e.g. {first!r}) is not in the new rows")


def _file_schema(path: str, fmt: str) -> pa.Schema:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path)
        if fmt == "arrow":
            with pa.OSFile(path, "rb") as f:
                return pa.ipc.open_file(f).schema
        import pyarrow.csv as pacsv

        return pacsv.open_csv(path).schema
    except (OSError, pa.ArrowException) as e:
        raise JobError(f"--exists append: cannot read {path!r} in --out: {one_line(e)}") from None


SMALL_LIMIT = 128 * 2**20  # below this, pages jemalloc keeps after a free are a large share of the promise


@contextmanager
def _prompt_release(limit: int) -> Iterator[None]:
    """Under a small limit, have jemalloc return freed pages at once rather than after its
    decay time: the pages it keeps would otherwise be a large share of limit + OVERHEAD
    (measured: ~130 MB on a skewed job under 100MB). It costs page faults, so only there."""
    import pyarrow as pa

    if limit > SMALL_LIMIT or pa.default_memory_pool().backend_name != "jemalloc":
        yield
        return
    pa.jemalloc_set_decay_ms(0)
    try:
        yield
    finally:
        pa.jemalloc_set_decay_ms(1000)  # jemalloc's default in Arrow


def _threads(threads: int | None) -> int:
    try:
        return resolve_threads(threads)
    except ValueError as e:
        raise JobError(f"--threads: {one_line(e)}") from None


def _read_ahead(chunks: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """``chunks``, read on a thread ``depth`` chunks ahead of the consumer (file decoding
    releases the GIL, so it overlaps the shuffle's appends)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        """Hand ``item`` over unless the consumer has stopped."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
                del chunk
            item: Any = done
        except BaseException as e:  # handed to the consumer
            item = e
        put(item)

    thread = threading.Thread(target=reader, name="shuffle_kit-read", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            del item
    finally:
        stop.set()
        thread.join(timeout=5)


class _NoBar:
    """A progress bar that shows nothing (tqdm itself takes ~30 ms to import)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None


def _bar(show: bool, **kwargs: Any) -> Any:
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(leave=False, **kwargs)


def _show(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    try:
        import sys

        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # pragma: no cover
        return False


def _publish(staging: str, out: str) -> None:
    """Move the finished output into place, replacing an old ``out`` only now and in one
    step where the system can: Linux exchanges the two directories atomically
    (``renameat2(RENAME_EXCHANGE)``), so an interrupt leaves either the old output or the
    new one at ``out``, never neither. Elsewhere the old one is moved aside first."""
    # the staging directory was made private (mode 0700); the output gets what a directory
    # made by the user would
    os.chmod(staging, 0o777 & ~_umask())
    if os.path.isdir(out) and not os.path.islink(out) and not os.listdir(out):
        os.rmdir(out)
    if not os.path.lexists(out):
        os.rename(staging, out)
        scratch.release(staging)
        logger.debug("renamed %s to %s", staging, out)
    elif _exchange(staging, out):
        scratch.remove(staging)  # which now holds the old output
        logger.debug("exchanged %s with the old %s in one step, then removed the old", staging, out)
    else:
        logger.debug("moving the old %s aside, then %s in its place", out, staging)
        old = scratch.make(f".{os.path.basename(out)}.old-", os.path.dirname(out))
        os.rename(out, os.path.join(old, "out"))
        os.rename(staging, out)
        scratch.release(staging)
        scratch.remove(old)


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:  # read without changing it (Linux)
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def _renameat2(a: str, b: str, flags: int) -> bool:
    """Linux's ``renameat2(a, b, flags)``; False where the system or file system lacks it."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:  # glibc before 2.28
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without it
        return False
    if err == errno.EEXIST:
        raise FileExistsError(err, f"cannot append: {b!r} exists already")
    raise OSError(err, f"cannot put the output in place at {b!r}: {os.strerror(err)}")


def _exchange(a: str, b: str) -> bool:
    """Swap directories ``a`` and ``b`` in one step; False where the system cannot."""
    return _renameat2(a, b, RENAME_EXCHANGE)


def _move_new(src: str, dst: str) -> None:
    """Rename file ``src`` to ``dst`` in one step, never replacing a file at ``dst``."""
    if _renameat2(src, dst, RENAME_NOREPLACE):
        return
    try:
        os.link(src, dst)  # fails if dst exists
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"cannot append: {dst!r} exists already") from None
    os.unlink(src)


def _publish_new(staging: str, out: str) -> None:
    """Move every file of ``staging`` into the same place under ``out``, replacing
    nothing; on any failure (or interrupt) take back the files and directories moved or
    made so far, so that ``out`` is as it was."""
    mode = 0o777 & ~_umask()
    moved: list[str] = []
    made: list[str] = []
    try:
        for root, dirs, files in os.walk(staging):
            dirs.sort()
            rel = os.path.relpath(root, staging)
            target = out if rel == "." else os.path.join(out, rel)
            if not os.path.isdir(target):
                os.mkdir(target, mode)
                made.append(target)
            for f in sorted(files):
                dst = os.path.join(target, f)
                _move_new(os.path.join(root, f), dst)
                moved.append(dst)
    except BaseException:
        for path in reversed(moved):
            _quietly(os.unlink, path)
        for path in reversed(made):
            _quietly(os.rmdir, path)
        raise
    logger.debug("appended %d files to %s, each renamed in without replacing one (%d new directories)",
                 len(moved), out, len(made))
    scratch.remove(staging)


def _quietly(action: Any, path: str) -> None:
    try:
        action(path)
    except OSError:
        pass


def _sweep(parent: str, name: str, tmp: str) -> None:
    """Remove what jobs killed before their end left in ``parent`` (beside a local output
    named ``name``, or where a remote one is staged) and in ``tmp``."""
    for prefix in (f".{name}.partial-", f".{name}.old-"):
        scratch.sweep(prefix, parent)
    scratch.sweep(engine.RUNS_PREFIX, tmp)


def _cleanup(staging: str | None) -> None:
    """Remove unfinished output, even during Ctrl-C (the engine removes its own runs)."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        if staging is not None:
            scratch.remove(staging)
    finally:
        if main:
            signal.signal(signal.SIGINT, old)
