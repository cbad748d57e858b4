"""Out of core (issue 7): partition a Parquet dataset into 64 files, each tool as a whole process.

    python -m benchmarks.out_of_core [--rows 20000000] [--memory-limit 1GB] [--data DIR] [--only NAME]

Input: ``--rows`` rows (default 20,000,000) in 8 Parquet files: ``key`` int64 with 100k
distinct values, ``x`` float64, ``y`` int64, ``s`` a ~9-character string. Generated once
into ``--data`` (default: ``$TMPDIR/shuffle_kit-ooc-<rows>``) and reused.

Each peer runs as its own subprocess, partitioning on ``key`` into 64 files (LZ4 Parquet),
timed (wall time of the whole process, imports included) and watched for peak RSS (the
process tree's resident memory polled every 20 ms with psutil):

- ``shuffle-kit partition DATA --on key --out OUT --npartitions 64 --memory-limit 1GB``
- polars: ``pl.scan_parquet(DATA).with_columns(part=hash(key) % 64)
  .sink_parquet(pl.PartitionBy(OUT, key="part", include_key=False))`` (streaming engine)
- DuckDB: ``COPY (SELECT *, hash(key) % 64 AS part FROM read_parquet(...)) TO OUT
  (FORMAT parquet, PARTITION_BY (part))``, ``memory_limit`` set to the same budget
- pyarrow: ``pyarrow.dataset.write_dataset`` of the scanned batches with a
  ``key % 64`` column, hive partitioning on it
- dask: ``dd.read_parquet(DATA).shuffle("key", npartitions=64, shuffle_method="disk")
  .to_parquet(OUT)`` on the threaded scheduler

Every output is checked (row count) after its run. ``run(quick)`` returns rows for the
report; ``quick`` uses 2,000,000 rows.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

NPARTS = 64
# the floor: the same data read and written once, unpartitioned
COPY = "polars copy (one file, no partitioning)"
NFILES = 8
DISTINCT = 100_000


def generate(directory: str, rows: int, seed: int = 0, strings: int | None = 1000, nfiles: int = NFILES) -> str:
    """Write the input dataset into ``directory`` (skipped if already complete): ``nfiles``
    Parquet files, ``s`` drawn from ``strings`` distinct values (``w00000123`` for the
    default 1,000; random 9-letter words otherwise), or all distinct (``user-<hex>``) for
    None, written with pyarrow's defaults (a Parquet dictionary, given up by the writer
    when it outgrows its page limit)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    done = os.path.join(directory, "_SUCCESS")
    if os.path.exists(done):
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    rng = np.random.default_rng(seed)
    words = None if strings is None else _words(strings, rng)
    bounds = np.linspace(0, rows, nfiles + 1).astype(np.int64)
    for i in range(nfiles):
        n = int(bounds[i + 1] - bounds[i])
        if words is None:  # distinct: a bijection of the row number, printed in hex
            ids = (np.arange(bounds[i], bounds[i + 1], dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
            s = pa.array([f"user-{v:016x}" for v in ids.tolist()])
        else:
            s = words.take(pa.array(rng.integers(0, len(words), n)))
        table = pa.table({
            "key": rng.integers(0, DISTINCT, n),
            "x": rng.random(n),
            "y": rng.integers(-(10**9), 10**9, n),
            "s": s,
        })
        pq.write_table(table, os.path.join(directory, f"data-{i:02d}.parquet"), row_group_size=1 << 20)
        del table, s
    open(done, "w").close()
    return directory


def _words(n: int, rng: Any) -> Any:
    """``n`` distinct strings of about 9 characters (the default 1,000: ``w00000123``)."""
    import numpy as np
    import pyarrow as pa

    if n == 1000:  # the data set of earlier reports, unchanged
        return pa.array([f"w{i:08d}" for i in range(n)])
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    seen: dict[str, None] = {}
    while len(seen) < n:
        lengths = rng.integers(7, 12, n)
        for length in lengths.tolist():
            seen.setdefault(letters[rng.integers(0, 26, length)].tobytes().decode(), None)
            if len(seen) == n:
                break
    return pa.array(list(seen))


# -- the peers: each a Python program run as its own process ------------------------------------

def _programs(data: str, out: str, memory_limit: str, nparts: int = NPARTS,
              threads: int | None = None) -> dict[str, list[str]]:
    """Each peer's command line. ``threads`` (None: each tool's default) is shuffle-kit's
    ``--threads`` and DuckDB's ``SET threads``; polars reads ``POLARS_MAX_THREADS`` from
    the environment (see ``measure(env=...)``)."""
    py = sys.executable
    duck_threads = "" if threads is None else f'con.execute("SET threads = {threads}")'
    sk_threads = [] if threads is None else ["--threads", str(threads)]
    glob = os.path.join(data, "*.parquet")
    polars = f"""
        import polars as pl
        lf = pl.scan_parquet({glob!r}).with_columns(part=pl.col("key").hash() % {nparts})
        lf.sink_parquet(pl.PartitionBy({out!r}, key="part", include_key=False), compression="lz4")
    """
    duck = f"""
        import duckdb
        con = duckdb.connect()
        con.execute("SET memory_limit = '{memory_limit}'")
        con.execute("SET preserve_insertion_order = false")
        {duck_threads}
        con.execute(\"\"\"COPY (SELECT *, hash(key) % {nparts} AS part FROM read_parquet('{glob}'))
            TO '{out}' (FORMAT parquet, PARTITION_BY (part), COMPRESSION lz4)\"\"\")
    """
    arrow = f"""
        import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset as ds
        src = ds.dataset({data!r}, format="parquet")
        schema = src.schema.append(pa.field("part", pa.int64()))
        def batches():
            for b in src.to_batches(batch_size=1 << 17):
                yield b.append_column("part", pc.modulo(b.column("key"), {nparts}))
        ds.write_dataset(
            pa.RecordBatchReader.from_batches(schema, batches()), {out!r}, format="parquet",
            partitioning=ds.partitioning(pa.schema([("part", pa.int64())]), flavor="hive"),
            file_options=ds.ParquetFileFormat().make_write_options(compression="lz4"),
            max_partitions={nparts}, existing_data_behavior="overwrite_or_ignore",
        )
    """
    dask = f"""
        import dask, dask.dataframe as dd
        if __name__ == "__main__":
            dask.config.set(scheduler="threads")
            ddf = dd.read_parquet({glob!r})
            ddf.shuffle("key", npartitions={nparts}, shuffle_method="disk").to_parquet(
                {out!r}, compression="lz4", write_index=False
            )
    """
    copy = f"""
        import polars as pl
        pl.scan_parquet({glob!r}).sink_parquet({os.path.join(out, "all.parquet")!r}, compression="lz4", mkdir=True)
    """
    return {
        "shuffle-kit partition": [
            py, "-m", "shuffle_kit", "partition", glob, "--on", "key", "--out", out,
            "--npartitions", str(nparts), "--memory-limit", memory_limit, "--no-progress", *sk_threads,
        ],
        "polars sink_parquet(PartitionBy)": [py, "-c", textwrap.dedent(polars)],
        "DuckDB COPY PARTITION_BY": [py, "-c", textwrap.dedent(duck)],
        "pyarrow write_dataset": [py, "-c", textwrap.dedent(arrow)],
        "dask shuffle(disk) + to_parquet": [py, "-c", textwrap.dedent(dask)],
        COPY: [py, "-c", textwrap.dedent(copy)],
    }


@functools.cache
def compile_package() -> None:
    """shuffle_kit's bytecode cached once, as an installed package has it: a process run
    with ``PYTHONDONTWRITEBYTECODE`` (or from a fresh checkout) would otherwise compile
    every module it imports, each run, a cost the compiled peers never pay."""
    import compileall

    import shuffle_kit

    compileall.compile_dir(os.path.dirname(shuffle_kit.__file__), quiet=1)


def measure(cmd: list[str], interval: float = 0.02, env: dict[str, str] | None = None,
            cwd: str | None = None) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS bytes of the process tree, exit code, stderr tail); ``env``
    is added to this process's environment; ``cwd``: the directory it runs in."""
    import psutil

    compile_package()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env} if env else None, cwd=cwd)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(interval)
    wall = time.perf_counter() - start
    out, err = proc.communicate()
    return wall, peak, proc.returncode, (err or out).strip()[-400:]


