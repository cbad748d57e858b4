"""shuffle_kit.dask on dask.distributed: LocalCluster(processes=True, n_workers=2)."""

from __future__ import annotations

import functools
import glob
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import shuffle_kit.dask as skd  # noqa: E402
from tests.helpers.dask_cluster import shuffle_servers, two_workers  # noqa: E402
from tests.helpers.dask_faults import arm, despite_a_killed_worker, disarm, fail, fail_once, sleep  # noqa: E402
from tests.helpers.dask_frames import check_shuffled, make_frame  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # a directory of its own: the checks below would see other clusters' live directories
    with two_workers(str(tmp_path_factory.mktemp("workers"))) as (cluster, client):
        yield client
        directories = [n.local_directory for n in cluster.workers.values()]
    # the cluster is closed: no server left in this process (the nannies' host), no directory
    assert not [t for t in threading.enumerate() if t.name.startswith("shuffle_kit server")]
    assert not [d for base in directories for d in glob.glob(os.path.join(base, "shuffle_kit-*"))]


@pytest.fixture
def ddf():
    return dd.from_pandas(make_frame(20_000), npartitions=6)


def runs(client) -> dict:
    def live(dask_scheduler):
        plugin = dask_scheduler.plugins.get("shuffle_kit")
        return {} if plugin is None else dict(plugin.runs)

    return client.run_on_scheduler(live)


def assert_cleaned_up(client, timeout: float = 10.0, failed: bool = False) -> None:
    """No run left on the scheduler or the hosts; the servers kept for the next run hold
    nothing (after a ``failed`` run: until the next run takes them, for tasks that were
    running when it failed may append to them), and theirs are the only spill directories."""
    def state() -> tuple:
        live, idle = shuffle_servers(client)
        servers = [t for t in threading.enumerate() if t.name.startswith("shuffle_kit server")]
        directories = {
            d for n in client.cluster.workers.values()
            for d in glob.glob(os.path.join(n.local_directory, "shuffle_kit-server-*")) if os.path.isdir(d)
        }
        return runs(client), live, idle, servers, directories

    # a host closes the servers it does not keep, and removes their directories, after the
    # run is gone from the scheduler and the hosts: wait for all of it, then say what is left
    deadline = time.monotonic() + timeout
    while True:
        left, live, idle, servers, directories = state()
        if (not left and not live and len(servers) == len(idle) and directories == {path for _, _, path in idle}) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == {}
    assert live == [] and (failed or [held for _, held, _ in idle] == [0] * len(idle))
    assert len(servers) == len(idle)  # (the nannies live in this process)
    assert directories == {path for _, _, path in idle}


def gather_partitions(client, collection) -> list[pd.DataFrame]:
    return client.gather(client.compute(collection.to_delayed()))


def test_shuffle_on_cluster(client, ddf):
    frame = ddf.compute(scheduler="sync")
    out = skd.shuffle(ddf, ["k"], 8)
    check_shuffled(gather_partitions(client, out), frame, ["k"], ddf._meta)
    # computing twice: same rows, in the same order
    first = out.compute()
    second = out.compute()
    pd.testing.assert_frame_equal(first, second)
    assert_cleaned_up(client)


def test_dask_partitioner_on_cluster(client, ddf):
    mine = gather_partitions(client, skd.shuffle(ddf, "n", partitioner="dask"))
    theirs = gather_partitions(client, ddf.shuffle("n", shuffle_method="p2p"))
    for a, b in zip(mine, theirs):
        pd.testing.assert_frame_equal(a.sort_values("id"), b.sort_values("id"))
    assert_cleaned_up(client)


def test_failed_map_retried_without_duplicates(client, ddf, tmp_path):
    marker = str(tmp_path / "failed-once")
    client.run(arm, functools.partial(fail_once, marker, 3))
    try:
        result = client.compute(skd.shuffle(ddf, "k", 5), retries=2).result()
    finally:
        client.run(disarm)
    assert os.path.exists(marker)  # it did fail once, after appending its pieces
    assert len(result) == len(ddf) and result["id"].is_unique
    assert_cleaned_up(client)


