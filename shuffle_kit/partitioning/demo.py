"""``shuffle-kit demo``: a sample dataset, partitioned by hash and by value, checked. The data
and both outputs are kept, for the user to look at, in ``--out`` or else in a new directory
of the current one (:func:`new_directory`); the demo says where."""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import JobError
from .job import Options, run

DEFAULT_NAME = "shuffle-kit-demo"
PARTS = ("orders", "by_user", "by_country")  # what the demo writes (and replaces when run again there)


def make_sample(directory: str, rows: int = 1_000_000, files: int = 4, seed: int = 0) -> list[str]:
    """Write a sample dataset (orders: user_id, country, amount, item) as Parquet files."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    countries = pa.array(["DE", "FR", "IN", "JP", "US", "BR", "NG", "CA", "../etc", "a/b", ""])
    items = pa.array([f"item-{i:04d}" for i in range(500)])
    os.makedirs(directory, exist_ok=True)
    paths = []
    bounds = np.linspace(0, rows, files + 1).astype(np.int64)
    for i in range(files):
        n = int(bounds[i + 1] - bounds[i])
        country = countries.take(pa.array(rng.integers(0, len(countries), n)))
        mask = pa.array(rng.random(n) < 0.01)  # 1% unknown country: null keys are kept
        country = pa.compute.if_else(mask, pa.scalar(None, pa.string()), country)
        table = pa.table({
            "user_id": rng.integers(0, 50_000, n),
            "country": country,
            "amount": np.round(rng.gamma(2.0, 20.0, n), 2),
            "item": items.take(pa.array(rng.integers(0, len(items), n))),
        })
        path = os.path.join(directory, f"orders-{i}.parquet")
        pq.write_table(table, path)
        paths.append(path)
    return paths


def new_directory(parent: str, name: str = DEFAULT_NAME) -> str:
    """A directory made now in ``parent``: ``name``, or ``name-2``, ``name-3`` ... if taken
    (never one that exists, so an earlier demo's output or a user's files stay as they are).

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> [os.path.basename(new_directory(d)) for _ in range(3)]
    ['shuffle-kit-demo', 'shuffle-kit-demo-2', 'shuffle-kit-demo-3']
    >>> shutil.rmtree(d)
    """
    for i in range(1, 10_000):
        path = os.path.join(os.path.abspath(parent), name if i == 1 else f"{name}-{i}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
        except OSError as e:
            problem = f"cannot make the demo's directory {path!r} ({e.strerror}); choose one with --out DIR"
            raise JobError(problem) from None
    raise JobError(f"{parent!r} holds {name}, {name}-2 ... {name}-9999 already; choose a directory with --out DIR")


def demo(out: str | None = None, rows: int = 1_000_000, progress: bool | None = None, echo: Any = print) -> int:
    """Generate a sample dataset, partition it by hash and by value, check, print. 0 if all
    good. Everything is kept in ``out`` (made if need be), or else in a new directory of the
    current one."""
    import pyarrow.compute  # noqa: F401  (pa.compute in make_sample)
    import pyarrow.dataset as ds

    if out:
        root = os.path.abspath(out)
        # an earlier demo's output is replaced; anything else is the user's and stays
        if os.path.isdir(root) and not set(os.listdir(root)) <= set(PARTS):
            raise JobError(f"--out {out!r} holds other files than a demo's ({', '.join(PARTS)}); "
                           "give a new or empty directory")
    else:
        root = new_directory(os.getcwd())
    echo(f"working in {root}/ (kept when the demo ends)")
    data = os.path.join(root, "orders")
    if os.path.exists(data):
        shutil.rmtree(data)
    make_sample(data, rows)
    echo(f"generated {rows:,} orders (user_id, country, amount, item) in {data}/\n")

    by_user = os.path.join(root, "by_user")
    echo(f"$ shuffle-kit partition {data} --on user_id --out {by_user} --npartitions 8")
    s1 = run(Options([data], ["user_id"], by_user, npartitions=8, exists="overwrite", progress=progress))
    echo("\n".join("  " + line for line in s1.lines()))
    files = sorted(os.listdir(by_user))
    seen: dict[int, str] = {}
    clash = 0
    for f in files:
        for u in set(ds.dataset(os.path.join(by_user, f)).to_table(columns=["user_id"]).column(0).to_pylist()):
            clash += u in seen
            seen[u] = f
    echo(f"  files: {', '.join(files[:3])}, ... ; {len(seen):,} users, each in exactly one file: {clash == 0}\n")

    by_country = os.path.join(root, "by_country")
    echo(f"$ shuffle-kit partition {data} --on country --out {by_country} --by-value")
    s2 = run(Options([data], ["country"], by_country, by_value=True, exists="overwrite", progress=progress))
    echo("\n".join("  " + line for line in s2.lines()))
    dirs = sorted(os.listdir(by_country))
    echo("  directories: " + "  ".join(dirs))
    back = ds.dataset(by_country, format="parquet", partitioning="hive").to_table(columns=["country"])
    values = sorted(set(back.column(0).to_pylist()), key=lambda v: (v is None, v or ""))
    echo(f"  read back with pyarrow (partitioning='hive'): {len(back):,} rows, countries {values}")
    echo("  (hostile values like '../etc' and 'a/b' are percent-encoded; nulls are __HIVE_DEFAULT_PARTITION__)")
    ok = s1.ok and s2.ok and clash == 0 and len(back) == rows
    echo(f"\nthe data and both outputs are in {root}/ (orders/, by_user/, by_country/); remove it when done")
    echo("\ndemo " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1
