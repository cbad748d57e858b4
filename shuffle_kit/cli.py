"""The ``shuffle-kit`` command line: ``partition``, ``join``, ``demo`` and ``serve``.

Signals: :func:`console` (the program, ``shuffle-kit`` and ``python -m shuffle_kit``)
catches SIGINT and SIGTERM before it does anything else, so that from the moment the
program's own code runs, either signal ends it with one line on stderr and exit status 130
(after the job's cleanup: no output, no temporary files), whether it lands while modules
load, while the options are read or mid-job. Only the interpreter's own start-up (before
this module is imported) is not covered. A process that calls :func:`main` itself keeps
its own SIGINT handling.
"""

from __future__ import annotations

# kept light (the package has loaded logging already): nothing here may delay console()
# installing its signal handlers
import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

PARTITION_EPILOG = """\
examples:
  shuffle-kit partition events/*.parquet --on user_id --out by_user --npartitions 64
      64 files by_user/part-00000.parquet ... part-00063.parquet; every user in one file
      (a partition no user hashes to has no file, unless --empty-files)
  shuffle-kit partition logs/ --on country,day --out by_day --by-value
      hive directories by_day/country=DE/day=2024-05-01/part-00000.parquet ...
  shuffle-kit partition events/ --on ts --out by_time --by-range --npartitions 64 --sort-by ts
      64 files in time order, each sorted: read in name order, the rows are globally sorted
      (add --descending ts for the newest first)
  shuffle-kit partition a.csv b.csv --on k --out parts --format arrow --memory-limit 500MB --tmp /scratch
  shuffle-kit partition data.parquet --on k --out parts --exists overwrite --compression zstd
  shuffle-kit partition day2/ --on country --out by_country --by-value --exists append --sort-by ts
      new files beside the old ones (part-<token>-00000.parquet), each sorted by ts
  shuffle-kit partition big/ --on k --out parts --max-rows-per-file 1000000 --row-group-size 100000
      part-00000-00000.parquet, part-00000-00001.parquet ... of at most 1,000,000 rows each

inputs are Parquet, CSV or Arrow IPC files (by extension): paths, globs or directories.
Output is written into a hidden directory beside --out and renamed to --out when complete;
a failed or interrupted run leaves no output and no temporary files. The summary goes to
stdout (with --json as one JSON object), warnings such as skew (a file with more than 10x
the median rows) to stderr; the exit status is 0 on success, 1 on an error or if rows in !=
rows out, 2 on a bad option, 130 when interrupted (SIGINT or SIGTERM). Peak memory is about --memory-limit plus
~300 MB for the interpreter and libraries.
"""


