"""Strings (issue 25): the partition job over a string column's distinct values, beside peers.

    python -m benchmarks.strings [--rows 20000000] [--strings 10000,all] [--parts 64,4096]
                                 [--limits 1GB,256MB] [--repeats 2] [--data-root DIR]

Input, per ``--strings`` value: ``--rows`` rows (default 20,000,000) in 16 Parquet files
written by pyarrow with its defaults (``benchmarks.out_of_core.generate``): ``key`` int64
with 100k values, ``x`` float64, ``y`` int64 and ``s``, a string of that many distinct
values: ~9-letter words for 10, 1,000, 10,000 and 100,000 (stored with a Parquet dictionary
where it fits the writer's page limit), ``all``: ``user-<hex>``, every value distinct.
Generated once under ``--data-root`` (default ``$TMPDIR``) and reused.

At each point (distinct values x ``--parts`` files x ``--limits``), each tool a whole process
timed (wall, imports included) and watched for peak RSS, as ``benchmarks.out_of_core`` runs
them, every output's row count checked, all writing LZ4 Parquet:

- ``shuffle-kit partition DATA --on key --npartitions N --memory-limit L``;
- polars ``sink_parquet(pl.PartitionBy(...))`` (no memory limit: one run per N serves
  every limit) and DuckDB ``COPY ... PARTITION_BY`` with ``SET memory_limit`` to L;
- the floor, once per data set: polars ``scan_parquet(DATA).sink_parquet(one file)``, and
  pyarrow copying the input into one file, each input file read and written whole, its
  string columns read as dictionaries and dictionary-encoded, but those of mostly distinct
  values in the first row group, read and written as values (as shuffle-kit does): what
  reading and encoding alone cost, without any partitioning. pyarrow encodes one file on
  one thread: its CPU seconds, printed beside shuffle-kit's, are the floor to compare with.

``--compare-with DIR`` runs shuffle-kit from another source tree (a checkout of an earlier
commit) beside this one at every point. Best of ``--repeats`` rounds; within a round the
tools are interleaved, the first rotating, so drift on a shared machine hits them alike.
The points run in the order given (data sets outermost), so the ones that matter most can
go first. Printed per point: each tool's seconds and shuffle-kit's time over the best
peer's and over each copy's, and 0.9 of polars' time (the goal) over pyarrow's copy.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import textwrap

from . import out_of_core as ooc

SK, POLARS, DUCK = "shuffle-kit partition", "polars sink_parquet(PartitionBy)", "DuckDB COPY PARTITION_BY"
COPY = ooc.COPY
ARROW_COPY = "pyarrow copy (one file, no partitioning)"
BASE = "shuffle-kit partition (--compare-with)"
SHORT = {SK: "shuffle-kit", POLARS: "polars", DUCK: "DuckDB", COPY: "copy", ARROW_COPY: "arrow copy",
         BASE: "sk before"}
NFILES = 16
STRINGS = ("10", "1000", "10000", "100000", "all")
PARTS = (64, 1024, 4096)
LIMITS = ("1GB", "256MB")


def data_dir(root: str, rows: int, strings: str) -> str:
    return os.path.join(root, f"shuffle_kit-strings-{rows}-{strings}-{NFILES}")


def arrow_copy(data: str, out: str) -> list[str]:
    """The command line of pyarrow's copy of ``data`` into ``out/all.parquet`` (see the
    module's docstring)."""
    program = f"""
        import glob, os, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
        files = sorted(glob.glob(os.path.join({data!r}, "*.parquet")))
        schema = pq.read_schema(files[0])
        strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        # mostly distinct strings are read and written as values, as shuffle-kit does
        sample = pq.ParquetFile(files[0]).read_row_group(0, columns=strings)
        strings = [s for s in strings if 2 * pc.count_distinct(sample.column(s)).as_py() < sample.num_rows]
        os.makedirs({out!r}, exist_ok=True)
        writer = None
        for f in files:
            table = pq.ParquetFile(f, read_dictionary=strings).read()
            if writer is None:
                writer = pq.ParquetWriter(os.path.join({out!r}, "all.parquet"), table.schema, compression="lz4",
                                          use_dictionary=strings)
            writer.write_table(table)
        writer.close()
    """
    return [sys.executable, "-c", textwrap.dedent(program)]


