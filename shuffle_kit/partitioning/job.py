"""The partition job (``shuffle_kit.partition``, ``shuffle-kit partition``): files in, one
file per hash partition that has rows (or per key value) out.

:func:`run` is the job's spine: it checks the options, opens the inputs, checks where the
output goes, chooses the hash partitions, writes them and publishes them; each decision is
a function of its own, below it.

Memory (:func:`plan_budget`): half of ``memory_limit`` holds rows waiting to be written; the
inputs are read in chunks of a 24th of the limit, at least 1 MiB and at most 16 MiB, the
same for any thread count (what is written when depends on the chunks, so the files are the
same too), on a thread of their own one chunk ahead (unless ``threads=1``). Peak memory
stays within ``memory_limit`` plus the interpreter (see :data:`OVERHEAD`).

The hash partitions (:func:`_npartitions`): as many as asked; else one per
:data:`~shuffle_kit.defaults.PARTITION_BYTES` of input in memory, or
:data:`~shuffle_kit.defaults.STREAM_NPARTITIONS` when the input's size is not known up
front. ``by_value`` chooses its own: hash partitions of about one batch each, as each is
grouped by value whole (at most :data:`BY_VALUE_MAX_NPARTITIONS`).

- Hash partitions go through the partition engine (:mod:`shuffle_kit.partitioning.engine`)
  for every partition count and budget: row groups into open files while the input is
  read when the files and their writers fit, sorted runs under ``tmp`` read back into
  whole files otherwise. String columns stored dictionary-encoded in Parquet inputs travel
  as dictionary indices, into Parquet outputs' dictionary pages: indices into one
  dictionary per column for the whole job, up to 1 / :data:`SHARED_DICTIONARY_SHARE` of the
  budget (:mod:`~shuffle_kit.partitioning.dictionaries`); string columns whose first values
  are mostly distinct are written as values, without the Parquet writer's dictionary
  (:func:`~shuffle_kit.partitioning.job_inputs.distinct_strings`).
- ``by_value``: the same engine, through sorted runs: each hash partition, once whole, is
  grouped by key value into hive directories (:mod:`shuffle_kit.partitioning.by_value`).
- ``by_range``: the same engine and files, with range partition ids instead of hash ids:
  a first pass over the key columns alone samples them for the boundaries
  (:mod:`shuffle_kit.partitioning.by_range`), so file ``i``'s keys all sort no later than
  file ``i + 1``'s (ascending or ``descending``, nulls last or first: ``na_position``); with
  ``sort_by`` starting with the keys (ordered alike), the
  files read in name order give the rows in order. Appending is refused (the new files'
  ranges would overlap the old ones'), and so are inputs that can be read only once.

Everything is written into a hidden directory beside ``out`` (for an object store's
``out``: under ``tmp``, or the system's temporary directory, on the local disk) and put in
its place only when complete and when the rows written equal the rows read
(:func:`~shuffle_kit.partitioning.publish_local.publish`, or uploaded by
:func:`~shuffle_kit.partitioning.publish_objects.publish`); the runs and that directory are
removed on success, failure and interrupt, and by a later job after ``kill -9``
(:mod:`shuffle_kit.lifecycle`).

``exists="append"`` adds files to an existing output instead: every file the job writes
has a token of its own in its name (``part-00003-<token>.parquet``, ``k=1/part-<token>-
00000.parquet``), so no name can be one already there; once complete, each file is moved
in with a rename that refuses to replace anything
(:func:`~shuffle_kit.partitioning.publish_local.publish_new`), and a failure
while moving them takes back those moved so far. Appends are refused when the existing
files' columns differ from the new rows' (:func:`~shuffle_kit.partitioning.destination.check_append`).

Each file's layout (rows per file, row groups, key columns kept, sort order) is a
:class:`~shuffle_kit.partitioning.layout.Layout`. Each Parquet and Arrow IPC file of hash
or range partitions records how it was partitioned and its partition
(:mod:`shuffle_kit.io.provenance`: :func:`provenance`), so that ``shuffle_kit.merge`` and
the join job take an output hashed on their keys as it is; files by value and CSV files
record nothing.
"""

from __future__ import annotations

import errno
import itertools
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pyarrow as pa

