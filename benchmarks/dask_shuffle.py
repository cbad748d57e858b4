"""shuffle_kit.dask.shuffle beside dask's own shuffles, on threads and on a LocalCluster.

    python -m benchmarks.dask_shuffle [--rows 5000000] [--repeats 3] [--skip-cluster]

Workload (issue 6): the 5,000,000-row frame of ``benchmarks.common`` as 8 dask
partitions, persisted, shuffled on ``key`` to 64 partitions; every output partition is
computed (rows counted on the workers, so no method pays for sending the result to the
client). Peers in the same run on the same persisted input: dask's ``shuffle_method``
"disk" and "tasks" on the threaded scheduler, "tasks" and "p2p" on
``LocalCluster(processes=True, n_workers=2)`` ("disk" is not available there).
Best of ``--repeats``; the machine is shared, so read the ratios, not the seconds.

Results (2 shared cores, load average 3.8-7 during the runs, best of 3; seconds):

    threaded:      shuffle_kit 0.51   disk 1.36 (2.68x)   tasks 0.85 (1.67x)
    LocalCluster:  shuffle_kit 2.19   tasks 4.22 (1.93x)  p2p 2.24 (1.02x)

Run to run, dask's times moved by up to 2x (tasks on the cluster: 2.07-4.22 s), ours by
~30%. The threaded target (2x the best dask method) is not met: 1.67-1.79x.
"""

from __future__ import annotations

import argparse
import time

import dask
import dask.dataframe as dd

from .common import make_frame

NPARTS_IN, NPARTS_OUT = 8, 64


def run(ddf, method: str, scheduler=None) -> float:
    import shuffle_kit.dask as skd

    if method == "shuffle_kit":
        out = skd.shuffle(ddf, "key", NPARTS_OUT)
    else:
        out = ddf.shuffle("key", npartitions=NPARTS_OUT, shuffle_method=method)
    start = time.perf_counter()
    rows = out.map_partitions(len).compute(**({"scheduler": scheduler} if scheduler else {}))
    elapsed = time.perf_counter() - start
    assert int(rows.sum()) == len(ddf), method
    return elapsed


def best(ddf, method: str, repeats: int, scheduler=None) -> float:
    return min(run(ddf, method, scheduler) for _ in range(repeats))


def report(title: str, times: dict[str, float]) -> None:
    ours = times["shuffle_kit"]
    print(f"\n{title}")
    print(f"  {'method':<14}{'seconds':>9}{'ratio':>9}")
    for method, t in times.items():
        ratio = "" if method == "shuffle_kit" else f"{t / ours:8.2f}x"
        print(f"  {method:<14}{t:9.2f}{ratio:>9}")
    peers = {m: t for m, t in times.items() if m != "shuffle_kit"}
    fastest = min(peers, key=peers.get)
    print(f"  shuffle_kit vs the best dask method ({fastest}): {peers[fastest] / ours:.2f}x faster")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--skip-threads", action="store_true")
    args = parser.parse_args(argv)

    frame = make_frame(args.rows)
    print(f"{args.rows:,} rows, {frame.memory_usage(deep=True).sum() / 1e6:.0f} MB, "
          f"{NPARTS_IN} -> {NPARTS_OUT} partitions, best of {args.repeats}")

    if not args.skip_threads:
        with dask.config.set(scheduler="threads"):
            ddf = dd.from_pandas(frame, npartitions=NPARTS_IN).persist()
            times = {m: best(ddf, m, args.repeats, "threads") for m in ("shuffle_kit", "disk", "tasks")}
        report("threaded scheduler (2 cores)", times)
        del ddf

    if args.skip_cluster:
        return
    from distributed import Client, LocalCluster, wait

    with LocalCluster(
        processes=True, n_workers=2, dashboard_address=None, host="127.0.0.1"
    ) as cluster, Client(cluster) as client:
        ddf = dd.from_pandas(frame, npartitions=NPARTS_IN).persist()
        client.wait_for_workers(2)
        wait(ddf)
        times = {m: best(ddf, m, args.repeats) for m in ("shuffle_kit", "tasks", "p2p")}
        report("LocalCluster(processes=True, n_workers=2)", times)


if __name__ == "__main__":
    main()
