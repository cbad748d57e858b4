"""Joins out of core (issue 24): ``shuffle-kit join`` beside DuckDB and polars, each as a whole process.

    python -m benchmarks.join [--rows 20000000] [--dim-rows 1000000] [--memory-limit 512MB --memory-limit 1GB]
                              [--joins many-to-one,one-to-one,many-to-one-str] [--threads 1,2] [--repeats 2]
                              [--data DIR]

Inputs (Parquet, generated once into ``--data``, default ``$TMPDIR/shuffle_kit-join-<rows>``):

- ``fact``: the out-of-core benchmark's ``--rows`` rows (:func:`benchmarks.out_of_core.generate`:
  ``key`` int64 with 100k distinct values, ``x`` float64, ``y`` int64, ``s`` a ~9-character
  string) with ``id``, the row's number, added: 8 files;
- ``dim``: ``--dim-rows`` rows, ``key`` 0 .. dim-rows-1 in random order, ``weight``
  float64, ``label`` a string: the many-to-one join ``fact JOIN dim USING (key)`` (every
  fact row matches one dimension row);
- ``twin``: ``--rows`` rows, ``id`` a permutation of the fact's ids, ``z`` float64, ``t``
  a string: the one-to-one join ``fact JOIN twin USING (id)``, 8 files;
- ``sfact`` and ``sdim`` (made only for ``many-to-one-str``): ``fact`` and ``dim`` with
  ``key`` a string, ``k`` and the number in 9 digits: the many-to-one join on a string key.

Peers, inner joins, LZ4 Parquet out, each its own subprocess timed from start to exit
(imports included) and watched for peak RSS (:func:`benchmarks.out_of_core.measure`):

- ``shuffle-kit join FACT --with DIM --on key --out OUT --npartitions 64 --memory-limit M``;
- DuckDB: ``SET memory_limit = M``, ``COPY (SELECT * FROM read_parquet(FACT) JOIN
  read_parquet(DIM) USING (key)) TO 'OUT/joined.parquet' (FORMAT parquet, COMPRESSION lz4)``
  (``preserve_insertion_order = false``, as in the partition benchmark; it spills beside OUT);
- polars: ``scan_parquet(FACT).join(scan_parquet(DIM), on="key").sink_parquet(
  'OUT/joined.parquet', compression="lz4")`` (streaming engine; polars has no memory limit);
- polars writing what shuffle-kit writes: the same join, ``with_columns(part=hash(key) %
  64).sink_parquet(pl.PartitionBy(OUT, key="part", include_key=False))``: 64 files.

The peers the issue names write one file, shuffle-kit 64 (what the issue asks of it); the
last row shows polars writing 64 too. ``--threads``: a curve over thread counts, each tool
given the same count (shuffle-kit's ``--threads``, DuckDB's ``SET threads``, polars'
``POLARS_MAX_THREADS``); by default each tool takes its own. Rounds are
interleaved, each starting with another tool, and each tool's best of ``--repeats`` is
kept; ratios are the peer's time over shuffle-kit's (above 1: shuffle-kit is faster).
The machine's load (``os.getloadavg``) is printed before and after.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Sequence

import pyarrow as pa

from benchmarks.out_of_core import NFILES, count_rows, generate, measure

NPARTS = 64
JOINS = {"many-to-one": ("fact", "dim", "key"), "one-to-one": ("fact", "twin", "id"),
         "many-to-one-str": ("sfact", "sdim", "key")}


def make_inputs(directory: str, rows: int, dim_rows: int, seed: int = 0, strings: bool = False) -> dict[str, str]:
    """``fact``, ``dim`` and ``twin`` under ``directory``, and with ``strings`` ``sfact`` and
    ``sdim`` (each skipped if already complete)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = generate(os.path.join(directory, "raw"), rows, seed)
    paths = {name: os.path.join(directory, name) for name in ("fact", "dim", "twin", "sfact", "sdim")}
    words = pa.array([f"t{i:08d}" for i in range(1000)])
    rng = np.random.default_rng(seed + 1)
    if not os.path.exists(os.path.join(paths["fact"], "_SUCCESS")):
        shutil.rmtree(paths["fact"], ignore_errors=True)
        os.makedirs(paths["fact"])
        at = 0
        for f in sorted(f for f in os.listdir(raw) if f.endswith(".parquet")):
            t = pq.read_table(os.path.join(raw, f))
            t = t.add_column(0, "id", pa.array(np.arange(at, at + t.num_rows)))
            at += t.num_rows
            pq.write_table(t, os.path.join(paths["fact"], f), row_group_size=1 << 20)
        open(os.path.join(paths["fact"], "_SUCCESS"), "w").close()
    if not os.path.exists(os.path.join(paths["dim"], "_SUCCESS")):
        shutil.rmtree(paths["dim"], ignore_errors=True)
        os.makedirs(paths["dim"])
        pq.write_table(pa.table({
            "key": rng.permutation(dim_rows), "weight": rng.random(dim_rows),
            "label": words.take(pa.array(rng.integers(0, len(words), dim_rows))),
        }), os.path.join(paths["dim"], "dim.parquet"), row_group_size=1 << 20)
        open(os.path.join(paths["dim"], "_SUCCESS"), "w").close()
    if not os.path.exists(os.path.join(paths["twin"], "_SUCCESS")):
        shutil.rmtree(paths["twin"], ignore_errors=True)
        os.makedirs(paths["twin"])
        ids = rng.permutation(rows)
        bounds = np.linspace(0, rows, NFILES + 1).astype(np.int64)
        for i in range(NFILES):
            n = int(bounds[i + 1] - bounds[i])
            pq.write_table(pa.table({
                "id": ids[bounds[i]:bounds[i + 1]], "z": rng.random(n),
                "t": words.take(pa.array(rng.integers(0, len(words), n))),
            }), os.path.join(paths["twin"], f"twin-{i:02d}.parquet"), row_group_size=1 << 20)
        open(os.path.join(paths["twin"], "_SUCCESS"), "w").close()
    for name, source in (("sfact", "fact"), ("sdim", "dim")):
        if strings and not os.path.exists(os.path.join(paths[name], "_SUCCESS")):
            shutil.rmtree(paths[name], ignore_errors=True)
            os.makedirs(paths[name])
            for f in sorted(f for f in os.listdir(paths[source]) if f.endswith(".parquet")):
                t = pq.read_table(os.path.join(paths[source], f))
                i = t.schema.get_field_index("key")
                t = t.set_column(i, "key", _string_keys(t.column(i)))
                pq.write_table(t, os.path.join(paths[name], f), row_group_size=1 << 20)
            open(os.path.join(paths[name], "_SUCCESS"), "w").close()
    return paths