JOIN_EPILOG = """\
examples:
  shuffle-kit join sales/*.parquet --with customers.parquet --on customer_id --out sales_by_customer
      the rows of pandas.merge(sales, customers, on='customer_id'), one file per partition pair
  shuffle-kit join flights/ --with planes/ --on tailnum --how left --out flights_planes --npartitions 64
  shuffle-kit join a.csv --with b.parquet --left-on user --right-on id --how outer --out ab --memory-limit 500MB

Both sides are hash-partitioned by their keys (the same hash, the same number of partitions)
into Arrow files under --tmp, then partition i of the left is joined with partition i of the
right, a pair at a time, as pandas.merge joins (null keys match each other unless
--sql-nulls). Read back together, the files hold pandas.merge's rows, columns and dtypes, up
to row order (files in pair order, pandas' order within a pair). A pair whose join has no rows
has no file unless --empty-files. A key with more rows than a pair's share of memory is joined
in chunks and named in the summary (a "hot key" line, "hot_keys" in --json) and in a skew
warning on stderr; pairs split again for skew spill under --tmp too. Output is written into a
hidden directory beside --out and renamed to --out when complete; a failed or interrupted run
leaves no output and no temporary files. Exit status as for partition; peak memory is about --memory-limit plus ~300 MB.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _columns(text: str) -> list[str]:
    cols = [c.strip() for c in text.split(",")]
    if not all(cols):
        raise argparse.ArgumentTypeError(f"empty column name in {text!r}")
    return cols


def _delimiter(text: str) -> str:
    text = "\t" if text in ("\\t", "tab") else text
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"a delimiter is one character, not {text!r}")
    return text


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _fail(message: str, code: int = 1) -> int:
    print(f"shuffle-kit: error: {' '.join(message.split())}", file=sys.stderr)
    return code


INTERRUPTED = "shuffle-kit: interrupted; no output was written"


_interrupted = threading.Event()  # set by the first signal: nothing may handle another


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT/SIGTERM: stop the program once. Later signals are ignored, so the cleanup that
    follows (temporary files, the hidden output directory) runs to its end and the program
    prints one line."""
    if _in_import_lock_callback(frame):
        # Python ignores an exception raised in a weakref callback, as the one that drops a
        # module's import lock while modules load: the job would go on. The signal comes
        # again, from another thread a moment later, until it lands outside it (sent from
        # this one, it would be handled at once, still inside the callback)
        threading.Timer(0.005, os.kill, (os.getpid(), signum)).start()
        return
    _interrupted.set()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _in_import_lock_callback(frame: FrameType | None) -> bool:
    """Whether ``frame`` is, or is called by, importlib's callback that drops a module's lock."""
    while frame is not None:
        if frame.f_code.co_name == "cb" and "importlib" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _guarded(job: Callable[[], int]) -> int:
    """Run ``job``: user errors as one line on stderr, Ctrl-C and SIGTERM as a clean exit 130."""
    import pyarrow as pa  # (a signal while it loads: console() prints the line)

    from .errors import JobError, one_line

    old = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return job()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except JobError as e:
        return _fail(one_line(e))
    except (OSError, ValueError, TypeError, KeyError, pa.ArrowException) as e:
        if os.environ.get("SHUFFLE_KIT_DEBUG"):
            raise
        return _fail(one_line(e))
    except Exception as e:  # a bug: still one line, with a way to get the traceback
        if os.environ.get("SHUFFLE_KIT_DEBUG"):
            raise
        return _fail(f"internal error: {type(e).__name__}: {one_line(e)} (set SHUFFLE_KIT_DEBUG=1 for a traceback)")
    finally:
        # never armed again once a signal came: pyarrow, which takes the signals over while
        # it reads, sends the one it caught again as it unwinds, and a second
        # KeyboardInterrupt after the line would end the process by SIGINT
        if not _interrupted.is_set():
            signal.signal(signal.SIGTERM, old)


def _progress(args: argparse.Namespace) -> bool | None:
    """--progress as given; -q turns the bars off unless --progress asks for them."""
    return False if args.quiet and args.progress is None else args.progress


def _partition(args: argparse.Namespace) -> int:
    from .io.readers import ReadOptions
    from .partitioning.job import partition, use_fast_allocator
    from .partitioning.layout import Layout

    use_fast_allocator()
    layout = Layout(
        max_rows_per_file=args.max_rows_per_file, row_group_size=args.row_group_size, keep_keys=args.keep_keys,
        sort_by=tuple(c for group in args.sort_by or [] for c in group), empty_files=args.empty_files,
    )

    def job() -> int:
        summary = partition(
            args.inputs, [c for group in args.on for c in group], args.out, npartitions=args.npartitions,
            by_value=args.by_value, by_range=args.by_range,
            descending=[c for group in args.descending or [] for c in group], na_position=args.na_position,
            memory_limit=args.memory_limit, threads=args.threads,
            format=args.format, compression=args.compression, exists=args.exists, tmp=args.tmp,
            progress=_progress(args),
            max_partitions=args.max_partitions, read=ReadOptions(args.partitioning, args.csv_delimiter), layout=layout,
        )
        _report(args, summary)
        if not summary.ok:
            return _fail(f"rows in ({summary.rows_in:,}) != rows out ({summary.rows_out:,}): output not written")
        return 0

    return _guarded(job)


