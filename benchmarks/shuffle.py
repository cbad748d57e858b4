"""End-to-end shuffle (issue 5): shuffle_kit beside partd, dask, pandas and polars.

    python -m benchmarks.shuffle [--rows 5000000] [--repeats 3] [--big] [--no-scaling]

Workload: the 5,000,000-row frame of the codec issue (``benchmarks.common.make_frame``)
given as 8 chunks, shuffled on ``key`` into 64 partitions, every partition read back as
a DataFrame. Peers, same data, same process run:

- partd pipeline: per chunk, pandas ``hash_pandas_object(key) % 64`` and a groupby split,
  ``partd.PandasBlocks(partd.File)`` append; then ``get`` of each partition.
- dask: ``dd.from_pandas(df, 8).shuffle('key', npartitions=64, shuffle_method=...)``,
  "disk" (partd) and "tasks", threaded scheduler, every partition computed.
- pandas in memory: the same hash and a groupby split of the whole frame.
- polars in memory: ``partition_by`` on ``hash(key) % 64`` (frame converted beforehand).

MB/s is of the frame's in-memory size (``memory_usage(deep=True)``); best of --repeats.
The scaling table times shuffle_kit alone for 1M, 5M (and with --big 20M) rows into
64, 1024 and 4096 partitions.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile

import pandas as pd

import shuffle_kit as sk

from .common import best_of, chunks_of, frame_nbytes, make_frame

NPARTS, NCHUNKS = 64, 8


def run_shuffle_kit(chunks: list[pd.DataFrame], nparts: int = NPARTS) -> None:
    with sk.shuffle(chunks, "key", nparts, progress=False) as res:
        for part in res:
            assert part is not None


def run_partd(chunks: list[pd.DataFrame], root: str, nparts: int = NPARTS) -> None:
    import partd

    path = tempfile.mkdtemp(dir=root)
    p = partd.PandasBlocks(partd.File(path))
    try:
        for chunk in chunks:
            ids = pd.util.hash_pandas_object(chunk["key"], index=False).to_numpy() % nparts
            p.append(dict(iter(chunk.groupby(ids, sort=False))))
        for i in range(nparts):
            p.get(i)
    finally:
        p.drop()
        shutil.rmtree(path, ignore_errors=True)


def run_dask(df: pd.DataFrame, method: str) -> None:
    import dask
    import dask.dataframe as dd

    ddf = dd.from_pandas(df, npartitions=NCHUNKS).shuffle("key", npartitions=NPARTS, shuffle_method=method)
    with dask.config.set(scheduler="threads"):
        parts = dask.compute(*ddf.to_delayed())
    assert len(parts) == NPARTS


def run_pandas(df: pd.DataFrame, nparts: int = NPARTS) -> None:
    ids = pd.util.hash_pandas_object(df["key"], index=False).to_numpy() % nparts
    parts = dict(iter(df.groupby(ids, sort=False)))
    assert len(parts) <= nparts


def run_polars(pl_df: object, nparts: int = NPARTS) -> None:
    import polars as pl

    parts = pl_df.with_columns((pl.col("key").hash() % nparts).alias("_p")).partition_by("_p")  # type: ignore[attr-defined]
    assert len(parts) <= nparts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", action="store_true", help="add 20M rows to the scaling table")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--skip", default="", help="comma-separated peers to skip")
    args = ap.parse_args(argv)

    df = make_frame(args.rows)
    chunks = chunks_of(df, NCHUNKS)
    mb = frame_nbytes(df) / 1e6
    print(f"frame: {args.rows:,} rows, {mb:,.0f} MB in memory, {NCHUNKS} chunks -> {NPARTS} partitions; "
          f"best of {args.repeats}")
    root = tempfile.mkdtemp(prefix="bench-shuffle-")
    skip = set(filter(None, args.skip.split(",")))
    try:
        peers = {
            "shuffle_kit (default store)": lambda: run_shuffle_kit(chunks),
            "partd pipeline (PandasBlocks(File))": lambda: run_partd(chunks, root),
            "dask shuffle, disk": lambda: run_dask(df, "disk"),
            "dask shuffle, tasks": lambda: run_dask(df, "tasks"),
            "pandas hash + groupby split (in memory)": lambda: run_pandas(df),
        }
        try:
            import polars as pl

            pl_df = pl.from_pandas(df)
            peers["polars partition_by (in memory)"] = lambda: run_polars(pl_df)
        except ImportError:
            print("polars not installed: skipped")
        times = {}
        for name, fn in peers.items():
            if any(s in name for s in skip):
                continue
            times[name] = best_of(fn, args.repeats)
        ours = times["shuffle_kit (default store)"]
        print(f"\n{'':42s} {'seconds':>8s} {'MB/s':>8s} {'shuffle_kit is':>16s}")
        for name, t in times.items():
            ratio = "" if t is ours else f"{t / ours:.2f}x faster" if t >= ours else f"{ours / t:.2f}x slower"
            print(f"{name:42s} {t:8.2f} {mb / t:8.0f} {ratio:>16s}")
        dask_best = min((t for n, t in times.items() if n.startswith("dask")), default=None)
        if "partd pipeline (PandasBlocks(File))" in times:
            print(f"\nvs partd pipeline: {times['partd pipeline (PandasBlocks(File))'] / ours:.1f}x (target >= 4x)")
        if dask_best:
            print(f"vs dask's best method: {dask_best / ours:.1f}x (target >= 3x)")

        if not args.no_scaling:
            rows_list = [1_000_000, 5_000_000] + ([20_000_000] if args.big else [])
            parts_list = [64, 1024, 4096]
            print("\nscaling (shuffle_kit, default store, 8 chunks, every partition read): seconds (MB/s)")
            print(f"{'rows':>12s} " + " ".join(f"{p:>16d}" for p in parts_list))
            for rows in rows_list:
                big = df if rows == args.rows else make_frame(rows)
                big_chunks = chunks_of(big, NCHUNKS)
                big_mb = frame_nbytes(big) / 1e6
                cells = []
                for p in parts_list:
                    t = best_of(functools.partial(run_shuffle_kit, big_chunks, p), args.repeats)
                    cells.append(f"{t:7.2f} ({big_mb / t:5.0f})")
                print(f"{rows:12,d} " + " ".join(f"{c:>16s}" for c in cells))
                del big, big_chunks
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
