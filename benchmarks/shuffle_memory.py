"""``shuffle()`` of one DataFrame in memory (issue 25, item 3) beside polars and pandas.

    python -m benchmarks.shuffle_memory [--rows 5000000] [--repeats 3] [--parts 64,1024,4096,16384]
                                        [--strings 1000,10000,all]

Workload: the 5,000,000-row frame of ``benchmarks.common.make_frame`` (int64 key of 100k
values, float64, int64, a ``str`` column, a 20-category categorical), its string column
with 1,000, 10,000 or all-distinct values, given WHOLE as one pandas DataFrame (a frame
that fits the memory limit is shuffled in memory, no store), shuffled on ``key`` into n
partitions, every partition read back as a pandas DataFrame. Peers, same frame, same run:

- polars: ``pl.from_pandas(df)`` (timed: the input is a pandas frame), then
  ``partition_by`` on ``hash(key) % n``; its partitions stay polars frames (not converted
  back to pandas: that would cost polars more), and also without the conversion, the frame
  converted beforehand (the figure ``benchmarks.scaling`` and ``benchmarks.shuffle`` give);
- pandas: ``hash_pandas_object(key) % n`` and a groupby split of the whole frame.

Best of ``--repeats`` rounds, the tools interleaved (the first of a round rotates), after an
untimed warm-up of each. Printed: seconds, shuffle_kit / each peer, and shuffle_kit's time at
n / at the first n.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import pandas as pd

import shuffle_kit as sk

from .common import make_frame

SK, POLARS_CONV, POLARS, PANDAS = "shuffle_kit", "polars incl. from_pandas", "polars (converted before)", "pandas"


def run_shuffle_kit(df: pd.DataFrame, n: int) -> None:
    with sk.shuffle(df, "key", n, progress=False) as res:
        for part in res:
            assert isinstance(part, pd.DataFrame)


def peers(df: pd.DataFrame) -> dict[str, Callable[[int], None]]:
    import polars as pl

    from . import shuffle as sh

    pl_df = pl.from_pandas(df)
    return {
        SK: lambda n: run_shuffle_kit(df, n),
        POLARS_CONV: lambda n: sh.run_polars(pl.from_pandas(df), n),
        POLARS: lambda n: sh.run_polars(pl_df, n),
        PANDAS: lambda n: sh.run_pandas(df, n),
    }


def curves(df: pd.DataFrame, parts: list[int], repeats: int) -> dict[str, dict[int, float]]:
    tools = peers(df)
    for fn in tools.values():  # warm-up, untimed
        fn(parts[0])
    times: dict[str, dict[int, float]] = {name: {} for name in tools}
    for n in parts:
        for attempt in range(repeats):
            names = list(tools)
            k = attempt % len(names)
            for name in names[k:] + names[:k]:
                start = time.perf_counter()
                tools[name](n)
                t = time.perf_counter() - start
                times[name][n] = min(t, times[name].get(n, math.inf))
    return times


def report(times: dict[str, dict[int, float]], parts: list[int], label: str) -> list[dict]:
    others = [p for p in times if p != SK]
    print(f"\n{label}: seconds, and shuffle_kit's time / each peer's")
    print(f"{'n':>6s} {SK:>11s} " + " ".join(f"{p[:14]:>14s}" for p in others) + " "
          + " ".join(f"{'/' + p[:13]:>14s}" for p in others) + f" {'n/' + str(parts[0]):>7s}")
    rows = []
    ours = times[SK]
    for n in parts:
        line = f"{n:6d} {ours[n]:11.2f} " + " ".join(f"{times[p][n]:14.2f}" for p in others) + " "
        line += " ".join(f"{ours[n] / times[p][n]:13.2f}x" for p in others) + f" {ours[n] / ours[parts[0]]:6.2f}x"
        print(line)
        for p in others:
            rows.append({"workload": f"shuffle() of one DataFrame in memory, {label} -> {n} partitions (s)",
                         "shuffle_kit": round(ours[n], 2), "peer": p, "peer_value": round(times[p][n], 2),
                         "ratio": round(times[p][n] / ours[n], 2), "unit": "s"})
    return rows


def bench(rows: int, parts: list[int], strings: list[str], repeats: int) -> list[dict]:
    out = []
    for kind in strings:
        df = make_frame(rows, strings=None if kind == "all" else int(kind))
        label = f"{rows / 1e6:g}M rows, strings {'all distinct' if kind == 'all' else f'of {int(kind):,} values'}"
        out += report(curves(df, parts, repeats), parts, label)
        del df
    return out


def run(quick: bool) -> list[dict]:
    if quick:
        return bench(1_000_000, [64, 4096], ["1000"], 1)
    return bench(5_000_000, [64, 1024, 4096, 16384], ["1000", "10000", "all"], 3)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", default="64,1024,4096,16384")
    ap.add_argument("--strings", default="1000,10000,all")
    args = ap.parse_args(argv)
    bench(args.rows, [int(p) for p in args.parts.split(",")], args.strings.split(","), args.repeats)


if __name__ == "__main__":
    main()