def _report(args: argparse.Namespace, summary: object) -> None:
    """The summary on stdout (with --json as one JSON object and nothing else there), its
    warnings on stderr, unless -q."""
    if args.json:  # for scripts: this object and nothing else on stdout
        import json

        print(json.dumps(summary.to_dict()), flush=True)  # type: ignore[attr-defined]
    elif not args.quiet:
        print(summary, flush=True)
    if not args.quiet:
        for warning in summary.warnings():  # type: ignore[attr-defined]
            print(f"shuffle-kit: warning: {warning}", file=sys.stderr, flush=True)


def _join(args: argparse.Namespace) -> int:
    from .io.readers import ReadOptions
    from .partitioning.job import use_fast_allocator
    from .partitioning.join_job import join
    from .partitioning.layout import Layout

    use_fast_allocator()
    layout = Layout(max_rows_per_file=args.max_rows_per_file, row_group_size=args.row_group_size,
                    empty_files=args.empty_files)

    def keys(groups: list[list[str]] | None) -> list[str] | None:
        return None if groups is None else [c for group in groups for c in group]

    def job() -> int:
        summary = join(
            args.inputs, args.right, keys(args.on), args.out, left_on=keys(args.left_on),
            right_on=keys(args.right_on), how=args.how, suffixes=tuple(args.suffixes), nulls_equal=not args.sql_nulls,
            npartitions=args.npartitions, memory_limit=args.memory_limit, threads=args.threads, format=args.format,
            compression=args.compression, exists=args.exists, tmp=args.tmp, progress=_progress(args),
            read=ReadOptions(args.partitioning, args.csv_delimiter), layout=layout,
        )
        _report(args, summary)
        if not summary.ok:
            return _fail("rows read != rows partitioned: output not written")
        return 0

    return _guarded(job)


def _suffixes(text: str) -> list[str]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"two suffixes separated by a comma (e.g. _x,_y), not {text!r}")
    return parts


def _demo(args: argparse.Namespace) -> int:
    """Generate a sample dataset and partition it (by hash, then by value)."""
    from .partitioning.demo import demo

    echo = (lambda *_: None) if args.quiet else print
    return _guarded(lambda: demo(args.out, args.rows, progress=_progress(args), echo=echo))


def _serve(args: argparse.Namespace) -> int:
    """Serve a store until SIGTERM or SIGINT, then exit: a store at ``--path`` is flushed
    to disk first, a temporary one (no ``--path``) is dropped. Prints the bound address on
    the first line of stdout, and for CURVE the server's public key on the second."""
    import threading

    from .stores.remote.auth import read_keys
    from .stores.remote.server import Server

    if bool(args.secret_key_file) != bool(args.authorized_keys_file):
        return _fail("CURVE needs both --secret-key-file and --authorized-keys-file")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            curve = bool(args.secret_key_file)
            server = Server(
                address=args.address, path=args.path, memory_limit=args.memory_limit,
                secret_key=read_keys(args.secret_key_file)[0] if curve else None,
                authorized_keys=read_keys(args.authorized_keys_file) if curve else None,
            )
        except (OSError, ValueError) as e:  # a bad address, path or key file: the message names it
            if os.environ.get("SHUFFLE_KIT_DEBUG"):
                raise
            return _fail(str(e))
        try:
            print(server.address, flush=True)
            if server.public_key is not None:
                print(server.public_key.decode(), flush=True)
            logging.getLogger(__name__).info("serving %s at %s", server.store, server.address)
            while not stop.wait(0.2) and server.running:
                pass
        finally:
            # nobody can read a temporary store after the server: writing it out first
            # would only cost the time and the disk writes of everything held
            server.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _add_chattiness(parser: argparse.ArgumentParser, top: bool) -> None:
    """-q and -v, accepted before the command (``top``) and after it."""
    # after the command, an option not given must not undo the same option given before it
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", default=False if top else argparse.SUPPRESS,
                       help="print nothing but errors: no progress bars, summary or warnings (the exit status tells)")
    group.add_argument("-v", "--verbose", action="count", default=0 if top else argparse.SUPPRESS,
                       help="log what the job does to stderr (-v: steps, -vv: details)")


