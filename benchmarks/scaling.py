"""Scaling (issue 13): curves over partitions, memory limit and threads, each beside its peers.

    python -m benchmarks.scaling [--quick] [--only shuffle,cli,threads] [--repeats 3]
                                 [--shuffle-rows 5000000] [--cli-rows 20000000] [--data DIR]

Three curves, every tool measured in the same run on the same data, best of ``--repeats``
(default 3), the tools interleaved round-robin within each round (the first tool of a round
rotates) so that machine drift hits them alike, after one untimed warm-up run of each tool
(imports, first calls, the input into the page cache).

1. ``shuffle``: ``shuffle_kit.shuffle()`` of the 5,000,000-row frame of the codec issue
   (``benchmarks.common.make_frame``) given as 8 chunks (``common.chunks_of``), shuffled on
   ``key`` into 64, 1024, 4096 and 16384 partitions, every partition read back (the result
   iterated). Peers at the same counts, as in ``benchmarks.shuffle``:

   - pandas in memory: ``hash_pandas_object(key) % n`` and a groupby split of the whole frame;
   - polars in memory: ``partition_by`` on ``hash(key) % n`` (frame converted beforehand);
   - partd pipeline: per chunk the same pandas hash and groupby split,
     ``partd.PandasBlocks(partd.File)`` append; then ``get`` of each partition. partd writes
     a file per key: a count whose estimate (its time at the previous count, scaled by the
     ratio of counts) or whose measured run exceeds 60 s is not run (again), with the reason.

   Printed: seconds, shuffle_kit / each peer, and shuffle_kit's time at n / its time at 64.

2. ``cli``: the out-of-core input of ``benchmarks.out_of_core`` (20,000,000 rows in 8 Parquet
   files, generated once into ``--data``, default ``$TMPDIR/shuffle_kit-ooc-<rows>``), each
   tool a whole process timed (wall, imports included) and watched for peak RSS (process
   tree polled every 20 ms), as ``benchmarks.out_of_core`` runs them, at 64, 1024 and 4096
   partitions and memory limits 128MB, 256MB, 512MB and 1GB (the issue's targets start at
   256MB; 128MB shows whether the curve holds below them):

   - ``shuffle-kit partition DATA --on key --out OUT --npartitions N --memory-limit L``;
   - polars: ``scan_parquet(DATA).with_columns(part=hash(key) % N)
     .sink_parquet(pl.PartitionBy(OUT, key="part", include_key=False))`` (it has no memory
     limit: one run per N serves every limit);
   - DuckDB: ``COPY (SELECT *, hash(key) % N AS part ...) TO OUT (FORMAT parquet,
     PARTITION_BY (part))`` with ``SET memory_limit`` to L.

   Every output's row count is checked after its run. Printed: wall, peak RSS (the highest
   of the runs), shuffle-kit's wall / polars' and / DuckDB's, and shuffle-kit's peak RSS
   against L + 300 MB.

3. ``threads``: the 64-partition, 1GB job of 2. with one thread beside each tool's default:
   ``shuffle-kit --threads 1`` (reported as not available if ``partition --help`` does not
   list it), polars with ``POLARS_MAX_THREADS=1`` in its environment, DuckDB ``SET threads = 1``.
   Printed: each tool's speed-up, default over one thread.

``--quick``: 1,000,000 rows for ``shuffle()`` at 64, 1024 and 4096 partitions; 2,000,000 rows
for the command line at 64 and 1024 partitions and 256MB and 1GB; one repeat. Writes the
curves to ``benchmarks/scaling.png`` (``--chart``), which the report shows in this module's
section; ``run(quick)`` also returns the ratios for the summary table.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from . import out_of_core as ooc
from .common import chunks_of, make_frame

HERE = os.path.dirname(os.path.abspath(__file__))
NCHUNKS = 8
PARTD_CAP = 60.0
RSS_ALLOWANCE = 300e6

SK, PANDAS, POLARS, PARTD = "shuffle_kit", "pandas", "polars", "partd"
CLI_SK, CLI_POLARS, CLI_DUCK = "shuffle-kit partition", "polars sink_parquet(PartitionBy)", "DuckDB COPY PARTITION_BY"
CLI_TOOLS = (CLI_SK, CLI_POLARS, CLI_DUCK)
SHORT = {CLI_SK: "shuffle-kit", CLI_POLARS: "polars", CLI_DUCK: "DuckDB"}


def _sizes(quick: bool) -> dict:
    if quick:
        return {"shuffle_rows": 1_000_000, "shuffle_parts": (64, 1024, 4096), "cli_rows": 2_000_000,
                "cli_parts": (64, 1024), "limits": ("256MB", "1GB"), "repeats": 1}
    return {"shuffle_rows": 5_000_000, "shuffle_parts": (64, 1024, 4096, 16384), "cli_rows": 20_000_000,
            "cli_parts": (64, 1024, 4096), "limits": ("128MB", "256MB", "512MB", "1GB"), "repeats": 3}


def _rotated(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


def _nbytes(size: str) -> float:
    units = {"KB": 1e3, "MB": 1e6, "GB": 1e9}
    return float(size[:-2]) * units[size[-2:].upper()]


# -- 1. shuffle() in memory beside pandas, polars and partd --------------------------------------

def _shuffle_peers(rows: int, root: str) -> dict[str, Callable[[int], None]]:
    """Each tool as ``fn(nparts)`` on the same frame (8 chunks for the chunked ones)."""
    import polars as pl

    from . import shuffle as sh

    df = make_frame(rows)
    chunks = chunks_of(df, NCHUNKS)
    pl_df = pl.from_pandas(df)
    return {
        SK: lambda n: sh.run_shuffle_kit(chunks, n),
        PANDAS: lambda n: sh.run_pandas(df, n),
        POLARS: lambda n: sh.run_polars(pl_df, n),
        PARTD: lambda n: sh.run_partd(chunks, root, n),
    }


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _partd_skip(times: dict[int, float], n: int, parts: tuple[int, ...]) -> str:
    """Why partd is not run at ``n`` (empty: run it)."""
    done = [p for p in parts if p < n and p in times]
    if not done:
        return ""
    prev = done[-1]
    if times[prev] > PARTD_CAP:
        return f"partd at {n}: not run, its run at {prev} took {times[prev]:.0f} s (> {PARTD_CAP:.0f} s cap)"
    estimate = times[prev] * n / prev
    if estimate > PARTD_CAP:
        return (f"partd at {n}: not run, a file per key: estimated {estimate:.0f} s from {times[prev]:.1f} s "
                f"at {prev} (> {PARTD_CAP:.0f} s cap)")
    return ""


def shuffle_curves(rows: int, parts: tuple[int, ...], repeats: int) -> tuple[dict[str, dict[int, float]], list[str]]:
    """Best seconds per tool and partition count; notes on what was not run."""
    root = tempfile.mkdtemp(prefix="sk-scaling-partd-")
    notes: list[str] = []
    times: dict[str, dict[int, float]] = {}
    try:
        peers = _shuffle_peers(rows, root)
        for fn in peers.values():  # warm-up (first calls, imports), untimed
            fn(parts[0])
        for n in parts:
            skip = _partd_skip(times.get(PARTD, {}), n, parts)
            if skip:
                notes.append(skip)
                print(f"  {skip}", flush=True)
            for attempt in range(repeats):
                for name in _rotated(list(peers), attempt):
                    if name == PARTD and (skip or times.get(PARTD, {}).get(n, 0) > PARTD_CAP):
                        continue
                    t = _timed(functools.partial(peers[name], n))
                    times.setdefault(name, {})[n] = min(t, times.get(name, {}).get(n, math.inf))
            done = "  ".join(f"{k} {v[n]:.2f} s" for k, v in times.items() if n in v)
            print(f"  {n:6d} partitions: {done}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return times, notes


def _cell(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None or not math.isfinite(v) else fmt.format(v)


def print_shuffle(times: dict[str, dict[int, float]], parts: tuple[int, ...], rows: int) -> None:
    ours = times.get(SK, {})
    peers = [p for p in (PANDAS, POLARS, PARTD) if p in times]
    print(f"\nshuffle(): {rows:,} rows, {NCHUNKS} chunks -> n partitions, every one read; seconds")
    head = f"{'n':>6s} {SK:>11s} " + " ".join(f"{p:>8s}" for p in peers)
    head += " " + " ".join(f"{'sk/' + p:>12s}" for p in peers) + f" {'sk n/' + str(parts[0]):>8s}"
    print(head)
    base = ours.get(parts[0])
    for n in parts:
        t = ours.get(n)
        line = f"{n:6d} {_cell(t):>11s} " + " ".join(f"{_cell(times[p].get(n)):>8s}" for p in peers)
        line += " " + " ".join(f"{_cell(_div(t, times[p].get(n)), '{:.2f}x'):>12s}" for p in peers)
        line += f" {_cell(_div(t, base), '{:.2f}x'):>8s}"
        print(line)
    if 4096 in ours and base:
        print(f"shuffle_kit at 4096 / at {parts[0]}: {ours[4096] / base:.2f}x (target <= 2.5x)")
    if 4096 in ours and 4096 in times.get(PANDAS, {}):
        print(f"shuffle_kit / pandas at 4096: {ours[4096] / times[PANDAS][4096]:.2f}x (target < 1)")


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def shuffle_rows(times: dict[str, dict[int, float]], parts: tuple[int, ...], rows: int) -> list[dict]:
    out = []
    ours = times.get(SK, {})
    for n in parts:
        for peer in (PANDAS, POLARS, PARTD):
            t, p = ours.get(n), times.get(peer, {}).get(n)
            if t is None or p is None:
                continue
            out.append({"workload": f"shuffle(): {rows / 1e6:g}M rows -> {n} partitions, every one read (s)",
                        "shuffle_kit": round(t, 2),
                        "peer": f"{peer} (in memory)" if peer != PARTD else "partd pipeline",
                        "peer_value": round(p, 2), "ratio": round(p / t, 2), "unit": "s"})
    return out


# -- 2. and 3. the command line as whole processes beside polars and DuckDB ----------------------

def has_threads_option() -> bool:
    r = subprocess.run([sys.executable, "-m", "shuffle_kit", "partition", "--help"],
                       capture_output=True, text=True, timeout=120)
    return "--threads" in r.stdout


def _key(section: str, tool: str, nparts: int, limit: str, threads: int | None = None) -> tuple:
    """A job of a section; polars has no memory limit, so its job is the same at every limit."""
    return (section, tool, nparts, None if tool == CLI_POLARS else limit, threads)


def cli_jobs(parts: tuple[int, ...], limits: tuple[str, ...], sections: set[str],
             sk_threads: bool) -> list[list[tuple]]:
    """Points in order, each a list of the tools' jobs (deduplicated). The threads section
    has jobs of its own: each tool's one-thread and default runs side by side."""
    points, seen = [], set()

    def add(jobs: list[tuple]) -> None:
        fresh = [j for j in jobs if j not in seen]
        seen.update(fresh)
        if fresh:
            points.append(fresh)

    if "cli" in sections:
        for n in parts:
            for limit in limits:
                add([_key("cli", t, n, limit) for t in CLI_TOOLS])
    if "threads" in sections:
        limit = "1GB" if "1GB" in limits else limits[-1]
        tools = [t for t in CLI_TOOLS if t != CLI_SK or sk_threads]
        add([_key("threads", t, parts[0], limit, th) for t in tools for th in (1, None)])
    return points