def test_failure_cleans_up(client, ddf):
    client.run(arm, fail)
    try:
        with pytest.raises(RuntimeError, match="injected permanent failure"):
            skd.shuffle(ddf, "k", 5).compute()
    finally:
        client.run(disarm)
    assert_cleaned_up(client, failed=True)
    frame = ddf.compute(scheduler="sync")
    got = skd.shuffle(ddf, "k", 5).compute()  # on the same servers, emptied
    pd.testing.assert_frame_equal(got.sort_values("id"), frame.sort_values("id"))
    assert_cleaned_up(client)


@pytest.mark.slow
def test_worker_killed_mid_shuffle(client, ddf):
    """The servers live in the nannies: a killed worker process costs re-runs, not data."""

    client.run(arm, functools.partial(sleep, 0.4))
    frame = ddf.compute(scheduler="sync")
    result = despite_a_killed_worker(client, skd.shuffle(ddf, "k", 6))
    if result is not None:
        pd.testing.assert_frame_equal(result.sort_values("id"), frame.sort_values("id"))
    assert_cleaned_up(client, failed=True)


def test_sort_values_and_set_index_on_cluster(client, ddf):
    frame = ddf.compute(scheduler="sync")
    got = pd.concat(gather_partitions(client, skd.sort_values(ddf, ["n", "k"], npartitions=5)))
    pd.testing.assert_frame_equal(got, frame.sort_values(["n", "k"], kind="stable"))
    out = skd.set_index(ddf, "t", 4)
    assert out.known_divisions and out.npartitions == 4
    parts = gather_partitions(client, out)
    for i, p in enumerate(parts):
        assert out.divisions[i] <= p.index.min() and p.index.max() < out.divisions[i + 1] or i == 3
    pd.testing.assert_frame_equal(pd.concat(parts), frame.sort_values("t", kind="stable").set_index("t"))
    assert_cleaned_up(client)


def test_range_shuffle_on_cluster(client, ddf):
    frame = ddf.compute(scheduler="sync")
    out = skd.shuffle(ddf, ["n", "k"], 5, partitioner="range", ascending=[False, True], na_position="first")
    assert not out.known_divisions
    parts = gather_partitions(client, out)
    how = {"ascending": [False, True], "na_position": "first", "kind": "stable"}
    got = pd.concat([p.sort_values(["n", "k"], **how) for p in parts])
    pd.testing.assert_frame_equal(got, frame.sort_values(["n", "k"], **how))
    assert all(p["id"].is_monotonic_increasing for p in parts)  # input order within a partition
    assert_cleaned_up(client)


@pytest.mark.slow
def test_worker_killed_mid_set_index(client, ddf):
    """As the hash shuffle: a killed worker process costs re-runs, not data."""
    frame = ddf.compute(scheduler="sync")
    out = skd.set_index(ddf, "x", 6)  # the sample is computed here, before any fault
    client.run(arm, functools.partial(sleep, 0.4))
    result = despite_a_killed_worker(client, out)
    if result is not None:
        pd.testing.assert_frame_equal(result, frame.sort_values("x", kind="stable").set_index("x"))
    assert_cleaned_up(client, failed=True)


def test_the_next_run_takes_the_servers_the_last_one_left_empty(client, ddf):
    frame = ddf.compute(scheduler="sync")
    skd.shuffle(ddf, "k", 5).compute()
    assert_cleaned_up(client)
    _, before = shuffle_servers(client)
    assert len(before) == 2  # one per host, kept for the next run
    got = skd.sort_values(ddf, "n", npartitions=4).compute()
    pd.testing.assert_frame_equal(got, frame.sort_values("n", kind="stable"))  # nothing of the last run
    assert_cleaned_up(client)
    _, after = shuffle_servers(client)
    assert sorted(address for address, _, _ in after) == sorted(address for address, _, _ in before)


def test_runs_at_once_have_servers_of_their_own_and_one_per_host_is_kept(client, ddf):
    frame = ddf.compute(scheduler="sync")
    client.run(arm, functools.partial(sleep, 0.2))  # both runs' maps overlap
    try:
        a, b = client.compute([skd.shuffle(ddf, "k", 5), skd.sort_values(ddf, "x", npartitions=3)], sync=True)
    finally:
        client.run(disarm)
    pd.testing.assert_frame_equal(a.sort_values("id"), frame.sort_values("id"))
    pd.testing.assert_frame_equal(b, frame.sort_values("x", kind="stable"))
    assert_cleaned_up(client)  # (the other server of each host was closed)
    assert len(shuffle_servers(client)[1]) == 2


