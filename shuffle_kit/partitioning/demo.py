"""``shuffle-kit demo``: a sample dataset, partitioned by hash and by value, checked."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import numpy as np
import pyarrow as pa

from .job import Options, run


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


def demo(out: str | None = None, rows: int = 1_000_000, progress: bool | None = None, echo: Any = print) -> int:
    """Generate a sample dataset, partition it by hash and by value, check, print. 0 if all good."""
    import pyarrow.compute  # noqa: F401  (pa.compute in make_sample)
    import pyarrow.dataset as ds

    root = out or tempfile.mkdtemp(prefix="shuffle-kit-demo-")
    keep = out is not None
    try:
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
        if keep:
            echo(f"\noutput kept in {root}")
        echo("\ndemo " + ("OK" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
