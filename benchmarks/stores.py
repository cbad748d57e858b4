"""Store throughput: shuffle_kit's File beside partd 1.4.2's File, same run, same bytes.

    python -m benchmarks.stores [--repeats 3]

Workloads (issue 2): 1000 keys x 1 KiB x 50 appends, then one get of all keys; and
64 keys x 1 MiB x 50 appends (3.4 GB; ``--quick`` makes it 8 appends). The physical
limit is the page cache: the same bytes written with one pwrite per append call and
read back with one pread.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import partial

import partd

import shuffle_kit as sk


def _values(n_keys: int, size: int) -> dict[int, bytes]:
    return {k: os.urandom(size) for k in range(n_keys)}


def run_store(make: Callable[[str], object], values: dict, n_appends: int, root: str) -> tuple[float, float]:
    path = tempfile.mkdtemp(dir=root)
    store = make(os.path.join(path, "s"))
    start = time.perf_counter()
    for _ in range(n_appends):
        store.append(values)
    mid = time.perf_counter()
    out = store.get(list(values))
    end = time.perf_counter()
    first = next(iter(values))
    assert out[0] == values[first] * n_appends, "wrong bytes read back"
    del out
    store.drop()
    shutil.rmtree(path, ignore_errors=True)
    return mid - start, end - mid


def run_page_cache(values: dict, n_appends: int, root: str) -> tuple[float, float]:
    """One pwrite per append call of all its bytes, one pread of everything."""
    path = os.path.join(tempfile.mkdtemp(dir=root), "raw")
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    chunk = b"".join(values.values())
    start = time.perf_counter()
    for i in range(n_appends):
        os.pwrite(fd, chunk, i * len(chunk))
    mid = time.perf_counter()
    total, got, step = n_appends * len(chunk), 0, 1 << 30  # pread returns at most ~2 GiB per call
    while got < total:
        data = os.pread(fd, min(step, total - got), got)
        got += len(data)
        if not data:
            break
    end = time.perf_counter()
    assert got == total
    os.close(fd)
    os.unlink(path)
    return mid - start, end - mid


def best(fn: Callable[[], tuple[float, float]], repeats: int) -> tuple[float, float, float]:
    runs = [fn() for _ in range(repeats)]
    w, r = min(x[0] for x in runs), min(x[1] for x in runs)
    return w, r, min(x[0] + x[1] for x in runs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="8 appends of the 1 MiB values, not 50")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="sk-bench-")
    big = 8 if args.quick else 50
    workloads = [
        ("1000 keys x 1 KiB x 50 appends", 1000, 1024, 50),
        (f"64 keys x 1 MiB x {big} appends", 64, 1 << 20, big),
    ]
    try:
        for title, n_keys, size, n_appends in workloads:
            values = _values(n_keys, size)
            mb = n_keys * size * n_appends / 1e6
            rows = {
                "partd 1.4.2 File": best(partial(run_store, partd.File, values, n_appends, root), args.repeats),
                "shuffle_kit File": best(partial(run_store, sk.File, values, n_appends, root), args.repeats),
                "page cache (limit)": best(partial(run_page_cache, values, n_appends, root), args.repeats),
            }
            base = rows["partd 1.4.2 File"][2]
            print(f"\n{title}: {mb:.0f} MB, best of {args.repeats}")
            print(f"{'':22}{'append MB/s':>12}{'get MB/s':>10}{'total MB/s':>12}{'vs partd':>10}")
            for name, (w, r, t) in rows.items():
                print(f"{name:22}{mb / w:12.0f}{mb / r:10.0f}{mb / t:12.0f}{base / t:9.1f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)



def run(quick: bool) -> list[dict]:
    """Rows for ``python -m benchmarks`` (append + get MB/s; ratio = shuffle_kit / peer)."""
    repeats = 1 if quick else 3
    big = 8 if quick else 50
    workloads = [
        ("1000 keys x 1 KiB x 50 appends", 1000, 1024, 50),
        (f"64 keys x 1 MiB x {big} appends", 64, 1 << 20, big),
    ]
    root = tempfile.mkdtemp(prefix="sk-bench-")
    out = []
    try:
        for title, n_keys, size, n_appends in workloads:
            values = _values(n_keys, size)
            mb = n_keys * size * n_appends / 1e6
            ours = mb / best(partial(run_store, sk.File, values, n_appends, root), repeats)[2]
            peers = {
                "partd 1.4.2 File": mb / best(partial(run_store, partd.File, values, n_appends, root), repeats)[2],
                "page cache (limit)": mb / best(partial(run_page_cache, values, n_appends, root), repeats)[2],
            }
            for peer, value in peers.items():
                out.append({"workload": f"store append+get, {title} (MB/s)", "shuffle_kit": round(ours),
                            "peer": peer, "peer_value": round(value), "ratio": round(ours / value, 2), "unit": "MB/s"})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
