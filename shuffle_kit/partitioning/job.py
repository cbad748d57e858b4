"""The partition job (``shuffle_kit.partition``, ``shuffle-kit partition``): files in, one
file per hash partition that has rows (or per key value) out.

The inputs are read in chunks of at most ``memory_limit / 32`` (64 MiB at most), on a
thread of their own one chunk ahead (unless ``threads=1``); memory stays within
``memory_limit`` plus the interpreter (see :data:`OVERHEAD`). Half the limit holds data
waiting to be written.

- Hash partitions go through the partition engine (:mod:`shuffle_kit.partitioning.engine`)
  for every partition count and budget: row groups into open files while the input is
  read when the files and their writers fit, sorted runs under ``tmp`` merged into whole
  files otherwise. String columns stored dictionary-encoded in Parquet inputs travel as
  dictionary indices, into Parquet outputs' dictionary pages.
- ``by_value``: the same engine, through sorted runs: each hash partition, once whole, is
  grouped by key value into hive directories (:mod:`shuffle_kit.partitioning.by_value`).

Everything is written into a hidden directory beside ``out`` and put in its place only
when complete and when the rows written equal the rows read
(:func:`~shuffle_kit.partitioning.publish_local.publish`); the runs and that directory are
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
:class:`~shuffle_kit.partitioning.layout.Layout`.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any, Self

import numpy as np
import pyarrow as pa

from .. import lifecycle
from ..byte_sizes import check_memory_limit, format_size
from ..defaults import PARTITION_BYTES, STREAM_NPARTITIONS, default_npartitions, job_memory_limit, show_progress
from ..errors import DiskFullError, JobError, PathError, not_a_directory, one_line
from ..io.readers import ReadOptions, path_list
from ..limits import arrow_threads, resolve_threads
from ..partition_sizes import PartitionSizes
from . import destination, engine, job_inputs, options, publish_local, publish_objects
from .by_value import ValueFiles
from .layout import Layout
from .options import MAX_PARTITIONS, Options
from .summary import Summary, peak_rss

__all__ = ["JobError", "Options", "Summary", "partition", "run", "OVERHEAD"]

OVERHEAD = 300 * 2**20  # interpreter, pandas, pyarrow, allocator slack: peak RSS <= limit + this

logger = logging.getLogger(__name__)


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


# -- the job -----------------------------------------------------------------------------------


def _budget(limit: int) -> tuple[int, int]:
    """(chunk bytes, bytes held waiting to be written) for a memory limit."""
    # beside the half held for writing, peak RSS grows by about ten times the chunk size
    # (the chunk read ahead, reader batches, chunks being split and their sorted copies,
    # writes being encoded), so a chunk is a 24th of the limit; past 16 MB larger chunks
    # gain no speed, only memory. Not a function of the thread count: the files must not be
    chunk = min(16 * 2**20, max(2**20, limit // 24))
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
    ``out``: one file per hash partition that has rows (``part-00000.parquet`` ...; every
    partition with ``layout=Layout(empty_files=True)``), or with ``by_value``
    one hive directory per key value. What ``shuffle-kit partition`` does, with the same
    options; returns its summary. Hive directory names in the inputs become columns unless
    ``read=ReadOptions(partitioning="none")``; ``read`` also sets the CSV delimiter.
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
        npartitions=npartitions, by_value=by_value, format=format, memory_limit=limit, tmp=tmp,
        exists=exists, compression=compression, progress=progress, threads=threads, max_partitions=max_partitions,
        read=read or ReadOptions(),
        data=inputs if files is None else None,
        layout=Layout() if layout is None else layout,
    )
    return run(opts)


def run(opts: Options) -> Summary:
    """Run the job; raise :class:`JobError` for problems the user can fix."""
    start = time.perf_counter()
    options.check(opts)
    layout = opts.layout
    on = list(opts.on)
    limit = int(opts.memory_limit)
    threads = _threads(opts.threads)
    chunk_bytes, in_memory = _budget(limit)

    source = job_inputs.open_inputs(opts, chunk_bytes)
    job_inputs.check_sort_by(layout.sort_by, source.schema)
    if opts.by_value and layout.sort_by:  # files by value are sorted by their keys first
        job_inputs.check_sort_by(on, source.schema, "--on (sorted first, for --sort-by with --by-value)")
    target = destination.locate_out(opts, source.files)
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
        if appending:
            destination.check_append(out, source.schema, opts)
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
    summary = Summary(out=out, inputs=len(source.files), bytes_in=sum(f.size for f in source.files))
    if opts.data is not None:  # in memory or streamed: its size in memory, when known
        summary.source, summary.bytes_in = source.description, source.nbytes or 0
    nbytes = source.nbytes
    known = "unknown" if source.nrows is None else f"{source.nrows:,}"
    held = "unknown" if nbytes is None else format_size(nbytes)
    if opts.data is None:
        logger.info("inputs: %d file%s, %s rows, %s stored, ~%s in memory", summary.inputs,
                    "s" if summary.inputs != 1 else "", known, format_size(summary.bytes_in), held)
    else:
        logger.info("input: %s, %s rows, ~%s in memory", source.description, known, held)
    if opts.by_value:
        # partitions are grouped by value a batch at a time: make each about one batch
        n = max(1, math.ceil(nbytes / engine.batch_bytes(in_memory))) if nbytes else STREAM_NPARTITIONS
        n = min(n, 4096)
        why = "by value: hash partitions of about one batch each, grouped by value"
    elif opts.npartitions is not None:
        n = opts.npartitions
        why = "as asked"
    else:
        n = default_npartitions(nbytes)
        why = f"input size / {format_size(PARTITION_BYTES)}" if nbytes else "input size unknown"
    logger.info("hash partitions: %d (%s); threads: %d; memory limit %s, chunks of %s", n, why, threads,
                format_size(limit), format_size(chunk_bytes))
    show = show_progress(opts.progress)

    staging = None
    try:
        try:
            staging = lifecycle.make(f".{target.name}.partial-", parent)
        except OSError as e:  # the hidden directory is ours: name what the user gave
            what = f"the parent of --out {opts.out!r}" if target.local else "the local staging directory (--tmp)"
            raise PathError(f"cannot write into {parent!r}, {what}: {e.strerror or one_line(e)}", parent,
                            e.errno) from None
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
            with (
                arrow_threads(threads),
                _bar(show, total=source.nrows, unit="rows", unit_scale=True, desc="write") as bar,
            ):
                use = engine.Resources(in_memory, threads, tmp)
                if not opts.by_value:
                    rows = np.zeros(n, dtype=np.int64)
                    files = engine.PartFiles.of(
                        staging, source.schema, opts.format, opts.compression, dictionary=source.dictionary,
                        encode=job_inputs.dictionary_keys(source, on), layout=layout, token=token,
                    )
                    summary.rows_out = engine.partition_into(
                        counted(), on, n, files, use, written=bar.update, sizes=rows,
                    )
                    summary.partitions = n
                    summary.files = sum(len(files) for _, _, files in os.walk(staging))
                    # every partition counts, with its rows; one without rows has no file
                    # (no path) unless the layout asks for empty files
                    series = None if layout.max_rows_per_file is None else "*"
                    names = [
                        engine.part_name(p, opts.format, token, series) if rows[p] or layout.empty_files else None
                        for p in range(n)
                    ]
                    # a file per partition, or a series of files per partition
                    summary.sizes = PartitionSizes.of(rows, paths=names, unit="file" if series is None else "partition")
                else:
                    values = ValueFiles(staging, source.schema, on, opts.format, opts.compression,
                                        max_values=opts.max_partitions, layout=layout, token=token)
                    summary.rows_out = engine.partition_into(counted(), on, n, values, use, written=bar.update)
                    summary.files, summary.partitions = values.files, len(values.dirs)
                    dirs = sorted(values.rows)  # not in the order threads finished them
                    summary.sizes = PartitionSizes.of(
                        [values.rows[d] for d in dirs], keys=[values.values[d] for d in dirs], paths=dirs, unit="value",
                    )
        except JobError:
            raise
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(e, opts, staging, tmp) from None
            raise
        except (KeyError, TypeError, ValueError, pa.ArrowException) as e:  # (UnhashableKeyError is a TypeError)
            raise JobError(one_line(e)) from None
        summary.rows_in = counter[0]
        summary.bytes_out = sum(
            os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(staging) for f in files
        )
        if summary.ok and target.local:
            _publish_local(staging, out, appending, source.schema, opts)
            staging = None
        elif summary.ok:
            try:
                publish_objects.publish(staging, target, opts.exists)
            except (OSError, ValueError) as e:
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
        publish_local.cleanup(staging)


def _publish_local(staging: str, out: str, appending: bool, schema: pa.Schema, opts: Options) -> None:
    """Put the finished ``staging`` in place at ``out`` (removing it). A new output (one
    that was absent or empty when the job began) replaces nothing that appeared meanwhile:
    another job's output there is appended to (``exists="append"``, its files checked as
    any append's) or refused."""
    if appending:
        publish_local.publish_new(staging, out)
    elif opts.exists == "overwrite":
        publish_local.publish(staging, out)
    elif not publish_local.publish_fresh(staging, out):
        if opts.exists != "append":
            raise JobError(f"--out {opts.out!r} is not empty: another job wrote to it meanwhile")
        logger.info("%s was written by another job meanwhile: appending to it", out)
        destination.check_append(out, schema, opts)
        publish_local.publish_new(staging, out)


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



