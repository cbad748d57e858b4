"""shuffle_kit.dask when a worker's host dies: a scheduler in this process, and real
``dask worker`` processes (a nanny and its worker each), each in a process group of its
own so that the test can kill a whole host: nanny, worker and the store server the
nanny holds."""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import shuffle_kit.dask as skd  # noqa: E402
from tests.helpers.dask_faults import arm, disarm, sleep, touch_and_sleep  # noqa: E402
from tests.helpers.dask_frames import check_shuffled, make_frame  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout


def start_worker(address: str, name: str, directory: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--name", name, "--nthreads", "1",
         "--no-dashboard", "--local-directory", directory, "--host", "127.0.0.1"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def kill_host(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def hosts(tmp_path):
    """A client, and three workers by name with the process that is their host."""
    with distributed.LocalCluster(
        n_workers=0, host="127.0.0.1", scheduler_port=0, dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        procs = {f"w{i}": start_worker(cluster.scheduler_address, f"w{i}", str(tmp_path / f"w{i}")) for i in range(3)}
        try:
            client.wait_for_workers(3, timeout=60)
            yield client, procs
        finally:
            for proc in procs.values():
                kill_host(proc)
                proc.wait()
        start = time.monotonic()
    # the scheduler waits for a dead host's answer only briefly (distributed: 30 s)
    assert time.monotonic() - start < 20


def address_of(client, name: str) -> str:
    return next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == name)


def frames() -> tuple:
    ddf = dd.from_pandas(make_frame(6_000), npartitions=6)
    return ddf, ddf.compute(scheduler="sync")


def shuffle_on(client, ddf, want, workers=None) -> float:
    """Seconds to shuffle ``ddf`` (on ``workers`` only, if given), checked against ``want``."""
    start = time.monotonic()
    parts = client.gather(client.compute(skd.shuffle(ddf, "k", 6).to_delayed(), workers=workers))
    elapsed = time.monotonic() - start
    check_shuffled(parts, want, ["k"], ddf._meta)
    return elapsed


def unreachable(client) -> set:
    def marks(dask_scheduler):
        return set(dask_scheduler.plugins["shuffle_kit"].unreachable)

    return client.run_on_scheduler(marks)


@pytest.mark.slow
def test_a_host_killed_mid_shuffle_fails_it_in_seconds_and_spares_the_next(hosts, tmp_path):
    client, procs = hosts
    ddf, want = frames()
    shuffle_on(client, ddf, want)
    marker = str(tmp_path / "appended")

    client.run(arm, functools.partial(touch_and_sleep, marker, 0.5))
    future = client.compute(skd.shuffle(ddf, "k", 6))
    deadline = time.monotonic() + 30
    while not os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.path.exists(marker)  # pieces are on every server, the victim's among them
    kill_host(procs["w1"])  # nanny, worker and the server the nanny holds
    start = time.monotonic()
    with pytest.raises(skd.ShuffleDataLost, match="unreachable|lost"):
        future.result(timeout=120)
    assert time.monotonic() - start < 20  # was 60 s: the clients' timeout
    del future
    client.run(disarm)
    assert shuffle_on(client, ddf, want) < 20  # on the two hosts left


@pytest.mark.slow
def test_a_host_killed_mid_set_index_fails_it_in_seconds_and_spares_the_next(hosts, tmp_path):
    client, procs = hosts
    ddf, want = frames()
    sorted_want = want.sort_values("x", kind="stable").set_index("x")
    out = skd.set_index(ddf, "x", 6)  # its sample is computed here, before the fault
    marker = str(tmp_path / "appended")
    client.run(arm, functools.partial(touch_and_sleep, marker, 0.5))
    future = client.compute(out)
    deadline = time.monotonic() + 30
    while not os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.path.exists(marker)
    kill_host(procs["w1"])  # nanny, worker and the server the nanny holds
    start = time.monotonic()
    with pytest.raises(skd.ShuffleDataLost, match="unreachable|lost"):
        future.result(timeout=120)
    assert time.monotonic() - start < 20
    del future
    client.run(disarm)
    again = skd.set_index(ddf, "x", 6)  # on the two hosts left
    pd.testing.assert_frame_equal(client.compute(again).result(timeout=60), sorted_want)


def test_a_silent_host_costs_one_run_a_few_seconds_not_every_run_a_timeout(hosts, caplog):
    """A stopped host keeps its connections open and answers nothing, as one whose
    machine died: the scheduler keeps its worker for minutes (worker-ttl)."""
    client, procs = hosts
    caplog.set_level(logging.INFO, logger="shuffle_kit.dask")
    ddf, want = frames()
    shuffle_on(client, ddf, want)
    silent = address_of(client, "w1")
    kill_host(procs["w1"], signal.SIGSTOP)
    others = [address_of(client, "w0"), address_of(client, "w2")]
    # tasks go to the others only (dask would wait for the silent one), servers too
    first = shuffle_on(client, ddf, want, workers=others)
    assert first < 20  # was distributed's connect timeout (30 s), then a RuntimeError
    assert unreachable(client) == {silent}
    second = shuffle_on(client, ddf, want, workers=others)
    assert second < first  # not asked again: it has not heartbeated since
    # it comes back: the server it started too late is stopped, and it takes part again
    kill_host(procs["w1"], signal.SIGCONT)
    deadline = time.monotonic() + 20
    while "started too late" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    while servers_on(client, silent) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "started too late" in caplog.text and servers_on(client, silent) == []
    client.run(arm, functools.partial(sleep, 0.3))
    future = client.compute(skd.shuffle(ddf, "k", 6))
    while not servers_on(client, silent) and not future.done():
        time.sleep(0.05)
    assert servers_on(client, silent)
    pd.testing.assert_frame_equal(future.result().sort_values("id"), want.sort_values("id"))


def servers_on(client, worker: str) -> list[str]:
    """The run ids of the shuffle_kit servers the nanny of ``worker`` holds."""

    def probe(dask_worker):
        host = dask_worker.plugins.get("shuffle_kit")
        return sorted(getattr(host, "servers", {}))

    return next(iter(client.run(probe, nanny=True, workers=[worker]).values()))