def count_rows(out: str) -> int:
    import pyarrow.parquet as pq

    total = 0
    for root, _, files in os.walk(out):
        for f in files:
            if f.endswith(".parquet"):
                total += pq.read_metadata(os.path.join(root, f)).num_rows
    return total


def count_files(out: str) -> int:
    return sum(f.endswith(".parquet") for _, _, files in os.walk(out) for f in files)


def bench(rows: int, memory_limit: str = "1GB", data: str | None = None, only: str = "",
          repeats: int = 1, verbose: bool = True) -> dict[str, dict]:
    data = data or os.path.join(tempfile.gettempdir(), f"shuffle_kit-ooc-{rows}")
    if verbose:
        print(f"input: {rows:,} rows in {NFILES} Parquet files at {data}", flush=True)
    generate(data, rows)
    disk = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))
    root = tempfile.mkdtemp(prefix="sk-ooc-out-")
    results: dict[str, dict] = {}
    try:
        for attempt in range(repeats):  # interleaved, so drift hits every peer alike
            for name in _programs(data, "", memory_limit):
                if only and only not in name:
                    continue
                out = os.path.join(root, f"out-{len(results)}-{attempt}")
                cmd = _programs(data, out, memory_limit)[name]
                wall, peak, rc, err = measure(cmd)
                got = count_rows(out) if rc == 0 else 0
                files = count_files(out) if rc == 0 else 0
                shutil.rmtree(out, ignore_errors=True)
                r = results.get(name)
                if r is None or (rc == 0 and wall < r["seconds"]):
                    results[name] = {"seconds": wall, "peak_rss": peak, "rc": rc, "rows_ok": got == rows,
                                     "files": files, "error": err if rc else ""}
                if verbose:
                    status = "ok" if rc == 0 and got == rows else f"FAILED rc={rc} rows={got:,}: {err}"
                    print(f"  {name:34s} {wall:7.2f} s  peak RSS {peak / 2**20:7.0f} MiB  files {files:4d}  {status}",
                          flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results["_input"] = {"rows": rows, "disk_bytes": disk, "memory_limit": memory_limit}
    return results


def _rows(results: dict[str, dict], rows: int) -> list[dict]:
    ours = results.get("shuffle-kit partition")
    out = []
    for name, r in results.items():
        if name.startswith("_") or name == "shuffle-kit partition" or ours is None:
            continue
        out.append({
            "workload": f"out of core: {rows / 1e6:g}M rows Parquet -> 64 files, wall time (s)",
            "shuffle_kit": round(ours["seconds"], 2),
            "peer": name,
            "peer_value": round(r["seconds"], 2) if r["rc"] == 0 else float("nan"),
            "ratio": round(r["seconds"] / ours["seconds"], 2) if r["rc"] == 0 else float("nan"),
            "unit": "s",
        })
        out.append({
            "workload": f"out of core: {rows / 1e6:g}M rows, peak RSS (MiB; shuffle-kit --memory-limit 1GB)",
            "shuffle_kit": round(ours["peak_rss"] / 2**20),
            "peer": name,
            "peer_value": round(r["peak_rss"] / 2**20) if r["rc"] == 0 else float("nan"),
            "ratio": round(r["peak_rss"] / ours["peak_rss"], 2) if r["rc"] == 0 else float("nan"),
            "unit": "MiB",
        })
    return out


def run(quick: bool) -> list[dict]:
    """Rows for ``python -m benchmarks``: ratio = peer / shuffle_kit (above 1: shuffle_kit
    is faster or smaller)."""
    rows = 2_000_000 if quick else 20_000_000
    return _rows(bench(rows, repeats=1 if quick else 3, verbose=True), rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--memory-limit", default="1GB")
    ap.add_argument("--data", help="input directory (generated if missing)")
    ap.add_argument("--only", default="", help="run peers whose name contains this")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    results = bench(args.rows, args.memory_limit, args.data, args.only, args.repeats)
    ours = results.get("shuffle-kit partition")
    print(f"\n{'':34s} {'seconds':>8s} {'peak RSS MiB':>13s} {'time vs shuffle-kit':>20s}")
    for name, r in results.items():
        if name.startswith("_"):
            continue
        ratio = f"{r['seconds'] / ours['seconds']:.2f}x" if ours and r["rc"] == 0 else "-"
        print(f"{name:34s} {r['seconds']:8.2f} {r['peak_rss'] / 2**20:13.0f} {ratio:>20s}")
    if ours:
        limit = results["_input"]["memory_limit"]
        print(f"\nshuffle-kit partition --memory-limit {limit}: peak RSS {ours['peak_rss'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