from .. import lifecycle
from ..byte_sizes import check_memory_limit, format_size
from ..defaults import PARTITION_BYTES, STREAM_NPARTITIONS, default_npartitions, job_memory_limit, show_progress
from ..errors import DiskFullError, JobError, PathError, not_a_directory, one_line
from ..io.filesystems import Location
from ..io.provenance import Provenance, recorded_keys
from ..io.readers import ReadOptions, Source, path_list
from ..kernels.hashing import HASH_VERSION
from ..limits import arrow_threads, resolve_threads
from ..partition_sizes import PartitionSizes
from . import by_range, destination, engine, job_inputs, options, publish_local, publish_objects
from .by_value import ValueFiles
from .dictionaries import SharedDictionaries
from .layout import Layout
from .options import MAX_PARTITIONS, Options
from .summary import Summary, peak_rss

__all__ = ["JobError", "Options", "Summary", "partition", "run", "OVERHEAD"]

OVERHEAD = 300 * 2**20  # interpreter, pandas, pyarrow, allocator slack: peak RSS <= limit + this
# by_value's hash partitions at most: each costs a record batch in every sorted run, however few its rows
BY_VALUE_MAX_NPARTITIONS = 4096
# the job's dictionaries (one per dictionary column, see dictionaries.py) hold at most
# 1 / this of the budget: past it a column keeps its chunks' own dictionaries
SHARED_DICTIONARY_SHARE = 64

logger = logging.getLogger(__name__)


def use_fast_allocator() -> None:
    """Make Arrow allocate with jemalloc (else the system allocator) in THIS process, unless
    ARROW_DEFAULT_MEMORY_POOL says otherwise. For the command line, which owns its process:
    the job allocates and releases chunk-sized buffers for every chunk, and under mimalloc
    (pyarrow's default) their pages are faulted in again, in the kernel, chunk after chunk;
    jemalloc reuses them."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    for make in (pa.jemalloc_memory_pool, pa.system_memory_pool):
        try:
            pa.set_memory_pool(make())
            return
        except (NotImplementedError, pa.ArrowException, AttributeError):
            continue


# -- the job -----------------------------------------------------------------------------------


def partition(
    inputs: str | Sequence[str] | Any,
    on: str | Sequence[str],
    out: str,
    *,
    npartitions: int | None = None,
    by_value: bool = False,
    by_range: bool = False,
    descending: str | Sequence[str] = (),
    na_position: str = "last",
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
    ``out``: one file per hash partition that has rows (``part-00000.parquet`` ...; every
    partition with ``layout=Layout(empty_files=True)``), or with ``by_value``
    one hive directory per key value. With ``by_range`` the files are in key order
    (ascending, but the columns named in ``descending``; nulls and NaN last, or first with
    ``na_position="first"``, as pandas' ``sort_values``), each file's keys all sorting no
    later than the next file's, equal keys in one file, sizes balanced from a sample of the
    keys (the input is read twice, the first time only its key columns: so not a stream);
    with ``layout=Layout(sort_by=on)`` too, the dataset is globally sorted in that order
    (``descending`` and ``na_position`` order ``sort_by`` too). What ``shuffle-kit
    partition`` does, with the same options; returns its summary. Hive directory names in
    the inputs become columns unless ``read=ReadOptions(partitioning="none")``; ``read``
    also sets the CSV delimiter.
    ``inputs`` may also be Arrow data in memory or in a stream, read in chunks: a polars
    DataFrame or LazyFrame (streamed, never collected whole), a pyarrow Table,
    RecordBatchReader or dataset, or any object with ``__arrow_c_stream__``.

    ``memory_limit`` bounds what the job holds (peak memory is about this plus
    :data:`OVERHEAD`; bytes or a size such as ``'1GB'``, at least 1 MiB, as for every entry
    point: :func:`~shuffle_kit.byte_sizes.check_memory_limit`; default :func:`~shuffle_kit.defaults.job_memory_limit`);
    ``threads`` defaults to the CPUs this process may use, and the files are the same for
    any number. Arrow's own thread pool is sized to ``threads``
    while the job runs (it is process-wide); ``threads=1`` runs everything in the calling
    thread. Raises :class:`JobError` for problems the user
    can fix, with one line naming the file, column or option; ``out`` is then unchanged.
    ``by_value`` refuses more than ``max_partitions`` distinct key values (None: no limit),
    before it makes that many directories. ``exists``: what to do when ``out`` is not
    empty: ``"error"``, ``"overwrite"`` (replaced once the new output is complete) or
    ``"append"`` (new files beside the old ones, see :mod:`~shuffle_kit.partitioning.job`).
    ``layout``: rows per file and per row group, key columns kept in files by value, sort
    order within files (:class:`~shuffle_kit.partitioning.layout.Layout`).

    >>> import tempfile, os, pyarrow as pa, pyarrow.parquet as pq
    >>> d = tempfile.mkdtemp()
    >>> pq.write_table(pa.table({'user': [1, 2, 1, 3], 'x': [1.0, 2.0, 3.0, 4.0]}), f'{d}/in.parquet')
    >>> s = partition(f'{d}/in.parquet', 'user', f'{d}/out', npartitions=2, progress=False)
    >>> s.rows_in, s.rows_out, sorted(os.listdir(f'{d}/out'))
    (4, 4, ['part-00000.parquet', 'part-00001.parquet'])
    >>> import shutil; shutil.rmtree(d)
    """
    limit = job_memory_limit() if memory_limit is None else check_memory_limit(memory_limit)
    files = path_list(inputs)
    opts = Options(
        files if files is not None else [], [on] if isinstance(on, str) else list(on), out,
        npartitions=npartitions, by_value=by_value, by_range=by_range,
        descending=[c.strip() for c in descending.split(",")] if isinstance(descending, str) else descending,
        na_position=na_position, format=format, memory_limit=limit, tmp=tmp,
        exists=exists, compression=compression, progress=progress, threads=threads, max_partitions=max_partitions,
        read=read or ReadOptions(),
        data=inputs if files is None else None,
        layout=Layout() if layout is None else layout,
    )
    return run(opts)


