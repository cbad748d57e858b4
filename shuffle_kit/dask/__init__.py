"""Shuffle a dask DataFrame through shuffle_kit: dask is the engine, shuffle_kit the data plane.

    import shuffle_kit.dask
    out = shuffle_kit.dask.shuffle(ddf, "user_id")            # a dask DataFrame
    out = shuffle_kit.dask.shuffle(ddf, "ts", partitioner="range")  # partitions in key order
    res = shuffle_kit.dask.groupby_apply(ddf, "user_id", f, meta=...)
    out = shuffle_kit.dask.sort_values(ddf, "ts")             # rows in key order
    out = shuffle_kit.dask.set_index(ddf, "ts")               # known divisions
    out = shuffle_kit.dask.merge(flights, planes, on="tail")  # both sides hash-shuffled, pairs joined

The graph, built with public dask APIs only (``to_delayed``, ``delayed``, ``from_delayed``)::

    shuffle_kit-setup     one task: opens the run's store (see below)
    shuffle_kit-map  i    per input partition: hash, split, ONE append per store with
                          batch_id = (graph, i), so a retried or re-run map task adds nothing
    shuffle_kit-barrier   one task: rows expected in every output partition
    shuffle_kit-read j    per output partition: read its pieces back, in input order, and
                          check the row count against the barrier (never silently short)

``sort_values``, ``set_index`` and ``shuffle(..., partitioner="range")`` run the same
graph with key ranges for the hash, from a sample of every input partition's keys: for
``set_index`` computed first (its divisions are part of the result, as dask computes
them), for the others by a sample task per input partition and one ``ranges`` task in the
same graph; for the first two, each read task sorts its partition (see
``shuffle_kit/dask/_sort.py``). ``merge`` shuffles both sides into one store and joins
partition pairs (``shuffle_kit/dask/_merge.py``).

Where the pieces live, decided when the setup task runs, so one graph works everywhere:

- threads / processes / sync schedulers: a ``File`` store in dask's ``temporary_directory``
  (or the system's), one per graph build, removed when a computation finishes or fails
  (a ``dask.callbacks.Callback``) and at interpreter exit at the latest.
- ``dask.distributed``: one shuffle_kit ``Server`` per worker, hosted by the worker's
  nanny (so it survives the loss of the worker process), spilling to the worker's local
  directory; each owns a range of output partitions; tasks talk to them with ``Shared``
  clients. A scheduler plugin keeps the run's servers while the graph needs them and
  stops them when the barrier is forgotten (the computation finished, failed or was
  cancelled) or the cluster closes. See :mod:`shuffle_kit.dask.cluster`.
- an explicit ``store=`` (a store, or a codec stack that declares ``stores_arrow``, that every task can reach: a
  ``File`` path on a shared file system, a ``Shared`` address): used as is, never removed.

The pieces' place is a plan, a frozen dataclass per kind that travels in the graph (see
``shuffle_kit/dask/_plans.py``); a store that cannot be reached, or a partition that comes
back short, raises :class:`~shuffle_kit.ShuffleDataLost`.

Needs the ``dask`` extra (``pip install shuffle_kit[dask]``); dask is imported lazily.
"""

from ..errors import ShuffleDataLost
from ._graph import groupby_apply, shuffle
from ._merge import merge
from ._sort import set_index, sort_values

__all__ = ["shuffle", "groupby_apply", "sort_values", "set_index", "merge", "ShuffleDataLost"]
