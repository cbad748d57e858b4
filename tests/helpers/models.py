"""Shared test helpers."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import strategies as st

from shuffle_kit.kernels.hashing import id_dtype


def col(kind, n, rng):
    small = rng.integers(0, 4, n)
    null = rng.random(n) < 0.2
    if kind == "int64":
        return pd.Series(small, dtype="int64")
    if kind == "int8":
        return pd.Series(small, dtype="int8")
    if kind == "uint32":
        return pd.Series(small, dtype="uint32")
    if kind == "float64":
        return pd.Series(np.where(null, np.nan, small / 2))
    if kind == "bool":
        return pd.Series(small % 2 == 0)
    if kind == "str":
        return pd.Series([None if z else f"s{v}" for v, z in zip(small, null)], dtype="str")
    if kind == "string[python]":
        return pd.Series([None if z else f"é{v}" for v, z in zip(small, null)], dtype="string[python]")
    if kind == "object":
        return pd.Series([None if z else "o" * int(v) for v, z in zip(small, null)], dtype=object)
    if kind == "category":
        values = [None if z else f"c{v}" for v, z in zip(small, null)]
        return pd.Series(pd.Categorical(values, categories=["c3", "c2", "c1", "c0", "unused"]))
    if kind == "datetime_tz":
        t = pd.Series(pd.to_datetime(small, unit="D").tz_localize("Europe/Paris"))
        return t.where(~null)
    if kind == "Int64":
        return pd.Series(pd.array([None if z else int(v) for v, z in zip(small, null)], dtype="Int64"))
    if kind == "timedelta":
        return pd.Series(pd.to_timedelta(small, unit="s"))
    raise AssertionError(kind)


KINDS = [
    "int64", "int8", "uint32", "float64", "bool", "str", "string[python]", "object", "category", "datetime_tz", "Int64",
    "timedelta",
]


@st.composite
def frames(draw):
    n = draw(st.integers(0, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    df = pd.DataFrame({f"c{i}_{k}": col(k, n, rng) for i, k in enumerate(kinds)})
    df["rid"] = np.arange(n)
    on = draw(st.lists(st.sampled_from(list(df.columns[:-1])), min_size=1, max_size=2, unique=True))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    bounds = [0, *cuts, n]
    chunks = [df.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return df, on, chunks


def norm(v):
    return None if (not isinstance(v, (list, tuple)) and pd.isna(v)) else v


def pandas_groups(df, on):
    return {
        (norm(k) if not isinstance(k, tuple) else tuple(map(norm, k))): g
        for k, g in df.groupby(on, dropna=False, sort=False, observed=True)
    }



def chunked(values: list, cuts: list[int], type_: pa.DataType) -> pa.ChunkedArray:
    bounds = [0, *sorted(c % (len(values) + 1) for c in cuts), len(values)]
    return pa.chunked_array([pa.array(values[a:b], type_) for a, b in itertools.pairwise(bounds)], type_)


@st.composite
def tables(draw):
    n = draw(st.integers(0, 60))
    ints = draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n))
    words = draw(st.lists(st.one_of(st.none(), st.sampled_from(["a", "bb", "", "ccc"])), min_size=n, max_size=n))
    # each column chunked on its own: batches of the table then cut every column
    cuts = st.lists(st.integers(0, 60), max_size=4)
    table = pa.table({
        "i": chunked(ints, draw(cuts), pa.int64()),
        "s": chunked(words, draw(cuts), pa.string()),
        "d": pa.chunked_array([c.dictionary_encode() for c in chunked(words, draw(cuts), pa.string()).chunks],
                              pa.dictionary(pa.int32(), pa.string())),
    })
    npartitions = draw(st.sampled_from([1, 2, 3, 64, 300]))
    ids = np.array(draw(st.lists(st.integers(0, npartitions - 1), min_size=n, max_size=n)), dtype=id_dtype(npartitions))
    return table, ids, npartitions


# keys whose order is pandas' sort_values order (range partitioning, sorting)
ORDERED_KINDS = [
    "int", "Int64", "uint64", "float", "float32", "str", "string", "bool", "boolean", "datetime", "datetime_tz",
    "timedelta", "category", "unordered", "ordered",
]


def ordered_column(kind: str, codes: list[int | None]) -> pd.Series:
    """A key column of ``kind`` whose order follows ``codes`` (None: the kind's NA)."""
    na = [c is None for c in codes]
    v = [0 if c is None else c for c in codes]
    if kind == "int":
        return pd.Series(v, dtype="int64")  # no NA in a NumPy int column
    if kind == "Int64":
        return pd.Series([None if n else x - 3 for n, x in zip(na, v)], dtype="Int64")
    if kind == "uint64":
        return pd.Series([2**63 + x for x in v], dtype="uint64")
    if kind in ("float", "float32"):
        # -0.0 and 0.0 are equal; NaN and None are both NA
        vals = [np.nan if n else (-0.0 if x == 0 else x / 2) for n, x in zip(na, v)]
        return pd.Series(vals, dtype="float64" if kind == "float" else "float32")
    if kind in ("str", "string"):
        vals = [None if n else ["", "a", "B", "b", "é", "ab", "z"][x % 7] + "x" * (x // 7) for n, x in zip(na, v)]
        return pd.Series(vals, dtype=object if kind == "str" else "string")
    if kind == "bool":
        return pd.Series([bool(x % 2) for x in v], dtype=bool)
    if kind == "boolean":
        return pd.Series([None if n else bool(x % 2) for n, x in zip(na, v)], dtype="boolean")
    if kind in ("datetime", "datetime_tz"):
        s = pd.Series([pd.NaT if n else pd.Timestamp("2024-01-01") + pd.Timedelta(hours=x) for n, x in zip(na, v)],
                      dtype="datetime64[ns]")
        return s.dt.tz_localize("Europe/Paris") if kind == "datetime_tz" else s
    if kind == "timedelta":
        return pd.Series([pd.NaT if n else pd.Timedelta(seconds=x - 2) for n, x in zip(na, v)], dtype="timedelta64[ns]")
    if kind == "category":  # pandas' default categories: sorted, so their order is the values' order
        return pd.Series(pd.Categorical([None if n else "abcdefg"[x % 7] for n, x in zip(na, v)]))
    # categories in an order of their own, not the values': pandas sorts by it, ordered or not
    cats = ["zeta", "alpha", "mid", "beta", "omega", "a", "q"]
    values = [None if n else cats[x % 7] for n, x in zip(na, v)]
    return pd.Series(pd.Categorical(values, categories=cats, ordered=kind == "ordered"))
