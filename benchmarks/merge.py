"""Joins in memory (issue 24): ``shuffle_kit.merge`` beside pandas' ``merge`` and polars' join.

    python -m benchmarks.merge [--rows 5000000] [--dim-rows 1000000] [--repeats 3] [--keys int,str]

Many-to-one: a fact frame (the benchmarks' 5M-row frame: int64 key, float, int, a ``str``
column, a categorical) whose key takes ``--dim-rows`` values, joined with a dimension frame
of one row per key (key, float, ``str``), inner and left, every joined row read back as one
pandas DataFrame (``to_pandas()``); the key an int64, then (``--keys``) a ``str`` of 8
characters per value. The same join at a fifth of the rows gives a second point of the
curve. Peers, on the same frames in the same run:

- shuffle-kit with its defaults (two frames that fit one pair are joined as one pair,
  without a shuffle), and with ``npartitions=8`` (the path of inputs that do not fit:
  both sides shuffled, then joined pair by pair);
- pandas ``merge(fact, dim, on="key", how=...)``;
- polars ``from_pandas`` of both, ``join(..., how=..., coalesce=True)``, ``to_pandas()``.

Times are wall seconds of the best of ``--repeats`` interleaved rounds (each round starts
with another tool); ratios are the
peer's time over shuffle-kit's (above 1: shuffle-kit is faster).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from benchmarks.common import make_frame


def frames(rows: int, dim_rows: int, seed: int = 0, key: str = "int") -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    fact = make_frame(rows, seed)
    fact["key"] = rng.integers(0, dim_rows, rows)
    words = np.array([f"d{i:06d}" for i in range(1000)])
    dim = pd.DataFrame({
        "key": rng.permutation(dim_rows),
        "weight": rng.random(dim_rows),
        "label": pd.Series(words[rng.integers(0, len(words), dim_rows)], dtype="str"),
    })
    if key == "str":  # each int key as a word of its own
        names = pd.Series(np.char.add("k", np.char.zfill(np.arange(dim_rows).astype(str), 7)), dtype="str")
        fact["key"] = names.take(fact["key"].to_numpy()).reset_index(drop=True)
        dim["key"] = names.take(dim["key"].to_numpy()).reset_index(drop=True)
    return fact, dim


def tools(fact: pd.DataFrame, dim: pd.DataFrame, how: str) -> dict[str, Callable[[], object]]:
    import polars as pl

    import shuffle_kit as sk

    def ours(npartitions: int | None = None) -> pd.DataFrame:
        with sk.merge(fact, dim, on="key", how=how, npartitions=npartitions, progress=False) as joined:
            return joined.to_pandas()

    return {
        "shuffle-kit merge": ours,
        # the path of inputs larger than memory: both sides shuffled into 8 pairs
        "shuffle-kit merge, 8 pairs": lambda: ours(8),
        "pandas merge": lambda: pd.merge(fact, dim, on="key", how=how),
        "polars join (+ conversions)": lambda: pl.from_pandas(fact).join(
            pl.from_pandas(dim), on="key", how=how, coalesce=True).to_pandas(),
    }


def in_memory(points: list[tuple[int, int]], repeats: int,
              keys: tuple[str, ...] = ("int", "str")) -> dict[tuple[str, str, int, str], float]:
    import time

    times: dict[tuple[str, str, int, str], float] = {}
    for fn in tools(*frames(1000, 100), "inner").values():  # imports and first calls, untimed
        fn()
    for (rows, dim_rows), key in ((point, key) for key in keys for point in points):
        fact, dim = frames(rows, dim_rows, key=key)
        for how in ("inner", "left"):
            runs = tools(fact, dim, how)
            names = list(runs)
            for r in range(repeats):  # interleaved, each round in another order: drift hits every tool alike
                for name in names[r % len(names):] + names[:r % len(names)]:
                    fn = runs[name]
                    start = time.perf_counter()
                    fn()
                    t = time.perf_counter() - start
                    times[(name, how, rows, key)] = min(t, times.get((name, how, rows, key), float("inf")))
            for name in runs:
                print(f"  {rows / 1e6:4g}M x {dim_rows / 1e6:4g}M on {key:3s} {how:5s} {name:28s} "
                      f"{times[(name, how, rows, key)]:6.2f} s", flush=True)
    return times


def _report(times: dict[tuple[str, str, int, str], float], points: list[tuple[int, int]]) -> list[dict]:
    dims = dict(points)
    out = []
    for (name, how, rows, key), t in times.items():
        if name == "shuffle-kit merge":
            continue
        if name.startswith("shuffle-kit"):  # the shuffled path, beside the default
            name = f"{name} (vs default)"
        ours = times[("shuffle-kit merge", how, rows, key)]
        out.append({
            "workload": f"merge in memory, {how}: {rows / 1e6:g}M x {dims[rows] / 1e6:g}M rows on "
                        f"{'an' if key == 'int' else 'a'} {key} key, wall time (s)",
            "shuffle_kit": round(ours, 2), "peer": name, "peer_value": round(t, 2), "ratio": round(t / ours, 2),
            "unit": "s",
        })
    return out


def run(quick: bool) -> list[dict]:
    """Rows for ``python -m benchmarks``."""
    points = [(1_000_000, 200_000)] if quick else [(1_000_000, 200_000), (5_000_000, 1_000_000)]
    return _report(in_memory(points, 1 if quick else 3), points)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--dim-rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keys", default="int,str", help="key types to join on, one after the other")
    args = ap.parse_args(argv)
    points = [(args.rows // 5, args.dim_rows // 5), (args.rows, args.dim_rows)]
    print(f"load: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    rows = _report(in_memory(points, args.repeats, tuple(args.keys.split(","))), points)
    print(f"\n{'workload':84s} {'shuffle-kit':>11s} {'peer':>40s} {'peer':>7s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['workload']:84s} {r['shuffle_kit']:11} {r['peer']:>40s} {r['peer_value']:7} {r['ratio']:6}")


if __name__ == "__main__":
    main()