def run_job(job: tuple, data: str, root: str, rows: int, note: str = "") -> dict:
    _, tool, nparts, limit, threads = job
    out = os.path.join(root, f"out-{time.monotonic_ns()}")
    cmd = ooc._programs(data, out, limit or "1GB", nparts=nparts, threads=threads)[tool]
    env = {"POLARS_MAX_THREADS": str(threads)} if tool == CLI_POLARS and threads else None
    wall, peak, rc, err = ooc.measure(cmd, env=env)
    got = ooc.count_rows(out) if rc == 0 else 0
    files = ooc.count_files(out) if rc == 0 else 0
    shutil.rmtree(out, ignore_errors=True)
    ok = rc == 0 and got == rows
    status = "ok" if ok else f"FAILED rc={rc} rows={got:,}: {err}"
    label = f"{SHORT[tool]} n={nparts} limit={limit or '-'} threads={threads or 'default'}"
    print(f"  {label:50s} {wall:7.2f} s  peak RSS {peak / 2**20:6.0f} MiB  files {files:5d}  {status}{note}",
          flush=True)
    return {"seconds": wall, "peak_rss": peak, "ok": ok, "error": "" if ok else status}


def _merge(best: dict | None, r: dict) -> dict:
    """Best wall of the successful runs; the highest peak RSS of all runs."""
    if best is None:
        return r
    peak = max(best["peak_rss"], r["peak_rss"])
    if r["ok"] and (not best["ok"] or r["seconds"] < best["seconds"]):
        return {**r, "peak_rss": peak}
    return {**best, "peak_rss": peak}


