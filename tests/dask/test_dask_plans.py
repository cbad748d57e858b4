"""The dask integration's spec and plans: frozen dataclasses that pickle (they travel in
the graph and between processes), one way to open each kind's store, and one place that
turns an unreachable store into ShuffleDataLost."""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import pytest

pytest.importorskip("dask")

import shuffle_kit as sk  # noqa: E402
from shuffle_kit.dask._assign import HashIds  # noqa: E402
from shuffle_kit.dask._hosts import ServerHost, ServerKeys, ServerOptions  # noqa: E402
from shuffle_kit.dask._plans import (  # noqa: E402
    ClientKeys,
    FilePlan,
    ServersPlan,
    ShuffleSpec,
    StorePlan,
    store_errors,
)
from shuffle_kit.stores.remote.auth import generate_keys  # noqa: E402


def servers_plan(
    keys: ClientKeys | None = None, addresses: tuple[str, ...] = ("tcp://127.0.0.1:1",),
    local: tuple[str | None, ...] = (),
) -> ServersPlan:
    workers = tuple(f"tcp://127.0.0.1:{100 + i}" for i in range(len(addresses)))
    return ServersPlan("run", "run-1", 8, addresses, workers, tuple((w, None) for w in workers), keys, local)


def test_specs_and_plans_are_frozen_dataclasses_that_pickle(tmp_path):
    store = sk.ArrowIPC(sk.File(tmp_path / "s"))
    objects = [
        ShuffleSpec("abc", ("k", "j"), 4, HashIds(), None, str(tmp_path / "x"), 123),
        FilePlan(str(tmp_path / "x"), 4, pid=123),
        servers_plan(ClientKeys(b"public", b"secret")),
        ServerOptions("run-1", ServerKeys(b"secret", b"public"), 10**6, None),
    ]
    for obj in objects:
        assert dataclasses.is_dataclass(obj) and obj.__dataclass_params__.frozen  # type: ignore[union-attr]
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.n = 1  # type: ignore[misc,union-attr]
        assert pickle.loads(pickle.dumps(obj)) == obj
    plan = pickle.loads(pickle.dumps(StorePlan(store, 4)))  # the user's store goes by path
    assert isinstance(plan.store, sk.ArrowIPC) and plan.store.store.path == store.store.path and plan.n == 4
    # secrets stay out of logs and error messages
    assert "secret" not in repr(objects[2]) and "secret" not in repr(objects[3])


def test_the_graph_carries_the_spec_and_pickles(tmp_path):
    import cloudpickle
    import dask
    import dask.dataframe as dd

    import shuffle_kit.dask as skd

    ddf = dd.from_pandas(pd.DataFrame({"k": list("abcabc"), "x": range(6)}), npartitions=2)
    with dask.config.set(temporary_directory=str(tmp_path)):
        out = skd.shuffle(ddf, "k", 3)
    graph = dict(out.__dask_graph__())
    cloudpickle.loads(cloudpickle.dumps(graph))  # as the processes scheduler sends it
    # bound to the tasks' functions
    specs = [a for task in graph.values() for a in getattr(getattr(task, "func", None), "args", ())
             if isinstance(a, ShuffleSpec)]
    assert specs and {s.keys for s in specs} == {("k",)} and {s.npartitions for s in specs} == {3}


def test_owners_split_the_output_partitions_evenly():
    plan = servers_plan(addresses=("tcp://a:1", "tcp://b:1", "tcp://c:1"))
    owners = [plan.owner(p) for p in range(plan.n)]
    assert owners == sorted(owners) and set(owners) == {0, 1, 2}
    for owner in range(3):  # each server names the partitions it owns
        mine = [p for p in range(plan.n) if plan.owner(p) == owner]
        assert plan.describe(owner).endswith(f"(output partitions {mine[0]}-{mine[-1]})")
    assert {FilePlan("/x", 8).owner(p) for p in range(8)} == {0}


def test_an_unreachable_store_is_shuffle_data_lost_naming_it():
    plan = servers_plan()
    lost = pytest.raises(sk.ShuffleDataLost, match=r"input partition 3: the store server tcp://127.0.0.1:1 .*unreach")
    with lost, store_errors(plan, 0, "input partition 3"):
        raise ConnectionError("refused")
    with pytest.raises(KeyError), store_errors(plan, 0, "input partition 3"):  # anything else is not a lost store
        raise KeyError("x")