def _jobs(parts: tuple[int, ...], limits: tuple[str, ...], base: bool) -> list[tuple[str, int, str]]:
    """(tool, files, limit) of one data set; tools without a limit once per file count."""
    jobs: list[tuple[str, int, str]] = [(COPY, 0, ""), (ARROW_COPY, 0, "")]
    for n in parts:
        jobs.append((POLARS, n, ""))
        for limit in limits:
            jobs += [(SK, n, limit), (DUCK, n, limit)] + ([(BASE, n, limit)] if base else [])
    return jobs


def bench(rows: int, strings: tuple[str, ...], parts: tuple[int, ...], limits: tuple[str, ...], repeats: int,
          data_root: str, base: str = "") -> dict[tuple, dict]:
    """Best run of every (strings, tool, files, limit); ``base``: another source tree of
    shuffle_kit, run beside this one (``PYTHONPATH``) at every point."""
    results: dict[tuple, dict] = {}
    out_root = tempfile.mkdtemp(prefix="sk-strings-out-")
    try:
        for distinct in strings:
            data = data_dir(data_root, rows, distinct)
            print(f"input: {rows:,} rows, {distinct} distinct strings, in {NFILES} files at {data}", flush=True)
            ooc.generate(data, rows, strings=None if distinct == "all" else int(distinct), nfiles=NFILES)
            jobs = _jobs(parts, limits, bool(base))
            for attempt in range(repeats):
                # whole points stay together, and which comes first rotates between rounds
                for tool, n, limit in jobs[attempt % len(jobs):] + jobs[:attempt % len(jobs)]:
                    out = os.path.join(out_root, "out")
                    cmd = arrow_copy(data, out) if tool == ARROW_COPY else ooc._programs(
                        data, out, limit or "1GB", nparts=max(n, 1))[SK if tool == BASE else tool]
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    wall, peak, rc, err = ooc.measure(
                        # its directory first on sys.path (``-m`` puts the working directory there)
                        cmd, env={"PYTHONPATH": base} if tool == BASE else None, cwd=base if tool == BASE else None,
                    )
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                    got = ooc.count_rows(out) if rc == 0 else 0
                    shutil.rmtree(out, ignore_errors=True)
                    ok = rc == 0 and got == rows
                    key = (distinct, tool, n, limit)
                    best = results.get(key)
                    if best is None or (ok and (not best["ok"] or wall < best["seconds"])):
                        results[key] = {"seconds": wall, "cpu": cpu, "peak_rss": peak, "ok": ok,
                                        "error": "" if ok else err}
                    status = "ok" if ok else f"FAILED rc={rc} rows={got:,}: {err}"
                    print(f"  [{attempt}] {SHORT[tool]:11s} {n:5d} files {limit or '-':6s} {wall:7.2f} s "
                          f"{cpu:6.2f} CPU-s "
                          f"peak RSS {peak / 2**20:6.0f} MiB  {status}", flush=True)
            print_point_table(results, distinct, parts, limits)
    finally:
        shutil.rmtree(out_root, ignore_errors=True)
    return results


def _secs(results: dict, key: tuple) -> float | None:
    r = results.get(key)
    return r["seconds"] if r and r["ok"] else None