def cli_curves(rows: int, points: list[list[tuple]], repeats: int, data: str | None) -> dict[tuple, dict]:
    data = data or os.path.join(tempfile.gettempdir(), f"shuffle_kit-ooc-{rows}")
    print(f"input: {rows:,} rows in {ooc.NFILES} Parquet files at {data}", flush=True)
    ooc.generate(data, rows)
    root = tempfile.mkdtemp(prefix="sk-scaling-out-")
    results: dict[tuple, dict] = {}
    try:
        for job in points[0]:  # warm-up: libraries and input into the page cache
            run_job(job, data, root, rows, note=" (warm-up, not counted)")
        for attempt in range(repeats):
            for jobs in points:
                for job in _rotated(jobs, attempt):
                    results[job] = _merge(results.get(job), run_job(job, data, root, rows))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def _get(results: dict, tool: str, n: int, limit: str, threads: int | None = None,
         section: str = "cli") -> dict | None:
    return _ok(results.get(_key(section, tool, n, limit, threads)))


def _ok(r: dict | None) -> dict | None:
    return r if r and r["ok"] else None


def _shown(r: dict | None) -> str:
    """A job's seconds, "failed", or "-" if not run."""
    return "-" if r is None else _cell(r["seconds"]) if r["ok"] else "failed"


