"""The four kinds of task of a shuffle graph (see :mod:`shuffle_kit.dask`).

- :func:`setup` decides the run's plan where it runs (see :mod:`._plans`);
- :func:`map_partition` appends every piece of one input partition, one append per
  store, all with the batch id ``<run>/<i>``: a retried or re-run map task adds nothing;
  the appends to several stores are in flight at once (each waits for its server's
  reply, and a server in a busy process answers late), at most :data:`SENDS` of them;
- :func:`barrier` waits for every map task and adds up the rows each output partition
  must get;
- :func:`read_partition` reads one output partition back, its pieces in input order, and
  raises :class:`~shuffle_kit.ShuffleDataLost` rather than return it short.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ShuffleDataLost
from ..frames import INDEX_NAME, Piece, tables_to_frame, with_piece
from ..kernels.keys import to_table
from ..kernels.split import count_ids, split, split_numbered
from ._assign import RangeIds, SortWithin
from ._local import process_store
from ._plans import FilePlan, Plan, ShuffleSpec, StorePlan, store_errors

SOURCE_KEY = b"shuffle_kit.dask.source"  # schema metadata: which input partition a piece came from
SENDS = 4  # appends of one map task in flight at once (each holds its encoded pieces until answered)

_senders: tuple[int, ThreadPoolExecutor] | None = None  # (the pid it belongs to, the pool)
_senders_lock = threading.Lock()


def _sender_pool() -> ThreadPoolExecutor:
    """This process's threads that send a map task's appends beside its own, shared by
    its tasks (a forked child makes its own: the parent's threads are not in it)."""
    global _senders
    with _senders_lock:
        if _senders is None or _senders[0] != os.getpid():
            _senders = (os.getpid(), ThreadPoolExecutor(max_workers=SENDS - 1, thread_name_prefix="shuffle_kit-send"))
        return _senders[1]


def on_distributed_worker() -> bool:
    try:
        from distributed import get_worker
    except ImportError:  # pragma: no cover - distributed not installed
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


def setup(spec: ShuffleSpec) -> Plan:
    """The run's plan: where each output partition's pieces go."""
    if spec.store is not None:
        return StorePlan(spec.store, spec.npartitions)
    if on_distributed_worker():
        from ._scheduler import open_run

        return open_run(spec.id, spec.barrier_key, spec.npartitions)
    os.makedirs(spec.local_path, exist_ok=True)
    if os.getpid() == spec.builder_pid:
        # threads / sync: every task runs in this process, so pieces stay Arrow tables
        # in memory (a TableBuffer), spilling to the File store beyond the memory limit
        process_store(spec.local_path, create=True)
        return FilePlan(spec.local_path, spec.npartitions, pid=spec.builder_pid)
    return FilePlan(spec.local_path, spec.npartitions)


def map_partition(
    spec: ShuffleSpec, plan: Plan, df: pd.DataFrame, i: int, ranges: RangeIds | None = None,
) -> np.ndarray:
    """Partition input partition ``i`` (by ``ranges`` when the graph sampled them, else
    by ``spec.ids``) and append all its pieces, once per store; the rows it sent to each
    output partition."""
    keys, n = list(spec.keys), spec.npartitions
    table, fields, _ = to_table(df, keys, keep_index=spec.keep_index)
    assign = ranges if ranges is not None else spec.ids
    if assign is None:  # a spec without ids is only built with a ranges task
        raise TypeError("shuffle_kit: a map task of a sampled shuffle got no key ranges")
    ids = assign(df, table, fields, n)
    counts = count_ids(ids, n)
    numbered = _numbered_index(df, table, fields) if spec.keep_index else None
    if numbered is None:
        pieces = split(table, ids, n, counts)
    else:  # a kept RangeIndex: its values are made again from the rows each piece took
        pieces = split_numbered(table, ids, n, numbered, df.index.start, df.index.step, counts)
    del ids
    if not pieces:
        return counts
    meta = dict(next(iter(pieces.values())).schema.metadata or {})
    meta[SOURCE_KEY] = str(i).encode()
    batch_id = f"{spec.id}/{i}".encode()  # the same on every retry or re-run of this task
    groups: dict[int, dict] = {}
    for p, t in pieces.items():
        groups.setdefault(plan.owner(p), {})[(spec.id, p)] = t.replace_schema_metadata(meta)
    del pieces

    def send(owner: int) -> None:
        with store_errors(plan, owner, f"input partition {i}"), plan.opened(owner) as codec:
            codec.append(groups[owner], batch_id=batch_id)

    owners = list(groups)
    for start in range(0, len(owners), SENDS):
        batch = owners[start : start + SENDS]
        others: list[Future] = [_sender_pool().submit(send, owner) for owner in batch[1:]]
        errors: list[BaseException] = []
        try:
            send(batch[0])
        except BaseException as e:
            errors.append(e)
        for future in others:  # every send answered before the task ends, failed or not
            try:
                future.result()
            except BaseException as e:
                errors.append(e)
        if errors:
            raise errors[0]  # the first store's, in the order of the stores
    return counts


def _numbered_index(df: pd.DataFrame, table: pa.Table, fields: list[str]) -> str | None:
    """The Arrow name of the column holding ``df``'s RangeIndex as values (``to_table``
    keeps it so), if it has one and it is not a key."""
    name = INDEX_NAME.format(0)
    if type(df.index) is not pd.RangeIndex or name in fields or table.column_names[-1:] != [name]:
        return None
    return name if table.num_columns == df.shape[1] + 1 and table.schema.field(name).type == pa.int64() else None


def barrier(plan: Plan, n: int, *counts: np.ndarray) -> tuple[Plan, np.ndarray]:
    """Every map task has appended: the plan, and rows expected in each output partition."""
    total = np.zeros(n, dtype=np.int64)
    for c in counts:
        total += c
    return plan, total


def read_partition(
    spec: ShuffleSpec, barrier: tuple[Plan, np.ndarray], p: int, meta: pd.DataFrame, ranges: RangeIds | None = None,
) -> pd.DataFrame:
    """Output partition ``p``: its pieces in input order, all of them or an error; sorted
    by the order of ``ranges`` (the graph's sample) when ``spec.arrange`` sorts."""
    plan, expected = barrier
    want = int(expected[p])
    if want == 0:
        return meta.copy()
    owner = plan.owner(p)
    # the store stays open until the frame is made: the tables may be views of its files
    with store_errors(plan, owner, f"output partition {p}"), plan.opened(owner) as codec:
        pieces = list(codec.iter_pieces((spec.id, p)))
        got = sum(t.num_rows for t in pieces)
        if got != want:
            raise ShuffleDataLost(
                f"shuffle_kit: output partition {p} holds {got} rows where {want} were written to "
                f"{plan.describe(owner)}: its pieces were lost (a store server restarted or was "
                "dropped?). Compute it again."
            )
        pieces.sort(key=_source)
        tables = [_strip(t) for t in pieces]
        if not spec.keep_index and spec.arrange is None:  # one RangeIndex 0..n-1 over the pieces
            starts = np.cumsum([0] + [t.num_rows for t in tables])
            tables = [with_piece(t, Piece.numbered(t.num_rows, int(s))) for t, s in zip(tables, starts)]
        # (dask runs tasks on every core: pyarrow's own pool would contend with them)
        arrange = spec.arrange
        if ranges is not None and isinstance(arrange, SortWithin):
            arrange = replace(arrange, order=ranges.order)
        return tables_to_frame(tables, threads=False) if arrange is None else arrange(tables)


def _source(t: pa.Table) -> int:
    return int((t.schema.metadata or {}).get(SOURCE_KEY, b"0"))


def _strip(t: pa.Table) -> pa.Table:
    meta = dict(t.schema.metadata or {})
    meta.pop(SOURCE_KEY, None)
    return t.replace_schema_metadata(meta)
