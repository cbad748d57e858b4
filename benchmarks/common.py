"""Shared benchmark helpers: the issue's 5M-row frame, timing, tables of figures."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd


def make_frame(rows: int = 5_000_000, seed: int = 0, strings: int | None = 1000) -> pd.DataFrame:
    """The codec/shuffle issues' frame: int64 key with 100k distinct values, float64,
    int64, the default ``str`` dtype of ~9 characters with ``strings`` distinct values
    (None: every row its own, ``u<8 hex digits>`` in random order), a 20-category
    categorical."""
    rng = np.random.default_rng(seed)
    key, x, y = rng.integers(0, 100_000, rows), rng.random(rows), rng.integers(-(10**9), 10**9, rows)
    if strings is None:
        s = pd.Series(np.char.add("u", np.char.zfill(np.char.mod("%x", rng.permutation(rows)), 8)), dtype="str")
    else:
        words = np.array([f"w{i:08d}" for i in range(strings)])  # 9 characters
        s = pd.Series(words[rng.integers(0, len(words), rows)], dtype="str")
    return pd.DataFrame({
        "key": key,
        "x": x,
        "y": y,
        "s": s,
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