def _secs(r: dict | None) -> float | None:
    return r["seconds"] if r else None


def print_cli(results: dict, parts: tuple[int, ...], limits: tuple[str, ...], rows: int) -> None:
    print(f"\ncommand line: {rows:,} rows Parquet -> n files; wall seconds (peak RSS MiB)")
    print(f"{'n':>6s} {'limit':>6s} {'shuffle-kit':>15s} {'polars':>15s} {'DuckDB':>15s} "
          f"{'sk/polars':>10s} {'sk/DuckDB':>10s} {'sk RSS vs limit+300MB':>22s}")
    for n in parts:
        for limit in limits:
            sk, pol, duck = (_get(results, t, n, limit) for t in CLI_TOOLS)
            cells = [f"{r['seconds']:.2f} ({r['peak_rss'] / 2**20:.0f})" if r else
                     "failed" if _key("cli", t, n, limit) in results else "-"
                     for t, r in zip(CLI_TOOLS, (sk, pol, duck))]
            ratios = [_cell(_div(_secs(sk), _secs(p)), "{:.2f}x") for p in (pol, duck)]
            rss = "-"
            if sk:
                budget = _nbytes(limit) + RSS_ALLOWANCE
                rss = f"{sk['peak_rss'] / 1e6:.0f}/{budget / 1e6:.0f} MB {'ok' if sk['peak_rss'] <= budget else 'OVER'}"
            print(f"{n:6d} {limit:>6s} " + " ".join(f"{c:>15s}" for c in cells) + " " +
                  " ".join(f"{r:>10s}" for r in ratios) + f" {rss:>22s}")
    print("targets: sk/polars <= 1.1x at 64 and 1024, every limit from 256MB; sk/polars and sk/DuckDB <= 1x at 4096")


def cli_rows(results: dict, parts: tuple[int, ...], limits: tuple[str, ...], rows: int) -> list[dict]:
    out = []
    for n in parts:
        for limit in limits:
            sk = _get(results, CLI_SK, n, limit)
            for peer in (CLI_POLARS, CLI_DUCK):
                if _key("cli", peer, n, limit) not in results:
                    continue
                p = _get(results, peer, n, limit)
                workload = f"partition CLI: {rows / 1e6:g}M rows -> {n} files, --memory-limit {limit}, wall (s)"
                out.append({"workload": workload,
                            "shuffle_kit": round(sk["seconds"], 2) if sk else float("nan"), "peer": peer,
                            "peer_value": round(p["seconds"], 2) if p else float("nan"),
                            "ratio": round(p["seconds"] / sk["seconds"], 2) if p and sk else float("nan"),
                            "unit": "s"})
    return out


