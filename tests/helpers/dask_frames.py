"""A dask test frame and the check of a shuffled result, for the dask tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

N = 3000


def make_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    """String, categorical, datetime-tz and nullable columns; null keys in ``k``."""
    rng = np.random.default_rng(seed)
    k = pd.Series([f"key{i}" for i in rng.integers(0, 50, n)], dtype="str")
    k[rng.random(n) < 0.05] = None
    ints = pd.array(rng.integers(0, 40, n), dtype="Int64")
    ints[rng.random(n) < 0.1] = pd.NA
    return pd.DataFrame({
        "id": np.arange(n),
        "k": k,
        "n": ints,
        "c": pd.Categorical.from_codes(rng.integers(0, 5, n), list("vwxyz")),
        "t": pd.date_range("2024-01-01", periods=n, freq="min", tz="Europe/Paris"),
        "x": rng.random(n),
    })


def check_shuffled(parts: list[pd.DataFrame], frame: pd.DataFrame, on: list[str], meta: pd.DataFrame) -> None:
    """Every row once; each key in one partition only; dtypes as the meta."""
    seen: dict = {}
    for i, p in enumerate(parts):
        assert p.dtypes.equals(meta.dtypes)
        keys = p[on].astype(object).where(p[on].notna(), "<null>").itertuples(index=False, name=None)
        for key in set(keys):
            assert seen.setdefault(key, i) == i, f"key {key} in partitions {seen[key]} and {i}"
    got = pd.concat(parts).sort_values("id")
    want = frame.sort_values("id")
    pd.testing.assert_frame_equal(got, want)