@contextmanager
def _logging(verbose: int, quiet: bool) -> Iterator[None]:
    """Send the ``shuffle_kit`` loggers' records to stderr while a command runs (the
    library itself configures no logging): warnings by default, errors only with -q, steps
    with -v, details with -vv."""
    logger = logging.getLogger("shuffle_kit")
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("shuffle-kit %(asctime)s %(levelname)s %(name)s: %(message)s"))
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def _add_partition(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "partition", help="partition Parquet/CSV/Arrow files by key columns into files or hive directories",
        description="Partition Parquet, CSV or Arrow files by key columns, streaming with bounded memory: "
        "one file per hash partition that has rows, or with --by-value one hive directory per key value.",
        epilog=PARTITION_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_chattiness(p, top=False)
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object on stdout (rows, files, bytes, seconds, peak memory, "
                   "rows per file) and nothing else there")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="Parquet, CSV or Arrow files, globs or directories; paths or URLs (s3://, gs://, abfs://, hdfs://)")
    p.add_argument("--on", required=True, type=_columns, action="append", metavar="COL[,COL]",
                   help="key column(s): rows with equal keys end up in the same partition "
                   "(e.g. --on user_id or --on a,b)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (must not exist or be empty, see --exists)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--npartitions", type=_positive, metavar="N",
                     help="number of hash partitions, files part-00000... (default: input size / 100 MB, or 64)")
    how.add_argument("--by-value", action="store_true",
                     help="one hive directory per key value (col=value/part-00000.parquet); values percent-encoded, "
                     "nulls as __HIVE_DEFAULT_PARTITION__; key columns are left out of the files, "
                     "as hive readers expect")
    p.add_argument("--by-range", action="store_true",
                   help="files in key order: every key of part-00000 sorts no later than every key of part-00001 "
                   "(ascending unless --descending, nulls last unless --na-position first), equal keys in one file, "
                   "sizes balanced from a sample of the keys (the inputs are read twice, the first time only their "
                   "key columns); with --sort-by the same columns the dataset is globally sorted")
    p.add_argument("--max-partitions", type=_positive, default=1024, metavar="N",
                   help="--by-value refuses more than N distinct key values (directories; default 1024)")
    p.add_argument("--keep-keys", action="store_true",
                   help="with --by-value, keep the key columns in the files too (as polars' include_key)")
    p.add_argument("--sort-by", type=_columns, action="append", metavar="COL[,COL]",
                   help="sort the rows of each file by these columns (ascending unless --descending, NaN and nulls "
                   "last unless --na-position first; stable, as pandas' sort_values), in bounded memory however "
                   "large a partition is")
    p.add_argument("--descending", type=_columns, action="append", metavar="COL[,COL]",
                   help="order these columns descending (--by-range keys, --sort-by columns; the others ascending)")
    p.add_argument("--na-position", choices=["last", "first"], default="last",
                   help="where --by-range and --sort-by put nulls and NaN: last (default) or first, whatever the "
                   "direction (as pandas' na_position)")
    _add_job_options(p, tmp="where sorted runs spill when the data outgrows the memory limit (default: beside --out)",
                     empty_files="write a file for every hash partition, an empty one (with the columns) where no "
                     "row hashes to it, for readers that expect one file per bucket (default: no empty files)",
                     memory="half holds shuffled data before it spills to --tmp; ")
    p.set_defaults(run=_partition)


