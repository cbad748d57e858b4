"""Run every benchmark of the project and write ``benchmarks/RESULTS.md`` and a chart.

    python -m benchmarks [--quick] [--only NAME[,NAME]] [--skip NAME[,NAME]] [--args MODULE=ARGS]

Every module ``benchmarks/<name>.py`` (except ``common``) is a benchmark, run in its own
process so that one cannot disturb the next. The convention: a module exposes

    run(quick: bool) -> list[dict]   # rows: workload, shuffle_kit, peer, peer_value, ratio, unit

beside its ``main()``; ``ratio`` is how many times better shuffle_kit is than the peer
(above 1: shuffle_kit is faster, or smaller). A module without such a ``run`` is adapted:
its ``python -m benchmarks.<name>`` output is captured verbatim into the report (with
``--repeats 1`` and smaller sizes when ``--quick`` and its options allow).

Writes ``benchmarks/RESULTS.md`` (a table: workload, shuffle_kit, each peer, ratio; then
each module's output) and ``benchmarks/results.png`` (every ratio on one chart), which the
README shows. A module that draws its own chart as ``benchmarks/<name>.png`` (``scaling``:
its curves) has it shown in its section. Each module's last result is kept in
``benchmarks/results.json``, so ``--only NAME`` re-runs one module and rewrites the whole
report. Absolute times drift on shared machines: read the ratios, measured in the same run
on the same data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import pkgutil
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NOT_BENCHMARKS = {"common", "__main__", "__init__"}
MARK = "@@BENCHMARK-ROWS@@"
TIMEOUT = 3 * 3600

# what --quick passes to a module without run(quick), if its command line has the option
QUICK_OPTIONS = [("--repeats", ["--repeats", "1"]), ("--rows", ["--rows", "1000000"]),
                 ("--no-scaling", ["--no-scaling"]), ("--quick", ["--quick"])]


def discover() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules([HERE]) if m.name not in NOT_BENCHMARKS and not m.name.startswith("_")
    )


def has_run(module: str) -> bool:
    """Whether ``benchmarks.<module>`` follows the ``run(quick)`` convention (checked in a
    subprocess, so an import error or heavy import stays there)."""
    code = (
        "import inspect, importlib, sys\n"
        f"m = importlib.import_module('benchmarks.{module}')\n"
        "f = getattr(m, 'run', None)\n"
        "ok = callable(f) and list(inspect.signature(f).parameters) == ['quick']\n"
        "sys.exit(0 if ok else 3)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    return r.returncode == 0


def run_convention(module: str, quick: bool) -> tuple[list[dict], str, int]:
    code = (
        "import json, importlib\n"
        f"m = importlib.import_module('benchmarks.{module}')\n"
        f"rows = m.run({quick!r})\n"
        f"print({MARK!r} + json.dumps(rows, default=float))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    rows, text = [], []
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            rows = json.loads(line[len(MARK):])
        else:
            text.append(line)
    log = "\n".join(text).strip()
    if r.returncode:
        log += "\n" + r.stderr.strip()[-3000:]
    return rows, log, r.returncode


def run_adapted(module: str, quick: bool, given: Sequence[str] = ()) -> tuple[str, int, list[str]]:
    """A module without ``run(quick)``: its ``main()`` output, verbatim (run with ``given``
    arguments, which the report shows)."""
    args: list[str] = list(given)
    if quick:
        h = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", "--help"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        for option, extra in QUICK_OPTIONS:
            if option in h.stdout:
                args += extra
    r = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=TIMEOUT)
    log = r.stdout.strip()
    if r.returncode:
        log += "\n" + r.stderr.strip()[-3000:]
    return log, r.returncode, args


# -- the report ----------------------------------------------------------------------------------


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "failed"
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _ratio(v: object) -> str:
    if isinstance(v, (int, float)) and not math.isnan(v):
        return f"**{_fmt(float(v))}x**"
    return "-"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ["shuffle_kit", "pandas", "pyarrow", "numpy", "polars", "duckdb", "dask", "distributed", "partd"]:
        try:
            out.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def _machine() -> str:
    try:
        import psutil

        mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:  # pragma: no cover
        mem = ""
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def table(rows: list[dict]) -> str:
    """Markdown: one line per (workload, peer)."""
    lines = ["| workload | shuffle_kit | peer | peer's figure | ratio |", "|---|---:|---|---:|---:|"]
    last = None
    for r in rows:
        same = r["workload"] == last
        last = r["workload"]
        lines.append(
            f"| {'' if same else r['workload']} | {'' if same else _fmt(r['shuffle_kit'])} | {r['peer']} | "
            f"{_fmt(r['peer_value'])} | {_ratio(r['ratio'])} |"
        )
    return "\n".join(lines)


def chart(rows: list[dict], path: str) -> bool:
    """Every ratio as a horizontal bar (log scale; 1x = par with the peer)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [
        r for r in rows if isinstance(r.get("ratio"), (int, float)) and not math.isnan(r["ratio"]) and r["ratio"] > 0
    ]
    if not rows:
        return False
    labels = [f"{r['workload']}\nvs {r['peer']}" for r in rows]
    ratios = [r["ratio"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.2))
    # a physical limit (page cache, ...) is a reference, not a peer to beat: grey
    colors = ["tab:gray" if "limit" in r["peer"] else "tab:green" if r["ratio"] >= 1 else "tab:red" for r in rows]
    y = range(len(rows))[::-1]
    ax.barh(list(y), ratios, color=colors)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: ""))
    ax.axvline(1, color="black", lw=1)
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    for yi, x in zip(y, ratios):
        ax.text(x, yi, f" {x:.2g}x", va="center", fontsize=7)
    ax.set_xlabel("how many times better shuffle_kit is (time: peer / shuffle_kit; throughput: shuffle_kit / peer)")
    ax.set_title(
        "shuffle_kit vs peers, same run, same data (green: shuffle_kit ahead; grey: a physical limit)", fontsize=10
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def write_report(results: list[dict], quick: bool, out_md: str, out_png: str, seconds: float) -> None:
    rows = [r for res in results for r in res.get("rows", [])]
    first = {}
    for i, r in enumerate(rows):
        first.setdefault(r["workload"], i)
    rows.sort(key=lambda r: first[r["workload"]])  # each workload's peers together
    drew = chart(rows, out_png)
    md = [
        "# Benchmark results",
        "",
        f"Written by `python -m benchmarks{' --quick' if quick else ''}` on {dt.date.today().isoformat()} "
        f"(each module's section gives its own run). Machine: {_machine()}.  ",
        f"Versions: {_versions()}.",
        "",
        "Each benchmark runs shuffle_kit and its peers in the same process run, on the same data. "
        "**ratio** = how many times better shuffle_kit is (above 1: faster, higher throughput "
        "or less memory). Absolute numbers drift on shared machines; the ratios are what to read.",
        "",
    ]
    if drew:
        md += [f"![benchmark ratios]({os.path.basename(out_png)})", ""]
    md += ["## Summary table", "", table(rows) if rows else "_no module returned rows_", ""]
    for res in results:
        md += [f"## `benchmarks/{res['module']}.py`", ""]
        if res.get("doc"):
            md += [res["doc"], ""]
        status = "ok" if res["rc"] == 0 else f"**failed (exit {res['rc']})**"
        if res["convention"]:
            how = f"run(quick={res.get('quick', quick)})"
        else:
            how = f"python -m benchmarks.{res['module']} {' '.join(res.get('args', []))}".strip()
        md += [f"{how}: {status}, {res['seconds']:.0f} s, {res.get('date', '')}", ""]
        own_chart = os.path.join(HERE, f"{res['module']}.png")  # a module's own curves, if it draws any
        if os.path.exists(own_chart):
            chart_path = os.path.relpath(own_chart, os.path.dirname(os.path.abspath(out_md)))
            md += [f"![{res['module']} curves]({chart_path})", ""]
        if res.get("log"):
            md += ["```", res["log"].rstrip(), "```", ""]
    with open(out_md, "w") as f:
        f.write("\n".join(md))


def _doc(module: str) -> str:
    path = os.path.join(HERE, f"{module}.py")
    try:
        import ast

        with open(path) as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
    except (OSError, SyntaxError):
        return ""
    return doc.split("\n\n")[0].strip()


def _load(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes and one repeat (minutes, not an hour)")
    ap.add_argument("--only", default="", help="comma-separated module names to run")
    ap.add_argument("--skip", default="", help="comma-separated module names to skip")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--chart", default=os.path.join(HERE, "results.png"))
    ap.add_argument("--results", default=os.path.join(HERE, "results.json"),
                    help="every module's last result; --only updates just those modules' entries")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from --results, run nothing")
    ap.add_argument("--args", action="append", default=[], metavar="MODULE=ARGS",
                    help="command-line arguments for one module whose output is captured (shown in the "
                         "report), e.g. 'join=--rows 5000000'; repeat for more modules")
    args = ap.parse_args(argv)
    given: dict[str, list[str]] = {}
    for item in args.args:
        module, sep, rest = item.partition("=")
        if not sep:
            ap.error(f"--args {item!r}: give MODULE=ARGS")
        given[module.strip()] = shlex.split(rest)
    if args.report_only:
        stored = _load(args.results)
        write_report([stored[m] for m in discover() if m in stored], args.quick, args.out, args.chart, 0.0)
        print(f"wrote {os.path.relpath(args.out)} and {os.path.relpath(args.chart)}")
        return 0
    for module in given:
        if has_run(module):
            ap.error(f"--args {module}: it runs as run(quick), which takes no arguments; "
                     f"run python -m benchmarks.{module} with them instead")
    only = set(filter(None, args.only.split(",")))
    skip = set(filter(None, args.skip.split(",")))
    modules = [m for m in discover() if (not only or m in only) and m not in skip]
    print(f"benchmarks: {', '.join(modules)}", flush=True)
    start = time.perf_counter()
    stored = _load(args.results)
    results = []
    for module in modules:
        t0 = time.perf_counter()
        convention = has_run(module)
        print(f"== {module} ({'run(quick)' if convention else 'main(), output captured'})", flush=True)
        res: dict = {"module": module, "convention": convention, "doc": _doc(module)}
        try:
            if convention:
                res["rows"], res["log"], res["rc"] = run_convention(module, args.quick)
            else:
                res["log"], res["rc"], res["args"] = run_adapted(module, args.quick, given.get(module, ()))
        except subprocess.TimeoutExpired:
            res.update(rows=[], log=f"timed out after {TIMEOUT} s", rc=-1)
        res["seconds"] = time.perf_counter() - t0
        print(res.get("log", ""), flush=True)
        res["date"] = dt.date.today().isoformat()
        res["quick"] = args.quick
        results.append(res)
        stored[module] = res
        # rewrite after every module, so a long run leaves a useful report if stopped
        with open(args.results, "w") as f:
            json.dump(stored, f, indent=1, default=float)
        current = [stored[m] for m in discover() if m in stored]
        write_report(current, args.quick, args.out, args.chart, time.perf_counter() - start)
    print(f"\nwrote {os.path.relpath(args.out)} and {os.path.relpath(args.chart)}")
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