def print_point_table(results: dict, distinct: str, parts: tuple[int, ...], limits: tuple[str, ...]) -> None:
    copy = _secs(results, (distinct, COPY, 0, ""))
    floor = _secs(results, (distinct, ARROW_COPY, 0, ""))
    floor_cpu = results.get((distinct, ARROW_COPY, 0, ""), {}).get("cpu")
    print(f"\n{distinct} distinct strings; floor: polars copy {copy or float('nan'):.2f} s, "
          f"pyarrow copy {floor or float('nan'):.2f} s ({floor_cpu or float('nan'):.2f} CPU-s, one thread)")
    print(f"{'files':>6s} {'limit':>6s} {'shuffle-kit':>11s} {'polars':>7s} {'DuckDB':>7s} {'sk/best':>8s} "
          f"{'sk/copy':>8s} {'sk/arrow':>8s} {'.9pol/arrow':>11s} {'sk CPU-s':>8s} {'sk RSS MiB':>10s} "
          f"{'sk before':>9s}")
    for n in parts:
        for limit in limits:
            sk = _secs(results, (distinct, SK, n, limit))
            pol = _secs(results, (distinct, POLARS, n, ""))
            duck = _secs(results, (distinct, DUCK, n, limit))
            best = min((t for t in (pol, duck) if t is not None), default=None)
            rss = results.get((distinct, SK, n, limit), {}).get("peak_rss", 0) / 2**20
            sk_cpu = results.get((distinct, SK, n, limit), {}).get("cpu")
            before = _secs(results, (distinct, BASE, n, limit))

            def cell(v: float | None, width: int = 7) -> str:
                return f"{v:{width}.2f}" if v is not None else f"{'-':>{width}s}"

            print(f"{n:6d} {limit:>6s} {cell(sk, 11)} {cell(pol)} {cell(duck)} "
                  f"{cell(sk / best if sk and best else None, 8)} {cell(sk / copy if sk and copy else None, 8)} "
                  f"{cell(sk / floor if sk and floor else None, 8)} "
                  f"{cell(0.9 * pol / floor if pol and floor else None, 11)} {cell(sk_cpu, 8)} {rss:10.0f} "
                  f"{cell(before, 9)}")
    print(flush=True)


def rows_for_report(results: dict, rows: int) -> list[dict]:
    """Rows for ``python -m benchmarks``: ratio = best peer / shuffle-kit (above 1: faster)."""
    out = []
    for (distinct, tool, n, limit), r in sorted(results.items()):
        if tool != SK or not r["ok"]:
            continue
        peers = [t for t in (_secs(results, (distinct, POLARS, n, "")), _secs(results, (distinct, DUCK, n, limit)))
                 if t is not None]
        if peers:
            out.append({
                "workload": f"strings: {rows / 1e6:g}M rows, {distinct} distinct -> {n} files, {limit}, wall (s)",
                "shuffle_kit": round(r["seconds"], 2), "peer": "best of polars, DuckDB",
                "peer_value": round(min(peers), 2), "ratio": round(min(peers) / r["seconds"], 2), "unit": "s",
            })
    return out


def run(quick: bool) -> list[dict]:
    rows = 2_000_000 if quick else 20_000_000
    strings, parts, limits = (("10000", "all"), (64, 1024), ("1GB",)) if quick else (STRINGS, PARTS, LIMITS)
    results = bench(rows, strings, parts, limits, 1 if quick else 2, tempfile.gettempdir())
    return rows_for_report(results, rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--strings", default=",".join(STRINGS), help="distinct values of s, comma-separated ('all')")
    ap.add_argument("--parts", default=",".join(map(str, PARTS)))
    ap.add_argument("--limits", default=",".join(LIMITS))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--data-root", default=tempfile.gettempdir())
    ap.add_argument("--compare-with", default="", help="a source tree of shuffle_kit to run beside this one")
    args = ap.parse_args(argv)
    results = bench(args.rows, tuple(args.strings.split(",")), tuple(int(p) for p in args.parts.split(",")),
                    tuple(args.limits.split(",")), args.repeats, args.data_root, args.compare_with)
    for distinct in args.strings.split(","):
        print_point_table(results, distinct, tuple(int(p) for p in args.parts.split(",")),
                          tuple(args.limits.split(",")))


if __name__ == "__main__":
    main()