def _add_join(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "join", help="join two sets of Parquet/CSV/Arrow files on key columns, larger than memory",
        description="Join two sets of Parquet, CSV or Arrow files on key columns as pandas.merge does, "
        "streaming with bounded memory: both sides are hash-partitioned alike and joined a partition pair at "
        "a time, one output file per pair.",
        epilog=JOIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_chattiness(p, top=False)
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object on stdout (rows, files, bytes, seconds, peak memory, "
                   "rows per file) and nothing else there")
    p.add_argument("inputs", nargs="+", metavar="LEFT",
                   help="the left side: Parquet, CSV or Arrow files, globs or directories; paths or URLs")
    p.add_argument("--with", dest="right", nargs="+", required=True, metavar="RIGHT",
                   help="the right side: Parquet, CSV or Arrow files, globs or directories; paths or URLs")
    p.add_argument("--on", type=_columns, action="append", metavar="COL[,COL]",
                   help="key column(s) both sides have (default: every column both sides have)")
    p.add_argument("--left-on", type=_columns, action="append", metavar="COL[,COL]",
                   help="the left side's key column(s), with --right-on, instead of --on")
    p.add_argument("--right-on", type=_columns, action="append", metavar="COL[,COL]",
                   help="the right side's key column(s), as many as --left-on")
    p.add_argument("--how", choices=["inner", "left", "right", "outer"], default="inner",
                   help="which rows without a match are kept, as in pandas.merge (default inner)")
    p.add_argument("--suffixes", type=_suffixes, default=["_x", "_y"], metavar="LEFT,RIGHT",
                   help="added to the names of other columns both sides have (default _x,_y)")
    p.add_argument("--sql-nulls", action="store_true",
                   help="a null key matches nothing, as in SQL (default: null keys match each other, as in pandas)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (must not exist or be empty, see --exists)")
    p.add_argument("--npartitions", type=_positive, metavar="N",
                   help="partition pairs, and so files part-00000... (default: enough for a pair to take an eighth "
                   "of --memory-limit, and one per 100 MB of both sides)")
    _add_job_options(p, tmp="where both sides' partitions and sorted runs go (default: beside --out)",
                     empty_files="write a file for every partition pair, an empty one (with the columns) where the "
                     "join has no rows (default: no empty files)")
    p.set_defaults(run=_join)


def _add_job_options(p: argparse.ArgumentParser, tmp: str, empty_files: str, memory: str = "") -> None:
    """The options a join shares with partition: formats, memory, threads, places (the
    help of ``--tmp``, ``--empty-files`` and a note on ``--memory-limit`` told by each)."""
    p.add_argument("--format", choices=["parquet", "csv", "arrow"], default="parquet",
                   help="output file format (default parquet; arrow = Arrow IPC file)")
    p.add_argument("--memory-limit", metavar="SIZE",
                   help="memory budget, e.g. 500MB or 2GiB (default 1GB, or half the memory a container "
                   f"allows if less); {memory}peak memory is about this plus ~300 MB")
    p.add_argument("--partitioning", choices=["hive", "none"], default="hive",
                   help="hive (default): key=value directory names in the inputs become columns; none: ignore them")
    p.add_argument("--csv-delimiter", type=_delimiter, metavar="CHAR",
                   help="field delimiter of CSV inputs (default: tab for .tsv files, comma otherwise; \\t for a tab)")
    p.add_argument("--tmp", metavar="DIR", help=tmp)
    p.add_argument("--threads", type=_positive, metavar="N",
                   help="worker threads (default: the CPUs this process may use); the files are the same for any N")
    p.add_argument("--exists", choices=["error", "overwrite", "append"], default="error",
                   help="if --out is not empty: error (default), overwrite it (replaced only when the new output is "
                   "complete), or append: new files with names of their own beside the old ones, never replacing one "
                   "(refused if the old files' columns differ)")
    p.add_argument("--max-rows-per-file", type=_positive, metavar="N",
                   help="at most N rows per file: a larger partition gets part-00000-00000, part-00000-00001, ...")
    p.add_argument("--row-group-size", type=_positive, metavar="N",
                   help="rows per Parquet row group (Arrow record batch), all but each file's last; the rows held for "
                   "them count against --memory-limit")
    p.add_argument("--empty-files", action="store_true", help=empty_files)
    p.add_argument("--compression", choices=["lz4", "zstd", "none"], default="lz4",
                   help="compression of Parquet and Arrow output files (default lz4; CSV is written uncompressed)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only when stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="shuffle-kit", description=__doc__,
        epilog="run 'shuffle-kit COMMAND --help' for a command's options and examples; start with 'shuffle-kit demo'",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"shuffle-kit {__version__}")
    _add_chattiness(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_partition(commands)
    _add_join(commands)
    demo = commands.add_parser(
        "demo", help="generate a sample dataset and partition it (by hash and by value)",
        description="Generate 1,000,000 sample orders as Parquet, partition them by user_id into 8 files and "
        "by country into hive directories, check the results and print what happened. Everything is kept, "
        "in --out or a new directory of the current one.",
    )
    demo.add_argument("--rows", type=_positive, default=1_000_000, help="rows to generate (default 1,000,000)")
    demo.add_argument("--out", metavar="DIR",
                      help="where to write the data and both outputs, which are kept (default: a new directory "
                      "shuffle-kit-demo in the current directory; the demo prints where)")
    demo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                      help="progress bars (default: only on a terminal)")
    _add_chattiness(demo, top=False)
    demo.set_defaults(run=_demo)

    serve = commands.add_parser("serve", help="serve a store to other processes over ZeroMQ; "
                                "prints its address; on SIGTERM/SIGINT flushes a --path store to disk "
                                "and drops a temporary one")
    serve.add_argument("--address", help="ipc://PATH or tcp://HOST:PORT (default: a private ipc:// socket)")
    serve.add_argument("--path", help="directory of the on-disk store (default: a temporary one)")
    serve.add_argument("--memory-limit", default=10**9, metavar="SIZE",
                       help="bytes held in memory before the largest keys spill to disk (e.g. 2GB; default 1GB)")
    serve.add_argument("--secret-key-file",
                       help="this server's CURVE secret key (required with a non-loopback tcp address)")
    serve.add_argument("--authorized-keys-file", help="the clients' CURVE public keys, one per line")
    _add_chattiness(serve, top=False)  # -q keeps the address: it is what serve prints for others to read
    serve.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quiet and args.verbose:  # one before the command, the other after it
        parser.error("-q/--quiet and -v/--verbose exclude each other")
    if getattr(args, "memory_limit", None) is not None:  # the rule of shuffle_kit.partition and shuffle
        from .byte_sizes import check_memory_limit

        try:
            args.memory_limit = check_memory_limit(args.memory_limit, "--memory-limit")
        except ValueError as e:
            parser.error(str(e))
    with _logging(args.verbose, args.quiet):
        return args.run(args)


def console() -> int:
    """The program's entry point (``shuffle-kit``, ``python -m shuffle_kit``): SIGINT and
    SIGTERM at any moment end it with one line and exit status 130 (see the module's doc)."""
    # first of all, before anything heavy loads: a signal from here on is one line, 130
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = _run_console()
    except KeyboardInterrupt:
        _ignore_signals()
        print(INTERRUPTED, file=sys.stderr, flush=True)
        code = 130
    # the job is over: a signal while the interpreter shuts down (joining threads,
    # removing temporary stores) has nothing left to stop. Only here, never in main(),
    # because a process that calls main() keeps its own signal handling
    _ignore_signals()
    return code


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _run_console() -> int:
    # nothing here multiplies matrices, and OpenBLAS's worker threads spin on a core for a
    # while after NumPy loads (CPU time that the job's own threads want)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # Arrow picks the allocator of its own C++ code (the Parquet reader's and writer's
    # buffers) once, as pyarrow loads; use_fast_allocator can only change what calls from
    # Python use. jemalloc for both, for the reason use_fast_allocator gives (the pages of
    # buffers released per chunk are reused, not faulted in again). PyPI's Linux x86-64
    # wheels have it (elsewhere Arrow would warn).
    if sys.platform == "linux" and os.uname().machine == "x86_64" and "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    return main()


if __name__ == "__main__":
    sys.exit(console())
