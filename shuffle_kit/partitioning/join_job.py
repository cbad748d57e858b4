"""The join job (:func:`join`, ``shuffle-kit join``): two inputs of files (or data) in, the
rows of their join out, one file per partition pair: a grace hash join on the partition
engine.

1. **Both sides partitioned alike.** Each input goes through the partition engine
   (:mod:`~shuffle_kit.partitioning.engine`: open files or sorted runs, within the job's
   budget, the same files for any thread count) on its own key columns, into the same
   number of hash partitions with the same hash (:mod:`shuffle_kit.kernels.hashing` hashes
   values, not storage types, so keys pandas joins, ``int64`` with ``Int64`` or
   ``float64``, every string type, meet in one partition). The partitions are uncompressed
   Arrow IPC files in a private directory under ``tmp`` (named like the engine's runs, so
   a later job removes what a killed one left there). An input that is the partition
   job's output hashed on that side's keys into the pairs' count (its own, unless
   ``npartitions`` asks for another) is not partitioned again: its files, recognised by
   their records (:mod:`shuffle_kit.io.partitioned`), are its partitions.
2. **Pairs joined one at a time.** Partition ``i`` of the left is joined with partition
   ``i`` of the right (:mod:`~shuffle_kit.partitioning.join_pairs`, imported only then),
   pairs on ``threads`` workers: as Arrow, without pandas, where the result cannot differ
   (:mod:`shuffle_kit.kernels.arrow_join`); by :class:`shuffle_kit.shuffling.merge.MergeResult`'s
   pair loop (``shuffle_kit.merge``'s: pandas' ``merge`` semantics, the whole join's dtypes
   on every pair, a pair larger than its share of memory split again with another hash
   seed and a single hot key joined in chunks) for the rest, which brings pandas.

   A dimension table is not staged: a right side that fits a pair's share of memory,
   with distinct, non-null keys, for an inner join, is held whole and the left
   side streamed through it into the partitions
   (:mod:`~shuffle_kit.partitioning.join_broadcast`): the same rows in the same files in
   the same order, reading the left once.
3. **Written and published as the partition job's output.** Pair ``i``'s rows go to
   ``part-0000i.<format>`` through the job's writers, in a hidden directory beside
   ``out`` (for an object store: under ``tmp``) put in place only when complete and only
   when every row read went into the partitions
   (:func:`~shuffle_kit.partitioning.job.publish`); everything is removed on failure and
   interrupt, and by a later job after ``kill -9``.

Files: one per partition pair whose join has rows; a pair without rows (an inner join's
pair where either side is empty, or whose keys never meet) has no file unless
``Layout(empty_files=True)`` (``--empty-files``), which writes an empty file with the
columns for every pair. Every file has the same columns and types (the whole join's; a
column pandas types ``object`` or as strings takes the input column's Arrow type; an inner
join of inputs without pandas' metadata, which Arrow computes exactly, keeps the inputs'
own types, asking pandas nothing).

Row order: files in pair order; within a file, pandas' ``merge`` order for the pair
(``sort=False``); the same files, byte for byte, for any thread count (a right side held
whole gives the same rows in the same order, in row groups of its own).

Memory: reading and partitioning each side spends the budget as the partition job does
(:func:`~shuffle_kit.partitioning.job.plan_budget`); joining keeps at most a quarter of
``memory_limit`` of pairs in flight, splits pairs larger than an eighth of it (as
``shuffle_kit.merge``), and holds at most another quarter of joined rows being written.
Pairs split again spill under ``tmp`` as the sides do; a key joined in chunks is named in
the summary (``hot_keys``) and warned of.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from .. import lifecycle
from ..byte_sizes import check_memory_limit, format_size
from ..defaults import default_npartitions, job_memory_limit, show_progress
from ..errors import ArgumentTypeError, JobError, one_line, prefixed
from ..io.partitioned import PartitionedFiles, recognise
from ..io.readers import ReadOptions, Source, path_list
from ..kernels.arrow_join import ArrowJoin
from ..kernels.hashing import HASH_VERSION, partition_ids
from ..kernels.joins import HOWS, Join, resolve_keys
from ..limits import arrow_threads, executor
from ..partition_sizes import HotKey, PartitionSizes
from . import destination, engine, job_inputs, options, publish_local
from .job import (
    Budget,
    Place,
    Reading,
    files_under,
    job_threads,
    make_staging,
    plan_budget,
    prepare_out,
    publish,
    shared_dictionaries,
    user_errors,
)
from .join_broadcast import Broadcast, joined_in_order, sliced
from .layout import Layout
from .options import Options
from .summary import Summary, peak_rss

__all__ = ["JoinSummary", "join"]

logger = logging.getLogger(__name__)

# the sides' partitions: named as the engine's runs, so that any later job's sweep of
# ``tmp`` removes what a killed join left there
SIDES_PREFIX = engine.RUNS_PREFIX + "join-"


@dataclass(repr=False)
class JoinSummary(Summary):
    """What a join job did: :class:`~shuffle_kit.partitioning.summary.Summary`'s fields
    (``rows_in``: the rows read of both sides; ``rows_out``: the joined rows written;
    ``partitions``: partition pairs; ``sizes``: joined rows per pair) and each side's rows
    read and partitioned, and ``hot_keys``: the keys with more rows than a pair's share of
    memory, joined in chunks (:class:`~shuffle_kit.partition_sizes.HotKey`: a warning each,
    and in ``--json``), ``right_held``: whether the right side was held whole in memory and
    the left streamed through it (:mod:`~shuffle_kit.partitioning.join_broadcast`) instead
    of both being staged. ``ok``: every row read went into the partitions (else nothing
    was published).

    >>> s = JoinSummary('out', rows_in=5, rows_out=6, partitions=2, files=1, how='inner', left_rows=3,
    ...                 right_rows=2, left_staged=3, right_staged=2)
    >>> s.ok, s.lines()[1]
    (True, 'rows in     3 left + 2 right (from 0 files, 0 B)')
    """

    how: str = "inner"
    left_rows: int = 0
    right_rows: int = 0
    left_staged: int = 0
    right_staged: int = 0
    hot_keys: list[HotKey] = field(default_factory=list)
    right_held: bool = False

    @property
    def ok(self) -> bool:
        return self.left_rows == self.left_staged and self.right_rows == self.right_staged

    def lines(self) -> list[str]:
        lines = super().lines()
        lines[1] = f"rows in     {self.left_rows:,} left + {self.right_rows:,} right (from {self._read_from()})"
        lines[2] = f"rows out    {self.rows_out:,} ({self.how} join){'' if self.ok else '   <-- ROWS LOST'}"
        lines[3] = lines[3].replace("partitions ", "pairs      ", 1)
        if self.right_held:
            lines[3] += "; the right side held in memory, the left streamed through it"
        lines += [f"hot key     {hot.name()} (pair {hot.pair}: {hot.left_rows:,} left x {hot.right_rows:,} right rows)"
                  for hot in self.hot_keys]
        return lines

    def warnings(self) -> list[str]:
        """A file holding more than 10x the median rows, and each key joined in chunks."""
        return super().warnings() + [hot.warning() for hot in self.hot_keys]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "how": self.how, "left_rows": self.left_rows, "right_rows": self.right_rows,
                "hot_keys": [hot.to_dict() for hot in self.hot_keys], "right_held": self.right_held}

    def _repr_html_(self) -> str:
        import html

        # the chart's skew row, then the keys that made pairs large
        rows = "".join(f"<tr><th style='text-align:left'>Hot key</th><td style='text-align:left;color:#b00'>"
                       f"{html.escape(hot.warning())}</td></tr>" for hot in self.hot_keys)
        return super()._repr_html_().replace("</table></div>", rows + "</table></div>")


def join(
    left: str | Sequence[str] | Any,
    right: str | Sequence[str] | Any,
    on: str | Sequence[str] | None = None,
    out: str | None = None,
    *,
    left_on: str | Sequence[str] | None = None,
    right_on: str | Sequence[str] | None = None,
    how: str = "inner",
    suffixes: tuple[str | None, str | None] = ("_x", "_y"),
    nulls_equal: bool = True,
    npartitions: int | None = None,
    memory_limit: int | str | None = None,
    threads: int | None = None,
    format: str = "parquet",
    compression: str = "lz4",
    exists: str = "error",
    tmp: str | None = None,
    progress: bool | None = None,
    read: ReadOptions | None = None,
    layout: Layout | None = None,
) -> JoinSummary:
    """Join the files ``left`` and ``right`` (each: paths, globs, directories or URLs of
    Parquet, CSV or Arrow files, or Arrow data or a DataFrame as :func:`shuffle_kit.partition`
    takes) on key columns as ``pandas.merge`` does, into ``out``: one file per partition
    pair whose join has rows (``part-00000.parquet`` ...), in bounded memory (module
    docstring). What ``shuffle-kit join`` does; returns its summary.

    Read back together, the files hold ``pandas.merge(left, right, on=..., how=...,
    suffixes=...)`` up to row order: the same rows, values, column names and dtypes. Keys:
    ``on`` (both sides' columns), or ``left_on`` and ``right_on``, or neither (the columns
    both sides have). ``how``: 'inner', 'left', 'right' or 'outer'. Null keys match each
    other as in pandas, or nothing with ``nulls_equal=False`` (SQL's rule).
    ``npartitions``: partition pairs, and so files (default: enough for a pair to take an
    eighth of ``memory_limit``, and one per 100 MB of both sides in memory).
    ``memory_limit``, ``threads``, ``format``, ``compression``, ``exists``, ``tmp``,
    ``progress``, ``read``: as for :func:`shuffle_kit.partition` (the files are the same
    for any thread count; ``exists='append'`` adds files with a token in their names).
    ``layout``: ``empty_files``, ``max_rows_per_file`` and ``row_group_size``
    (:class:`~shuffle_kit.partitioning.layout.Layout`; files of a join are not sorted).
    Raises :class:`JobError` for problems the user can fix, with one line naming the file,
    column or option; ``out`` is then unchanged.

    >>> import tempfile, os, pandas as pd
    >>> d = tempfile.mkdtemp()
    >>> pd.DataFrame({'k': [1, 2, 2, 3], 'x': [1, 2, 3, 4]}).to_parquet(f'{d}/facts.parquet', index=False)
    >>> pd.DataFrame({'k': [2, 3, 4], 'name': ['b', 'c', 'd']}).to_parquet(f'{d}/dim.parquet', index=False)
    >>> s = join(f'{d}/facts.parquet', f'{d}/dim.parquet', 'k', f'{d}/out', npartitions=2, progress=False)
    >>> s.rows_out, pd.read_parquet(f'{d}/out').sort_values('x')['name'].tolist()
    (3, ['b', 'b', 'c'])
    >>> import shutil; shutil.rmtree(d)
    """
    if out is None:
        raise JobError("--out: give the directory the joined files go into")
    if how not in HOWS:
        raise JobError(f"--how must be one of {', '.join(HOWS)}, not {how!r}")
    if not isinstance(suffixes, (tuple, list)) or len(suffixes) != 2:
        raise ArgumentTypeError(f"suffixes must be a pair of strings (or None), not {suffixes!r}")
    layout = Layout() if layout is None else layout
    if isinstance(layout, Layout) and (layout.sort_by or layout.keep_keys):
        raise JobError("a join's files are in pair order: --sort-by and --keep-keys are for shuffle-kit partition")
    limit = job_memory_limit() if memory_limit is None else check_memory_limit(memory_limit)
    read = read or ReadOptions()
    lfiles, rfiles = path_list(left), path_list(right)
    opts = Options(
        [*(lfiles or []), *(rfiles or [])], ["?"], out, npartitions=npartitions, format=format, memory_limit=limit,
        tmp=tmp, exists=exists, compression=compression, progress=progress, threads=threads, read=read,
        layout=layout,
    )
    options.check(opts)  # (before anything is read)
    spec = _Spec(
        _side_options(left, lfiles, opts), _side_options(right, rfiles, opts), on, left_on, right_on, how,
        tuple(suffixes), nulls_equal,
    )
    return _run(opts, spec)


@dataclass(frozen=True)
class _Spec:
    """What is joined: each side's options (its inputs, or data), the keys as given, how."""

    left: Options
    right: Options
    on: Any
    left_on: Any
    right_on: Any
    how: str
    suffixes: tuple
    nulls_equal: bool


def _side_options(given: Any, files: list[str] | None, opts: Options) -> Options:
    return Options(files or [], [], opts.out, read=opts.read, data=given if files is None else None)


def _run(opts: Options, spec: _Spec) -> JoinSummary:
    """The job's spine: open both sides, resolve the keys, check where the output goes,
    partition both sides, join the pairs into the staging directory, publish it."""
    start = time.perf_counter()
    threads = job_threads(opts.threads)
    budget = plan_budget(int(opts.memory_limit))
    lsource, rsource, joined = _open_sides(spec, budget)
    opts.on = list(joined.left_on)
    place = prepare_out(opts, [*lsource.files, *rsource.files], None)
    pair_bytes = max(2**20, budget.limit // 8)
    taken = [_recognised(side, keys, budget) for side, keys in ((spec.left, joined.left_on),
                                                                 (spec.right, joined.right_on))]
    n = _npartitions(opts, lsource, rsource, pair_bytes, taken)
    taken = [side if side is not None and side.npartitions == n else None for side in taken]
    logger.info("join (%s) on %s: %d partition pairs; threads: %d; memory limit %s", joined.how,
                joined.left_on if joined.on else f"{joined.left_on} = {joined.right_on}", n, threads,
                format_size(budget.limit))
    show = show_progress(opts.progress)
    staging = sides = None
    try:
        staging = make_staging(opts, place)
        sides = lifecycle.make(SIDES_PREFIX, place.tmp)
        with user_errors(opts, staging, place.tmp), arrow_threads(threads):
            through, rsource, read_ahead = _broadcast(joined, lsource, rsource, pair_bytes)
            if through is not None:  # a dimension table held whole: the left streamed through it
                logger.info("the right side (%s rows, %s) held in memory, the left streamed through it",
                            f"{through.right.num_rows:,}", format_size(through.nbytes))
                schema = through.plan.schema
                if place.appending:
                    destination.check_append(place.out, schema, opts)
                sizes, lread = _stream(through, lsource, n, staging, opts, place, budget, threads, show)
                lstaged, rread = lread, through.right.num_rows
                rstaged = rread
                hot_keys: list[HotKey] = []
            else:
                for name, side in zip(("left", "right"), taken):
                    if side is not None:
                        logger.info("the %s input is hash-partitioned on %s into %d partitions (%d files): joined "
                                    "as it is", name, ", ".join(side.on), n, len(side.files))
                # (the right's rows read to try holding it wait, uncounted by the left's engine)
                left_budget = replace(budget, held_bytes=max(2**20, budget.held_bytes - read_ahead))
                from . import join_pairs  # (loaded for staged pairs only)

                staged = [
                    join_pairs.stage(name, source, keys, n, os.path.join(sides, name), side_budget, threads, place,
                                     show)
                    if recognised is None else (recognised, sum(recognised.sizes), sum(recognised.sizes))
                    for name, source, keys, recognised, side_budget in (
                        ("left", lsource, joined.left_on, taken[0], left_budget),
                        ("right", rsource, joined.right_on, taken[1], budget))
                ]
                (lside, lread, lstaged), (rside, rread, rstaged) = staged
                sizes, schema, hot_keys = join_pairs.pairs_written(
                    lside, rside, joined, (lsource.schema, rsource.schema), _pandas_described(lsource, rsource),
                    staging, opts, place, threads, budget, pair_bytes, sides, show)
        bytes_out = sum(os.path.getsize(f) for f in files_under(staging))
        summary = JoinSummary(
            out=place.out, rows_in=lread + rread, rows_out=int(sizes.sum()), partitions=n,
            files=len(files_under(staging)), bytes_in=sum(f.size for f in (*lsource.files, *rsource.files)),
            bytes_out=bytes_out, inputs=len(lsource.files) + len(rsource.files),
            sizes=_pair_sizes(sizes, staging, opts, place.token),
            source=_described(spec, lsource, rsource), how=joined.how, left_rows=lread, right_rows=rread,
            left_staged=lstaged, right_staged=rstaged, hot_keys=hot_keys, right_held=through is not None,
        )
        if summary.ok and publish(staging, place, schema, opts):
            staging = None  # (moved into place)
        summary.seconds, summary.peak_rss = time.perf_counter() - start, peak_rss()
        if summary.ok:
            logger.info("published %s: %s joined rows in %s files, %s", summary.out, f"{summary.rows_out:,}",
                        f"{summary.files:,}", format_size(summary.bytes_out))
        else:
            logger.warning("rows read != rows partitioned: nothing published")
        return summary
    finally:
        if sides is not None:
            lifecycle.remove(sides)
        publish_local.cleanup(staging)


def _described(spec: _Spec, lsource: Source, rsource: Source) -> str:
    """What was read when a side is not files (the summary's ``source``)."""
    if spec.left.data is None and spec.right.data is None:
        return ""
    return f"{lsource.description} and {rsource.description}"


# -- the sides ---------------------------------------------------------------------------------


def _open_sides(spec: _Spec, budget: Budget) -> tuple[Source, Source, Join]:
    """Both inputs opened (their files checked: given once, holding the key columns, named
    when not) and the join they make (keys resolved as pandas does, checked joinable)."""
    keys_given = spec.on is not None or spec.left_on is not None or spec.right_on is not None
    columns = None
    if not keys_given:  # the columns both sides have: known from the inputs' schemas
        columns = [_open(side, [], budget, name).columns for side, name in ((spec.left, "left"),
                                                                             (spec.right, "right"))]
    try:
        lkeys, rkeys, given_on = resolve_keys(
            _listed(spec.on), _listed(spec.left_on), _listed(spec.right_on), *(columns or (None, None)))
    except JobError as e:
        raise _option_names(e) from None
    joined = Join(lkeys, rkeys, spec.how, spec.suffixes, on=given_on, nulls_equal=spec.nulls_equal)
    lsource = _open(spec.left, lkeys, budget, "left")
    rsource = _open(spec.right, rkeys, budget, "right")
    if _arrow_plan(joined, lsource, rsource) is None:  # (else pandas joins these keys: they are Arrow's alike)
        from . import join_pairs

        join_pairs.check(joined, lsource.schema, rsource.schema)
    return lsource, rsource, joined


def _pandas_described(*sources: Source) -> bool:
    """Whether an input's schema holds pandas' metadata (a DataFrame's, or a file pandas
    wrote): the join's dtypes are then pandas' to say, and its files keep its metadata."""
    return any(b"pandas" in (s.schema.metadata or {}) for s in sources if s.schema is not None)


def _arrow_plan(joined: Join, lsource: Source, rsource: Source) -> ArrowJoin | None:
    """The Arrow plan of ``joined`` whose columns are the inputs' own (no pandas asked),
    for inputs pandas did not describe; None otherwise."""
    if _pandas_described(lsource, rsource) or lsource.schema is None or rsource.schema is None:
        return None
    return ArrowJoin.of_inputs(joined, lsource.schema, rsource.schema)


def _listed(keys: Any) -> Any:
    return [keys] if isinstance(keys, str) else (list(keys) if keys is not None else None)


def _option_names(e: JobError) -> JobError:
    """``resolve_keys``' errors (which name pandas' arguments) as the job names its options.

    >>> str(_option_names(JobError('give "on" or "left_on" and "right_on", not a combination of both')))
    'give --on or --left-on and --right-on, not a combination of both'
    """
    text = re.sub(r'"?\b(left|right)_on\b"?', r"--\1-on", one_line(e)).replace('"on"', "--on")
    text = ("--" + text) if text.startswith("on:") else text.replace("give on,", "give --on,")
    e.args = (text, *e.args[1:])
    return e


def _open(side: Options, keys: list, budget: Budget, name: str) -> Source:
    side.on = list(keys)
    try:
        source = job_inputs.open_inputs(side, budget.chunk_bytes)
    except JobError as e:
        raise (prefixed(e, f"the {name} input: ") if side.data is not None else e) from None
    if source.schema is None:
        raise JobError(f"the {name} input has no columns known before it is read")
    return source


def _recognised(side: Options, keys: list, budget: Budget) -> PartitionedFiles | None:
    """A side of files the partition job hash-partitioned on exactly ``keys``, recognised
    by their records (:func:`~shuffle_kit.io.partitioned.recognise`): joined as they are,
    partition by partition, instead of being partitioned again; None for any other input."""
    if side.data is not None:
        return None
    return recognise(list(side.inputs), keys, hash_version=HASH_VERSION, read=side.read,
                     piece_bytes=budget.chunk_bytes, ids=partition_ids)


def _npartitions(opts: Options, lsource: Source, rsource: Source, pair_bytes: int,
                 recognised: Sequence[PartitionedFiles | None] = ()) -> int:
    """Partition pairs: as asked; else those of a side already partitioned (the left's
    first); else enough for a pair to fit its share of memory and one per 100 MB of both
    sides in memory (as ``shuffle_kit.merge``)."""
    if opts.npartitions is not None:
        return opts.npartitions
    for side in recognised:
        if side is not None:
            return side.npartitions
    known = (lsource.nbytes or 0) + (rsource.nbytes or 0)
    if lsource.nbytes is None or rsource.nbytes is None:
        return default_npartitions(None)
    return max(default_npartitions(known), math.ceil(known / pair_bytes))


def _broadcast(joined: Join, lsource: Source, rsource: Source, pair_bytes: int
               ) -> tuple[Broadcast | None, Source, int]:
    """The right side held whole for the left to stream through, if the join allows it
    (:mod:`~shuffle_kit.partitioning.join_broadcast`); and the right side to stage
    otherwise (what was read of it, then the rest), with the bytes already read of it
    (held until it is staged)."""
    if (joined.how != "inner" or len(joined.right_on) != 1 or not lsource.files or not rsource.files
            or rsource.nbytes is None or rsource.nbytes > pair_bytes):
        return None, rsource, 0
    assert lsource.schema is not None and rsource.schema is not None
    plan = _arrow_plan(joined, lsource, rsource)
    if plan is None and _pandas_described(lsource, rsource):
        from . import join_pairs

        plan = ArrowJoin.plan(joined, lsource.schema, rsource.schema,
                              join_pairs.pandas_schema(joined, lsource.schema, rsource.schema))
    if plan is None:
        return None, rsource, 0
    chunks: list[pa.Table] = []
    held, rest = 0, rsource.chunks()
    for chunk in rest:
        chunks.append(chunk)
        held += chunk.nbytes if isinstance(chunk, pa.Table) else pair_bytes + 1
        if held > pair_bytes:  # larger than its estimate: staged after all
            return None, replace(rsource, make_chunks=lambda: itertools.chain(chunks, rest)), held
    through = Broadcast.of(plan, chunks, rsource.schema)
    if through is None:
        return None, replace(rsource, make_chunks=lambda: iter(chunks)), held
    return through, rsource, 0


def _stream(through: Broadcast, lsource: Source, n: int, staging: str, opts: Options, place: Place, budget: Budget,
            threads: int, show: bool) -> tuple[np.ndarray, int]:
    """The left side's chunks joined with the right side held whole (on ``threads``
    workers, in input order), partitioned by the join key into ``n`` files in ``staging``
    by the engine, within the budget less the right side, the chunks being joined and the
    job's dictionaries; the rows of each file, and the left's rows read."""
    plan = through.plan
    origin = dict(zip(plan.schema.names, plan.columns))
    dictionary = [name for name, (side, source) in origin.items() if side == 0 and source in lsource.dictionary]
    # the join key, stored with a dictionary in the left's files, is too in the joined
    # ones, as the partition job's keys are: a file holds the keys of one hash partition
    encode = [through.key_name] if job_inputs.dictionary_keys(lsource, list(plan.left_on)) else []
    files = engine.PartFiles.of(staging, plan.schema, opts.format, opts.compression,
                                dictionary=[*dictionary, *through.dictionaries], encode=encode, layout=opts.layout,
                                token=place.token)
    rows = np.zeros(n, dtype=np.int64)
    reading = Reading(lsource, threads, show, "join")
    depth = min(threads, engine.MAX_IN_FLIGHT)
    # the joined chunks waiting for the engine: a stage the partition job does not have
    # (the chunks read and being split are in the budget's allowance, as there); as many
    # as the most threads wait, since the files must not depend on the thread count
    held = budget.held_bytes - through.nbytes - engine.MAX_IN_FLIGHT * budget.chunk_bytes
    if opts.format == "parquet":
        held -= shared_dictionaries(reading, lsource, budget)
    with executor(threads, "shuffle_kit-join") as pool:
        joined = joined_in_order(through, sliced(reading, through, budget.chunk_bytes), pool, depth)
        engine.partition_into(joined, [through.key_name], n, files,
                              engine.Resources(max(2**20, held), threads, place.tmp), sizes=rows)
    return rows, reading.rows


def _pair_sizes(rows: np.ndarray, staging: str, opts: Options, token: str | None) -> PartitionSizes:
    """The joined rows of every pair, with its file's name (None: no file)."""
    series = None if opts.layout.max_rows_per_file is None else "*"
    names = [
        engine.part_name(p, opts.format, token, series) if rows[p] or opts.layout.empty_files else None
        for p in range(len(rows))
    ]
    return PartitionSizes.of(rows, paths=names, unit="file" if series is None else "pair")