def _string_keys(keys: pa.ChunkedArray) -> pa.ChunkedArray:
    """``k`` and each number in 9 digits: the same keys, as strings."""
    import pyarrow.compute as pc

    return pc.binary_join_element_wise("k", pc.utf8_lpad(pc.cast(keys, pa.string()), 9, "0"), "")


def programs(left: str, right: str, on: str, out: str, memory_limit: str, threads: int | None = None
             ) -> dict[str, list[str]]:
    """Each peer's command line: the inner join of the Parquet files of directories
    ``left`` and ``right`` on ``on`` into ``out`` (on ``threads`` threads; polars' are
    set in its environment by :func:`bench`)."""
    py = sys.executable
    duck_threads = "" if threads is None else f'con.execute("SET threads = {threads}")'
    sk_threads = [] if threads is None else ["--threads", str(threads)]
    lglob, rglob = os.path.join(left, "*.parquet"), os.path.join(right, "*.parquet")
    target = os.path.join(out, "joined.parquet")
    duck = f"""
        import os, duckdb
        os.makedirs({out!r})
        con = duckdb.connect()
        con.execute("SET memory_limit = '{memory_limit}'")
        {duck_threads}
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET temp_directory = '{out}.duckdb-tmp'")  # (not the working directory)
        con.execute(\"\"\"COPY (SELECT * FROM read_parquet('{lglob}') AS l
            JOIN read_parquet('{rglob}') AS r USING ({on})) TO '{target}' (FORMAT parquet, COMPRESSION lz4)\"\"\")
    """
    polars = f"""
        import os, polars as pl
        os.makedirs({out!r})
        pl.scan_parquet({lglob!r}).join(pl.scan_parquet({rglob!r}), on={on!r}).sink_parquet(
            {target!r}, compression="lz4")
    """
    partitioned = f"""
        import polars as pl
        lf = pl.scan_parquet({lglob!r}).join(pl.scan_parquet({rglob!r}), on={on!r})
        lf = lf.with_columns(part=pl.col({on!r}).hash() % {NPARTS})
        lf.sink_parquet(pl.PartitionBy({out!r}, key="part", include_key=False), compression="lz4")
    """
    return {
        "shuffle-kit join": [
            py, "-m", "shuffle_kit", "join", lglob, "--with", rglob, "--on", on, "--out", out,
            "--npartitions", str(NPARTS), "--memory-limit", memory_limit, "--no-progress", "-q", *sk_threads,
        ],
        "DuckDB COPY (SELECT ... JOIN ...)": [py, "-c", textwrap.dedent(duck)],
        "polars join().sink_parquet()": [py, "-c", textwrap.dedent(polars)],
        # the same output as ours (not a target, the issue names the one-file program)
        f"polars join, PartitionBy {NPARTS} files": [py, "-c", textwrap.dedent(partitioned)],
    }


