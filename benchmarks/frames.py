"""Frame codecs: shuffle_kit's PandasBlocks and ArrowIPC beside partd 1.4.2's PandasBlocks.

    python -m benchmarks.frames [--rows 5000000] [--repeats 3]

Workload (issue 3): a 5,000,000-row frame (int64 key with 100k distinct values, float64,
int64, the default ``str`` dtype with ~9 characters, a 20-category categorical), cut into
8 chunks; each chunk is split by ``key % 64`` into 64 pieces appended in one call; then
one ``get`` of every key. The pieces are made once and shared by every store. MB/s is
of the frame's in-memory size (``memory_usage(deep=True)``), append + get, best of
``--repeats`` runs (interleaved); the ratio is to partd's PandasBlocks(File) in the same
run. The ``(Dict)`` rows run both codecs over in-memory stores: the codec layer alone; the
buffered rows hold appends in memory (up to 1 GB) in front of a File, as a shuffle would.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable

import lz4.block
import numpy as np
import pandas as pd
import partd

import shuffle_kit as sk

from .common import make_frame

N_KEYS, N_APPENDS = 64, 8


def make_appends(df: pd.DataFrame) -> list[dict[int, pd.DataFrame]]:
    appends = []
    for chunk in np.array_split(np.arange(len(df)), N_APPENDS):
        part = df.iloc[chunk[0] : chunk[-1] + 1]
        order = np.argsort(part["key"].to_numpy() % N_KEYS, kind="stable")
        ids = part["key"].to_numpy()[order] % N_KEYS
        bounds = np.searchsorted(ids, np.arange(N_KEYS + 1))
        taken = part.take(order)
        appends.append({k: taken.iloc[bounds[k] : bounds[k + 1]] for k in range(N_KEYS)})
    return appends


def time_stack(make: Callable[[str], object], appends: list[dict], root: str) -> float:
    path = tempfile.mkdtemp(dir=root)
    store = make(os.path.join(path, "s"))
    start = time.perf_counter()
    for data in appends:
        store.append(data)
    out = store.get(list(range(N_KEYS)))
    elapsed = time.perf_counter() - start
    assert sum(len(f) for f in out) == sum(len(f) for a in appends for f in a.values())
    del out
    store.drop()
    shutil.rmtree(path, ignore_errors=True)
    return elapsed


def _partd_lz4(path: str) -> object:
    # partd has no LZ4 module; its documented way to add a compressor is Encode
    inner = partd.Encode(lz4.block.compress, lz4.block.decompress, b"".join, partd.File(path))
    return partd.PandasBlocks(inner)


CONTENDERS: dict[str, Callable[[str], object]] = {
    "partd PandasBlocks(File)": lambda p: partd.PandasBlocks(partd.File(p)),
    "partd PandasBlocks(LZ4(File))": _partd_lz4,
    "shuffle_kit PandasBlocks(File)": lambda p: sk.PandasBlocks(sk.File(p)),
    "shuffle_kit PandasBlocks(LZ4(File))": lambda p: sk.PandasBlocks(sk.LZ4(sk.File(p))),
    "shuffle_kit ArrowIPC(File)": lambda p: sk.ArrowIPC(sk.File(p)),
    "shuffle_kit ArrowIPC(LZ4(File))": lambda p: sk.ArrowIPC(sk.LZ4(sk.File(p))),
    # buffered stacks: appends held in memory (1 GB), spilling to File beyond it
    "partd PandasBlocks(Buffer(Dict, File))": lambda p: partd.PandasBlocks(partd.Buffer(partd.Dict(), partd.File(p))),
    "shuffle_kit TableBuffer(File)": lambda p: sk.TableBuffer(sk.File(p)),
    # the codec layer alone: both over their in-memory Dict store
    "partd PandasBlocks(Dict)": lambda p: partd.PandasBlocks(partd.Dict()),
    "shuffle_kit PandasBlocks(Dict)": lambda p: sk.PandasBlocks(sk.Dict()),
    "shuffle_kit ArrowIPC(Dict)": lambda p: sk.ArrowIPC(sk.Dict()),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="run contenders whose name contains this")
    args = parser.parse_args(argv)
    df = make_frame(args.rows)
    mb = df.memory_usage(deep=True).sum() / 1e6
    appends = make_appends(df)
    root = tempfile.mkdtemp(prefix="sk-bench-frames-")
    names = [n for n in CONTENDERS if args.only in n or n == "partd PandasBlocks(File)"]
    try:
        times = {n: [] for n in names}
        for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits all alike
            for name in names:
                times[name].append(time_stack(CONTENDERS[name], appends, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = min(times["partd PandasBlocks(File)"])
    print(f"\n{args.rows:,} rows, {mb:.0f} MB in memory; {N_KEYS} keys x {N_APPENDS} appends, "
          f"then get of every key; best of {args.repeats}")
    print(f"{'':38}{'seconds':>9}{'MB/s':>8}{'vs partd':>10}")
    for name in names:
        t = min(times[name])
        print(f"{name:38}{t:9.2f}{mb / t:8.0f}{base / t:9.1f}x   runs: " + " ".join(f"{x:.2f}" for x in times[name]))


if __name__ == "__main__":
    main()