def run(opts: Options) -> Summary:
    """Run the job ``opts`` describes and return its summary: check the options, open the
    inputs, check where the output goes, choose the hash partitions, write them into a
    hidden staging directory and publish it when the rows written equal the rows read.
    Raise :class:`JobError` for problems the user can fix; the output is then unchanged."""
    start = time.perf_counter()
    options.check(opts)
    threads = job_threads(opts.threads)
    budget = plan_budget(int(opts.memory_limit))
    source = _open_inputs(opts, budget)
    place = prepare_out(opts, source.files, source.schema)
    _log_inputs(opts, source)
    count = _npartitions(opts, source.nbytes, budget)
    _log_plan(count, threads, budget, "range" if opts.by_range else "hash")
    plan = _Plan(count.n, threads, budget, place, show_progress(opts.progress))

    staging = None
    try:
        staging = make_staging(opts, place)
        written = _write(opts, source, staging, plan)
        bytes_out = sum(os.path.getsize(f) for f in files_under(staging))
        if written.ok and publish(staging, place, source.schema, opts):
            staging = None  # (moved into place)
        summary = _summary(opts, source, place.out, written, bytes_out, time.perf_counter() - start)
        _log_outcome(summary)
        return summary
    finally:
        publish_local.cleanup(staging)


# -- what run() decides, in the order it does ---------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """How the job spends its memory ``limit``: inputs read ``chunk_bytes`` at a time,
    ``held_bytes`` of rows held waiting to be written (the engine's budget)."""

    limit: int
    chunk_bytes: int
    held_bytes: int


def plan_budget(limit: int) -> Budget:
    """The budget for a memory limit of ``limit`` bytes.

    >>> plan_budget(10**9)
    Budget(limit=1000000000, chunk_bytes=16777216, held_bytes=500000000)
    >>> plan_budget(48 * 2**20).chunk_bytes == 2 * 2**20
    True
    """
    # beside the half held for writing, peak RSS grows by about ten times the chunk size
    # (the chunk read ahead, reader batches, chunks being split and their sorted copies,
    # writes being encoded), so a chunk is a 24th of the limit; past 16 MiB larger chunks
    # gain no speed, only memory. Not a function of the thread count: what is written when
    # depends on the chunks, and the files must not depend on the thread count either
    chunk = min(16 * 2**20, max(2**20, limit // 24))
    return Budget(limit, chunk, max(2**20, limit // 2))


def _open_inputs(opts: Options, budget: Budget) -> Source:
    """The job's input, opened to be read in the budget's chunks, its key columns (and the
    columns it sorts by) checked before anything is written."""
    source = job_inputs.open_inputs(opts, budget.chunk_bytes)
    job_inputs.check_sort_by(opts.layout.sort_by, source.schema)
    if opts.by_value and opts.layout.sort_by:  # files by value are sorted by their keys first
        job_inputs.check_sort_by(list(opts.on), source.schema, "--on (sorted first, for --sort-by with --by-value)")
    return source


@dataclass(frozen=True)
class Place:
    """Where the job writes. ``target``: ``--out``; ``out``: how the summary names it (an
    absolute path, or the URL); ``parent``: where the hidden staging directory goes (beside
    a local ``--out``; for an object store, the local ``tmp``); ``tmp``: where sorted runs
    go; ``appending``: adding files to a local output that has some; ``token``: the word in
    the new files' names (None: plain ``part-NNNNN`` names)."""

    target: Location
    out: str
    parent: str
    tmp: str
    appending: bool
    token: str | None


def prepare_out(opts: Options, files: list[Any], schema: pa.Schema | None) -> Place:
    """Where the output goes, checked before anything is written: not holding or inside
    one of the input ``files``; a local ``--out`` empty unless told otherwise (and, when
    ``schema`` is known, like the new files, to append to); an object store's checked by a
    probe; ``--tmp`` a directory. What killed jobs left there is recovered or removed first."""
    target = destination.locate_out(opts, files)
    if target.local:
        parent = os.path.dirname(os.path.abspath(opts.out))
    else:  # staged on the local disk, then uploaded (--tmp stays local)
        parent = opts.tmp or tempfile.gettempdir()
        # before the local sweep: a dead job's lock, still there, tells it is dead
        destination.recover(target)
    tmp = opts.tmp or parent
    # what killed jobs left is removed before any check can refuse this job
    publish_local.sweep(parent, target.name, tmp)
    appending = False
    if target.local:
        out = destination.check_out(opts)
        appending = opts.exists == "append" and os.path.isdir(out) and bool(os.listdir(out))
        if appending and schema is not None:
            destination.check_append(out, schema, opts)
        token = destination.token() if opts.exists == "append" else None
    else:
        out = target.url
        if not os.path.isdir(tmp):  # (checked before the probe writes anything)
            raise JobError(f"--tmp {tmp!r} is not a directory")
        # new files never take an old file's name, so the old output stands until the new one is complete
        token = destination.token() if destination.check_remote(target, opts) else None
    if not os.path.isdir(tmp):
        if os.path.lexists(tmp):
            raise not_a_directory(tmp, f"--tmp {tmp!r}")
        raise JobError(f"--tmp {tmp!r} does not exist")
    return Place(target, out, parent, tmp, appending, token)


@dataclass(frozen=True)
class _Count:
    """The number of hash partitions, and why (one phrase, for the log)."""

    n: int
    why: str


def _npartitions(opts: Options, nbytes: int | None, budget: Budget) -> _Count:
    """How many hash partitions an input of ``nbytes`` in memory (None: not known up front)
    goes into, and why.

    >>> _npartitions(Options([], ['k'], 'out', npartitions=8), 2**30, plan_budget(10**9))
    _Count(n=8, why='as asked')
    >>> _npartitions(Options([], ['k'], 'out'), 2**30, plan_budget(10**9))
    _Count(n=11, why='input size / 104.9 MB')
    >>> _npartitions(Options([], ['k'], 'out', by_value=True), 2**30, plan_budget(10**9)).n
    35
    """
    if opts.by_value:
        # a hash partition is grouped by value a batch at a time: make each about one batch
        n = max(1, math.ceil(nbytes / engine.batch_bytes(budget.held_bytes))) if nbytes else STREAM_NPARTITIONS
        return _Count(min(n, BY_VALUE_MAX_NPARTITIONS), "by value: hash partitions of about one batch each, grouped "
                      "by value")
    if opts.npartitions is not None:
        return _Count(opts.npartitions, "as asked")
    return _Count(default_npartitions(nbytes),
                  f"input size / {format_size(PARTITION_BYTES)}" if nbytes else "input size unknown")


@dataclass(frozen=True)
class _Plan:
    """How the rows are written: into ``npartitions`` hash partitions, by ``threads``
    workers, within ``budget``, at ``place``, with progress bars if ``show``."""

    npartitions: int
    threads: int
    budget: Budget
    place: Place
    show: bool


def make_staging(opts: Options, place: Place) -> str:
    """The hidden directory the output is written into, in ``place.parent`` (a scratch
    directory: a later job removes it if this one is killed)."""
    try:
        return lifecycle.make(f".{place.target.name}.partial-", place.parent)
    except OSError as e:  # the hidden directory is ours: name what the user gave
        what = f"the parent of --out {opts.out!r}" if place.target.local else "the local staging directory (--tmp)"
        raise PathError(f"cannot write into {place.parent!r}, {what}: {e.strerror or one_line(e)}", place.parent,
                        e.errno) from None


@dataclass(frozen=True)
class _Written:
    """What writing into the staging directory did: rows read and written, partitions
    (hash partitions, or ``by_value``'s directories), files, and the rows of each."""

    rows_in: int
    rows_out: int
    partitions: int
    files: int
    sizes: PartitionSizes

    @property
    def ok(self) -> bool:
        """Whether every row read was written (else nothing is published)."""
        return self.rows_in == self.rows_out


def _write(opts: Options, source: Source, staging: str, plan: _Plan) -> _Written:
    """Partition the input into ``staging``: a file (or series of files) per hash
    partition, or with ``by_value`` a hive directory per key value. Errors the user can fix
    are raised as :class:`JobError` (:func:`user_errors`)."""
    on, n, token = list(opts.on), plan.npartitions, plan.place.token
    reading = Reading(source, plan.threads, plan.show)
    with (
        user_errors(opts, staging, plan.place.tmp),
        arrow_threads(plan.threads),
        progress_bar(plan.show, total=source.nrows, unit="rows", unit_scale=True, desc="write") as bar,
    ):
        use = engine.Resources(plan.budget.held_bytes, plan.threads, plan.place.tmp)
        if opts.by_value:
            values = ValueFiles(staging, source.schema, on, opts.format, opts.compression,
                                max_values=opts.max_partitions, layout=opts.layout, token=token,
                                descending=opts.descending, na_position=opts.na_position)
            rows_out = engine.partition_into(reading, on, n, values, use, written=bar.update)
            return _Written(reading.rows, rows_out, len(values.dirs), values.files, _value_sizes(values))
        ids = _range_ids(opts, source, plan) if opts.by_range else None
        rows = np.zeros(n, dtype=np.int64)
        if opts.format == "parquet":
            use = engine.Resources(use.budget - shared_dictionaries(reading, source, plan.budget), use.threads,
                                   use.spill_dir)
        chunks: Iterable[pa.Table] = reading
        encode, values_only = job_inputs.dictionary_keys(source, on), []
        if opts.format == "parquet":  # (told by the input's first rows, whatever the thread count)
            first, chunks = _peek(reading)
            values_only = job_inputs.distinct_strings(first, exclude=encode)
        files = engine.PartFiles.of(
            staging, source.schema, opts.format, opts.compression, dictionary=source.dictionary,
            encode=encode, layout=opts.layout, token=token, descending=opts.descending,
            na_position=opts.na_position, provenance=provenance(opts, n), values_only=values_only,
        )
        rows_out = engine.partition_into(chunks, on, n, files, use, written=bar.update, sizes=rows, ids=ids)
        return _Written(reading.rows, rows_out, n, len(files_under(staging)), _part_sizes(rows, opts, token))


def _peek(chunks: Iterable[pa.Table]) -> tuple[pa.Table | None, Iterator[pa.Table]]:
    """The first of ``chunks`` (None if there is none), and all of them, that one included."""
    it = iter(chunks)
    first = next(it, None)
    return first, it if first is None else itertools.chain([first], it)


def provenance(opts: Options, n: int) -> Provenance | None:
    """What each file of the job records of how it was partitioned (its partition aside):
    hash partitions by the documented hash, seed 0 (as :func:`shuffle_kit.shuffle`'s, so
    that ``shuffle_kit.merge`` can take them as they are), or key ranges; None for keys
    named otherwise than by strings."""
    on = recorded_keys(opts.on)
    if on is None:
        return None
    if opts.by_range:
        return Provenance("range", on, n, 0)
    return Provenance("hash", on, n, 0, hash_version=HASH_VERSION, seed=0)


def _range_ids(opts: Options, source: Source, plan: _Plan) -> engine.PartitionIds:
    """``by_range``'s partition ids: the boundaries of ``plan.npartitions`` key ranges, from a
    first pass over the input's key columns alone (:mod:`~shuffle_kit.partitioning.by_range`)."""
    assert source.schema is not None  # (inputs without a schema up front are refused when opened)
    keys = job_inputs.open_keys(opts, source, plan.budget.chunk_bytes)
    ranges = by_range.plan(Reading(keys, plan.threads, plan.show, "sample keys"), opts.on, plan.npartitions,
                           source.schema, plan.budget.held_bytes, opts.descending, opts.na_position)
    return ranges.ids


class Reading:
    """The input's chunks as the engine takes them, counted (``rows``) and shown on a
    progress bar: read on a thread of their own one chunk ahead of the workers, unless
    there is only one; ``transform``, if set, is applied to each there, in input order."""

    def __init__(self, source: Source, threads: int, show: bool, desc: str = "read"):
        self.source, self.threads, self.show, self.desc = source, threads, show, desc
        self.rows = 0
        self.transform: Callable[[Any], Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        with progress_bar(self.show, total=self.source.nrows, unit="rows", unit_scale=True, desc=self.desc) as bar:
            chunks = self.source.chunks()
            if self.transform is not None:
                chunks = map(self.transform, chunks)
            for chunk in _read_ahead(chunks) if self.threads > 1 else chunks:
                rows = chunk.num_rows if isinstance(chunk, pa.Table) else len(chunk)
                self.rows += rows
                bar.update(rows)
                yield chunk


def shared_dictionaries(reading: Reading, source: Source, budget: Budget) -> int:
    """Have ``reading`` map its dictionary columns into one dictionary per column for the
    whole job (:mod:`~shuffle_kit.partitioning.dictionaries`); the bytes those may take (0
    if there are none), held for the whole job and so taken out of what the engine may hold."""
    if not source.dictionary:
        return 0
    shared = SharedDictionaries(source.dictionary, budget.held_bytes // SHARED_DICTIONARY_SHARE)
    reading.transform = shared
    return shared.max_bytes


@contextmanager
def user_errors(opts: Options, staging: str, tmp: str) -> Iterator[None]:
    """Errors of reading and writing as the job raises them: a full disk as a
    :class:`DiskFullError` naming the option whose place is full, bad data (a key that
    cannot be hashed, a value a format cannot hold) as a one-line :class:`JobError`."""
    try:
        yield
    except JobError:
        raise
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(e, opts, staging, tmp) from None
        raise
    except (KeyError, TypeError, ValueError, pa.ArrowException) as e:  # (UnhashableKeyError is a TypeError)
        raise JobError(one_line(e)) from None


def _disk_full(e: OSError, opts: Options, staging: str, tmp: str) -> DiskFullError:
    """The error for a write that found no space, naming the option whose place is full: the
    output is staged beside ``--out``, the sorted runs go under ``--tmp`` (the writers put
    the file's path in ``e.filename``)."""
    path = os.path.abspath(str(e.filename)) if e.filename else ""
    if path.startswith(os.path.abspath(staging) + os.sep):
        where = f"--out {opts.out!r}" if "://" not in opts.out else f"the local staging of --out {opts.out!r} (--tmp)"
    elif opts.tmp is not None and path.startswith(os.path.abspath(tmp) + os.sep):
        where = f"--tmp {opts.tmp!r}"
    else:
        where = f"--out {opts.out!r}" + (f" or --tmp {opts.tmp!r}" if opts.tmp is not None else "")
    named = f" (writing {path!r})" if path else ""
    return DiskFullError(f"no space left on the device of {where}{named}: {os.strerror(e.errno or errno.ENOSPC)}",
                         path or opts.out, e.errno)


def _part_sizes(rows: np.ndarray, opts: Options, token: str | None) -> PartitionSizes:
    """The rows of every hash partition, with its file's name: every partition counts; one
    without rows has no file (no name) unless the layout asks for empty files."""
    series = None if opts.layout.max_rows_per_file is None else "*"
    names = [
        engine.part_name(p, opts.format, token, series) if rows[p] or opts.layout.empty_files else None
        for p in range(len(rows))
    ]
    # a file per partition, or a series of files per partition
    return PartitionSizes.of(rows, paths=names, unit="file" if series is None else "partition")


def _value_sizes(values: ValueFiles) -> PartitionSizes:
    """The rows of every ``by_value`` directory, with its key values, in the directories'
    order (not the order threads finished them)."""
    dirs = sorted(values.rows)
    return PartitionSizes.of(
        [values.rows[d] for d in dirs], keys=[values.values[d] for d in dirs], paths=dirs, unit="value",
    )


def files_under(root: str) -> list[str]:
    """The paths of every file below ``root``."""
    return [os.path.join(r, f) for r, _, files in os.walk(root) for f in files]


def publish(staging: str, place: Place, schema: pa.Schema, opts: Options) -> bool:
    """Put the finished ``staging`` in place; whether it was moved there (a local output)
    rather than uploaded (an object store's: the local copy is still to be removed)."""
    if place.target.local:
        _publish_local(staging, place, schema, opts)
        return True
    try:
        publish_objects.publish(staging, place.target, opts.exists)
    except (OSError, ValueError) as e:
        raise JobError(f"cannot publish to {place.out!r}: {one_line(e)}") from None
    return False


def _publish_local(staging: str, place: Place, schema: pa.Schema, opts: Options) -> None:
    """Put the finished ``staging`` in place at a local ``--out`` (removing it). A new
    output (one that was absent or empty when the job began) replaces nothing that appeared
    meanwhile: another job's output there is appended to (``exists="append"``, its files
    checked as any append's) or refused."""
    out = place.out
    if place.appending:
        publish_local.publish_new(staging, out)
    elif opts.exists == "overwrite":
        publish_local.publish(staging, out)
    elif not publish_local.publish_fresh(staging, out):
        if opts.exists != "append":
            raise JobError(f"--out {opts.out!r} is not empty: another job wrote to it meanwhile")
        logger.info("%s was written by another job meanwhile: appending to it", out)
        destination.check_append(out, schema, opts)
        publish_local.publish_new(staging, out)


def _summary(opts: Options, source: Source, out: str, written: _Written, bytes_out: int, seconds: float) -> Summary:
    """The job's summary: what it read (files and their stored size, or data in memory or
    streamed and its size in memory, when known), what it wrote, its time and peak memory."""
    if opts.data is None:
        read_from, bytes_in = "", sum(f.size for f in source.files)
    else:
        read_from, bytes_in = source.description, source.nbytes or 0
    return Summary(
        out=out, rows_in=written.rows_in, rows_out=written.rows_out, partitions=written.partitions,
        files=written.files, bytes_in=bytes_in, bytes_out=bytes_out, seconds=seconds, peak_rss=peak_rss(),
        inputs=len(source.files), sizes=written.sizes, source=read_from,
    )


# -- the log ------------------------------------------------------------------------------------


def _log_inputs(opts: Options, source: Source) -> None:
    """Log what the job reads: its files (their number, rows and stored size), or the data
    given; and its size in memory, when known."""
    rows = "unknown" if source.nrows is None else f"{source.nrows:,}"
    held = "unknown" if source.nbytes is None else format_size(source.nbytes)
    if opts.data is None:
        n = len(source.files)
        logger.info("inputs: %d file%s, %s rows, %s stored, ~%s in memory", n, "s" if n != 1 else "", rows,
                    format_size(sum(f.size for f in source.files)), held)
    else:
        logger.info("input: %s, %s rows, ~%s in memory", source.description, rows, held)


def _log_plan(count: _Count, threads: int, budget: Budget, kind: str = "hash") -> None:
    """Log how the job will run: its hash partitions and why, threads and memory."""
    logger.info("%s partitions: %d (%s); threads: %d; memory limit %s, chunks of %s", kind, count.n, count.why, threads,
                format_size(budget.limit), format_size(budget.chunk_bytes))


def _log_outcome(summary: Summary) -> None:
    """Log what was published, or warn that nothing was (the rows did not add up)."""
    if summary.ok:
        logger.info("published %s: %s rows in %s files, %s", summary.out, f"{summary.rows_out:,}",
                    f"{summary.files:,}", format_size(summary.bytes_out))
    else:
        logger.warning("rows in (%s) != rows out (%s): nothing published", f"{summary.rows_in:,}",
                       f"{summary.rows_out:,}")


# -- threads and progress bars ------------------------------------------------------------------


def job_threads(threads: int | None) -> int:
    """The worker threads for ``--threads`` (None: the CPUs this process may use)."""
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
    """A progress bar that shows nothing, so that a job without bars never imports tqdm."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None


def progress_bar(show: bool, **kwargs: Any) -> Any:
    """A tqdm progress bar with ``kwargs``, removed when done, if ``show``; else one that
    shows nothing."""
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(leave=False, **kwargs)