def bench(rows: int, dim_rows: int, limits: list[str], joins: list[str], repeats: int, data: str | None,
          thread_counts: Sequence[int | None] = (None,)) -> list[dict]:
    data = data or os.path.join(tempfile.gettempdir(), f"shuffle_kit-join-{rows}")
    print(f"inputs: fact {rows:,} rows, dim {dim_rows:,} rows, twin {rows:,} rows, Parquet, at {data}", flush=True)
    paths = make_inputs(data, rows, dim_rows, strings=any(JOINS[kind][0] == "sfact" for kind in joins))
    root = tempfile.mkdtemp(prefix="sk-join-out-")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)", flush=True)
    results = []
    try:
        for kind in joins:
            left, right, on = JOINS[kind]
            expected = rows
            for limit, threads in itertools.product(limits, thread_counts):
                print(f"\n{kind} join on {on}, --memory-limit {limit}"
                      f"{'' if threads is None else f', {threads} threads'}:", flush=True)
                names = list(programs(paths[left], paths[right], on, "", limit))
                env = None if threads is None else {"POLARS_MAX_THREADS": str(threads)}
                best: dict[str, dict] = {}
                for attempt in range(repeats):
                    order = names[attempt % len(names):] + names[:attempt % len(names)]
                    for name in order:
                        out = os.path.join(root, f"out-{len(results)}-{attempt}-{names.index(name)}")
                        cmd = programs(paths[left], paths[right], on, out, limit, threads)[name]
                        wall, peak, rc, err = measure(cmd, env=env)
                        got = count_rows(out) if rc == 0 else 0
                        shutil.rmtree(out, ignore_errors=True)
                        shutil.rmtree(out + ".duckdb-tmp", ignore_errors=True)
                        ok = rc == 0 and got == expected
                        status = "ok" if ok else f"FAILED rc={rc} rows={got:,}: {err}"
                        print(f"  {name:36s} {wall:7.2f} s  peak RSS {peak / 2**20:6.0f} MiB  {status}", flush=True)
                        if ok and (name not in best or wall < best[name]["seconds"]):
                            best[name] = {"seconds": wall, "peak_rss": peak}
                ours = best.get("shuffle-kit join")
                for name, r in best.items():
                    ratio = r["seconds"] / ours["seconds"] if ours else float("nan")
                    results.append({"join": kind, "memory_limit": limit, "threads": threads or "", "tool": name, **r,
                                    "ratio": ratio})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nload average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    return results


def report(results: list[dict]) -> None:
    print(f"\n{'join':12s} {'limit':>6s} {'threads':>7s} {'tool':36s} {'best s':>8s} {'peak MiB':>9s} "
          f"{'time / ours':>12s}")
    for r in results:
        print(f"{r['join']:12s} {r['memory_limit']:>6s} {r['threads']!s:>7s} {r['tool']:36s} {r['seconds']:8.2f} "
              f"{r['peak_rss'] / 2**20:9.0f} {r['ratio']:11.2f}x")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--dim-rows", type=int, default=1_000_000)
    ap.add_argument("--memory-limit", action="append", help="repeat for a curve (default 512MB and 1GB)")
    ap.add_argument("--joins", default="many-to-one,one-to-one,many-to-one-str")
    ap.add_argument("--threads", help="thread counts for a curve, e.g. 1,2 (default: each tool's own)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--data", help="input directory (generated if missing)")
    args = ap.parse_args(argv)
    thread_counts: list[int | None] = [int(t) for t in args.threads.split(",")] if args.threads else [None]
    report(bench(args.rows, args.dim_rows, args.memory_limit or ["512MB", "1GB"], args.joins.split(","),
                 args.repeats, args.data, thread_counts))


if __name__ == "__main__":
    main()