def test_a_kept_server_taken_again_sweeps_what_a_killed_host_left(client, ddf):
    skd.shuffle(ddf, "k", 3).compute()
    assert_cleaned_up(client)
    assert len(shuffle_servers(client)[1]) == 2  # the next run takes these, starts none
    directory = next(iter(client.cluster.workers.values())).local_directory
    # a server's spill directory whose process was killed -9 (its lock goes with it)
    code = (
        "import os, sys; from shuffle_kit import lifecycle; from shuffle_kit.dask._hosts import SPILL_PREFIX; "
        "print(lifecycle.make(SPILL_PREFIX, sys.argv[1]), flush=True); os.kill(os.getpid(), 9)"
    )
    left = subprocess.run([sys.executable, "-c", code, directory], capture_output=True, text=True).stdout.strip()
    assert os.path.isdir(left)
    skd.shuffle(ddf, "k", 3).compute()
    assert not os.path.exists(left)
    assert_cleaned_up(client)


def test_kept_servers_go_with_the_cluster(tmp_path_factory):
    with two_workers(str(tmp_path_factory.mktemp("workers"))) as (_, other):
        skd.shuffle(dd.from_pandas(make_frame(2_000), npartitions=3), "k", 3).compute()
        deadline, idle = time.monotonic() + 10, []
        while len(idle) < 2 and time.monotonic() < deadline:  # released once the run is forgotten
            time.sleep(0.05)
            _, idle = shuffle_servers(other)
        assert len(idle) == 2
    names = {t.name for t in threading.enumerate()}
    assert not [address for address, _, _ in idle if f"shuffle_kit server {address}" in names]
    assert not [path for _, _, path in idle if os.path.exists(path)]


def test_groupby_apply_on_cluster(client, ddf):
    meta = {"rows": "int64", "x": "float64"}

    def summary(g):
        return pd.Series({"rows": len(g), "x": g["x"].sum()}).astype(object)

    mine = skd.groupby_apply(ddf, "k", lambda g: pd.DataFrame({"rows": [len(g)], "x": [g["x"].sum()]}), meta=meta,
                             dropna=True)  # as dask's default
    theirs = ddf.groupby("k").apply(lambda g: pd.DataFrame({"rows": [len(g)], "x": [g["x"].sum()]}), meta=meta)
    a, b = client.compute([mine, theirs], sync=True)
    pd.testing.assert_frame_equal(a.sort_index(), b.sort_index(), check_index_type=False)
    assert_cleaned_up(client)


def _servers(client) -> list[tuple[float, str]]:
    """(memory it may hold, spill directory) of every shuffle_kit server on the hosts."""

    def probe(dask_worker):
        host = dask_worker.plugins.get("shuffle_kit")
        return [(buffer.available_memory, disk.path) for _, buffer, disk in getattr(host, "servers", {}).values()]

    found = []
    for nanny in (True, False):
        for servers in client.run(probe, nanny=nanny).values():
            found += servers
    return found


@pytest.mark.parametrize("configured", [False, True])
def test_servers_hold_their_share_of_the_worker_memory(tmp_path, tmp_path_factory, configured):
    settings = {"shuffle_kit.dask.server-memory": "50MB", "shuffle_kit.dask.server-directory": str(tmp_path)}
    with dask.config.set(settings if configured else {}), distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, memory_limit="400MB", dashboard_address=None,
        host="127.0.0.1", local_directory=str(tmp_path_factory.mktemp("workers")),
    ) as cluster, distributed.Client(cluster) as client:
        client.run(arm, functools.partial(sleep, 0.3))
        future = client.compute(skd.shuffle(dd.from_pandas(make_frame(5_000), npartitions=6), "k", 4))
        deadline, seen = time.monotonic() + 30, []
        while not seen and time.monotonic() < deadline:
            seen = _servers(client)
            time.sleep(0.05)
        assert len(future.result(timeout=60)) == 5_000
        # a quarter of the 400MB each worker may use, or what the config says
        assert seen and {memory for memory, _ in seen} == {50e6 if configured else 100e6}
        if configured:
            assert all(os.path.dirname(path) == str(tmp_path) for _, path in seen)
        del future
        deadline = time.monotonic() + 10
        while _servers(client) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _servers(client) == []
    if configured:
        assert os.listdir(tmp_path) == []  # the spill directories (and their locks) are gone
