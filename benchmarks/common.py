"""Shared benchmark helpers: the issue's 5M-row frame, timing, tables of figures."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd


def make_frame(rows: int = 5_000_000, seed: int = 0) -> pd.DataFrame:
    """The codec/shuffle issues' frame: int64 key with 100k distinct values, float64,
    int64, the default ``str`` dtype of ~9 characters, a 20-category categorical."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i:08d}" for i in range(1000)])  # 9 characters
    return pd.DataFrame({
        "key": rng.integers(0, 100_000, rows),
        "x": rng.random(rows),
        "y": rng.integers(-(10**9), 10**9, rows),
        "s": pd.Series(words[rng.integers(0, len(words), rows)], dtype="str"),
        "c": pd.Categorical.from_codes(rng.integers(0, 20, rows), [f"cat{i}" for i in range(20)]),
    })


def frame_nbytes(df: pd.DataFrame) -> int:
    return int(df.memory_usage(deep=True).sum())


def chunks_of(df: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(df), n + 1).astype(int)
    return [df.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` runs (the machine is shared: the minimum is the
    least disturbed run)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