def print_threads(results: dict, n: int, limit: str, sk_threads: bool) -> None:
    print(f"\nthreads: {n} partitions, limit {limit}; wall seconds, one thread and the default "
          f"({os.cpu_count()} cores)")
    print(f"{'':12s} {'1 thread':>9s} {'default':>9s} {'speed-up':>9s}")
    for tool in CLI_TOOLS:
        if tool == CLI_SK and not sk_threads:
            print("shuffle-kit: --threads not available")
            continue
        one, default = (results.get(_key("threads", tool, n, limit, th)) for th in (1, None))
        speedup = _div(_secs(_ok(one)), _secs(_ok(default)))
        print(f"{SHORT[tool]:12s} {_shown(one):>9s} {_shown(default):>9s} {_cell(speedup, '{:.2f}x'):>9s}")


# -- the chart -----------------------------------------------------------------------------------

def chart(shuffle_times: dict, cli: dict, sizes: dict, path: str) -> bool:
    """Four panels: shuffle() seconds vs partitions; CLI wall vs partitions at the largest
    limit; CLI wall vs memory limit and peak RSS vs memory limit at the smallest count."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not shuffle_times and not cli:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    _shuffle_panel(axes[0, 0], shuffle_times, sizes)
    _cli_parts_panel(axes[0, 1], cli, sizes)
    _cli_limit_panel(axes[1, 0], cli, sizes, "seconds")
    _cli_limit_panel(axes[1, 1], cli, sizes, "peak_rss")
    fig.suptitle("scaling: every tool in the same run, same data (lower is better)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return True


def _log2_x(ax, ticks) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ticks))
    ax.set_xticklabels([str(t) for t in ticks])


def _width(name: str) -> float:
    return 2.5 if name in (SK, CLI_SK) else 1.2


def _not_run(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"{what}: not run", ha="center", va="center")
    ax.set_axis_off()


def _shuffle_panel(ax, times: dict, sizes: dict) -> None:
    if not times:
        return _not_run(ax, "shuffle()")
    for tool, curve in times.items():
        xs = sorted(curve)
        ax.plot(xs, [curve[x] for x in xs], marker="o", label=tool, lw=_width(tool))
    _log2_x(ax, sizes["shuffle_parts"])
    ax.set_yscale("log")
    ax.set_xlabel("partitions")
    ax.set_ylabel("seconds (log)")
    ax.set_title(f"shuffle(), {sizes['shuffle_rows'] / 1e6:g}M rows, every partition read", fontsize=9)
    ax.legend(fontsize=8)


def _cli_parts_panel(ax, cli: dict, sizes: dict) -> None:
    if not any(k[0] == "cli" for k in cli):
        return _not_run(ax, "partition CLI")
    limit = sizes["limits"][-1]
    for tool in CLI_TOOLS:
        pts = [(n, _secs(_get(cli, tool, n, limit))) for n in sizes["cli_parts"]]
        pts = [(x, y) for x, y in pts if y is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=SHORT[tool], lw=_width(tool))
    _log2_x(ax, sizes["cli_parts"])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("partitions (files)")
    ax.set_ylabel("wall seconds (whole process)")
    ax.set_title(f"partition CLI, {sizes['cli_rows'] / 1e6:g}M rows, memory limit {limit}", fontsize=9)
    ax.legend(fontsize=8)


def _cli_limit_panel(ax, cli: dict, sizes: dict, field: str) -> None:
    if not any(k[0] == "cli" for k in cli):
        return _not_run(ax, "partition CLI")
    n, limits = sizes["cli_parts"][0], sizes["limits"]
    xs = list(range(len(limits)))
    scale = 1.0 if field == "seconds" else 1e6
    for tool in CLI_TOOLS:
        pts = [(x, (_get(cli, tool, n, lim) or {}).get(field)) for x, lim in zip(xs, limits)]
        pts = [(x, y / scale) for x, y in pts if y is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=SHORT[tool], lw=_width(tool))
    if field == "peak_rss":
        ax.plot(xs, [(_nbytes(lim) + RSS_ALLOWANCE) / 1e6 for lim in limits], color="grey", ls=":",
                label="limit + 300 MB")
    ax.set_xticks(xs)
    ax.set_xticklabels(limits)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("memory limit (polars has none)")
    ax.set_ylabel("wall seconds" if field == "seconds" else "peak RSS, MB (process tree)")
    what = "wall" if field == "seconds" else "peak RSS"
    ax.set_title(f"partition CLI, {sizes['cli_rows'] / 1e6:g}M rows, {n} files: {what} vs memory limit", fontsize=9)
    ax.legend(fontsize=8)


# -- entry points --------------------------------------------------------------------------------

SECTIONS = ("shuffle", "cli", "threads")


def bench(sizes: dict, sections: set[str], data: str | None = None,
          chart_path: str | None = os.path.join(HERE, "scaling.png")) -> list[dict]:
    """Run the chosen sections, print their tables, draw the chart; rows for the report."""
    rows: list[dict] = []
    shuffle_times: dict = {}
    cli: dict = {}
    print(f"best of {sizes['repeats']}, tools interleaved; {os.cpu_count()} cores", flush=True)
    if "shuffle" in sections:
        print(f"\n-- shuffle(): {sizes['shuffle_rows']:,} rows", flush=True)
        shuffle_times, notes = shuffle_curves(sizes["shuffle_rows"], sizes["shuffle_parts"], sizes["repeats"])
        print_shuffle(shuffle_times, sizes["shuffle_parts"], sizes["shuffle_rows"])
        for note in notes:
            print(note)
        rows += shuffle_rows(shuffle_times, sizes["shuffle_parts"], sizes["shuffle_rows"])
    if sections & {"cli", "threads"}:
        sk_threads = has_threads_option()
        print(f"\n-- command line: {sizes['cli_rows']:,} rows", flush=True)
        if "threads" in sections and not sk_threads:
            print("  shuffle-kit: --threads not available (not in `shuffle-kit partition --help`)")
        points = cli_jobs(sizes["cli_parts"], sizes["limits"], sections, sk_threads)
        cli = cli_curves(sizes["cli_rows"], points, sizes["repeats"], data)
        if "cli" in sections:
            print_cli(cli, sizes["cli_parts"], sizes["limits"], sizes["cli_rows"])
            rows += cli_rows(cli, sizes["cli_parts"], sizes["limits"], sizes["cli_rows"])
        if "threads" in sections:
            limit = "1GB" if "1GB" in sizes["limits"] else sizes["limits"][-1]
            print_threads(cli, sizes["cli_parts"][0], limit, sk_threads)
    if chart_path and chart(shuffle_times, cli, sizes, chart_path):
        print(f"\nchart: {chart_path}")
    return rows


def run(quick: bool) -> list[dict]:
    """Rows for ``python -m benchmarks``: ratio = peer / shuffle_kit (above 1: shuffle_kit
    is faster)."""
    return bench(_sizes(quick), set(SECTIONS))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer points, one repeat (about a minute)")
    ap.add_argument("--only", default="", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--repeats", type=int, help="best of this many interleaved rounds (default 3; --quick 1)")
    ap.add_argument("--shuffle-rows", type=int)
    ap.add_argument("--cli-rows", type=int)
    ap.add_argument("--data", help="command-line input directory (generated if missing)")
    ap.add_argument("--chart", default=os.path.join(HERE, "scaling.png"), help="where to draw the curves ('' : none)")
    args = ap.parse_args(argv)
    sections = set(filter(None, args.only.split(","))) or set(SECTIONS)
    if sections - set(SECTIONS):
        ap.error(f"--only: unknown section(s) {', '.join(sorted(sections - set(SECTIONS)))}")
    sizes = _sizes(args.quick)
    for name in ("repeats", "shuffle_rows", "cli_rows"):
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    bench(sizes, sections, args.data, args.chart or None)


if __name__ == "__main__":
    main()