def test_a_removed_file_store_is_never_recreated(tmp_path):
    plan = FilePlan(str(tmp_path / "gone"), 2)
    with pytest.raises(sk.ShuffleDataLost, match="gone"), plan.opened(0):
        pass
    assert not (tmp_path / "gone").exists()
    builders = FilePlan(str(tmp_path / "gone"), 2, pid=os.getpid())  # its computation forgot the buffer
    with pytest.raises(sk.ShuffleDataLost, match="gone"), builders.opened(0):
        pass


def test_a_curve_server_is_reached_with_the_plans_keys(tmp_path):
    server_public, server_secret = generate_keys()
    client_public, client_secret = generate_keys()
    host = ServerHost()
    options = ServerOptions("run-1", ServerKeys(server_secret, client_public), None, None)
    addresses = host.start(options, "127.0.0.1", str(tmp_path), 10**6)
    try:
        keys = ClientKeys(server_public, client_secret)
        frame = pd.DataFrame({"x": [1, 2, 3]})
        # through the tcp address, then through the ipc socket a task on this machine uses
        for plan in servers_plan(keys, (addresses.tcp,)), servers_plan(keys, (addresses.tcp,), (addresses.local,)):
            with plan.opened(0) as codec:
                codec.append({("run", 0): frame}, batch_id=b"run/0")
                codec.append({("run", 0): frame}, batch_id=b"run/0")  # a re-run adds nothing
                [pieces] = codec.get_pieces([("run", 0)])
            assert [t.num_rows for t in pieces] == [3]
        assert plan.address(0) == addresses.local != addresses.tcp
        assert host.servers["run-1"].server.stats()["clients"] == 2  # one client per address
        # without the key the ipc socket refuses too
        with pytest.raises(ConnectionError):
            sk.Shared(addresses.local, timeout=5).ping()
    finally:
        host.stop_all()
    assert list(tmp_path.iterdir()) == []
    assert not os.path.exists(addresses.local.removeprefix("ipc://"))


def test_a_task_uses_the_ipc_socket_only_where_it_is():
    plan = servers_plan(addresses=("tcp://127.0.0.1:1", "tcp://127.0.0.1:2"), local=("ipc:///nonexistent/socket", None))
    assert [plan.address(0), plan.address(1)] == ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]
    assert servers_plan().address(0) == "tcp://127.0.0.1:1"  # a plan with no local addresses


@dataclasses.dataclass(frozen=True)
class ManyStores:
    """A plan over in-memory stores, some of which cannot be reached."""

    codecs: tuple
    n: int
    broken: frozenset = frozenset()

    def owner(self, p: int) -> int:
        return p * len(self.codecs) // self.n

    @contextmanager
    def opened(self, owner: int) -> Iterator[sk.ArrowIPC]:
        if owner in self.broken:
            raise ConnectionError("refused")
        yield self.codecs[owner]

    def describe(self, owner: int) -> str:
        return f"store {owner}"


def test_a_map_task_sends_to_many_stores_at_once_and_reports_the_first_that_failed():
    from shuffle_kit.dask._tasks import SENDS, map_partition

    n = 4 * SENDS  # more stores than sends in flight: they go in turns
    df = pd.DataFrame({"k": range(200), "x": [float(i) for i in range(200)]})
    spec = ShuffleSpec("run", ("k",), n, HashIds(), None, "/nonexistent", 0)
    plan = ManyStores(tuple(sk.ArrowIPC(sk.Dict()) for _ in range(2 * SENDS)), n)
    counts = map_partition(spec, plan, df, 0)  # type: ignore[arg-type]
    map_partition(spec, plan, df, 0)  # type: ignore[arg-type]  # a re-run adds nothing
    for p in range(n):
        [pieces] = plan.codecs[plan.owner(p)].get_pieces([("run", p)])
        assert sum(t.num_rows for t in pieces) == counts[p] and len(pieces) == (counts[p] > 0)
    # the error names the first store (in their order) that failed, whichever failed first in time
    broken = ManyStores(tuple(sk.ArrowIPC(sk.Dict()) for _ in range(2 * SENDS)), n, frozenset({2, SENDS + 1}))
    with pytest.raises(sk.ShuffleDataLost, match=r"input partition 7: the store store 2 is unreachable"):
        map_partition(spec, broken, df, 7)  # type: ignore[arg-type]
