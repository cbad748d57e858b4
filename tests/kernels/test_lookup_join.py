"""A many-to-one join on one integer key is found through a lookup of the right's key, and
is pandas' merge exactly: rows, order, values, dtypes, names and index; anything else is
left to pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuffle_kit.kernels.joins import Join

ROWS = 1500  # above the length from which the right side is looked up


def frames(seed: int, dtype: str, spread: int, matched_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    m = ROWS
    keys = (rng.permutation(m).astype(np.int64) * spread).astype(dtype)
    right = pd.DataFrame({
        "k": keys, "v": rng.random(m), "label": pd.Series([f"L{i}" if i % 7 else None for i in range(m)], dtype="str"),
        "c": pd.Categorical(rng.choice(["p", "q"], m)), "n": pd.array(rng.integers(0, 5, m), dtype="Int64"),
    })
    n = 3 * m
    picked = keys[rng.integers(0, m, n)]
    missing = rng.random(n) > matched_share
    lk = np.where(missing, np.array(m * spread + 1).astype(dtype), picked).astype(dtype)
    left = pd.DataFrame({"v": rng.integers(0, 9, n), "k": lk,
                         "t": pd.to_datetime(rng.integers(0, 10**9, n), unit="s", utc=True)},
                        index=pd.RangeIndex(100, 100 + n))
    return left, right


@given(seed=st.integers(0, 2**16), dtype=st.sampled_from(["int64", "int32", "uint32"]),
       spread=st.sampled_from([1, 3, 10**6]), matched=st.sampled_from([1.0, 0.8]),
       how=st.sampled_from(["inner", "left"]), suffixes=st.sampled_from([("_x", "_y"), ("", "_r")]))
@settings(max_examples=30, deadline=None)
def test_alooked_up_join_is_pandas_merge(seed, dtype, spread, matched, how, suffixes):
    if dtype != "int64" and spread == 10**6:
        spread = 1000
    left, right = frames(seed, dtype, spread, matched)
    join = Join(["k"], ["k"], how, suffixes, on=True)
    assert (join.looked_up(left, right) is None) == (how == "left" and matched < 1)  # (unmatched rows: pandas)
    got = join.join(left, right)
    expected = pd.merge(left, right, on="k", how=how, suffixes=suffixes, sort=False)
    pd.testing.assert_frame_equal(got, expected)


def test_left_on_right_on_keeps_both_key_columns():
    left, right = frames(1, "int64", 1, 1.0)
    right = right.rename(columns={"k": "id"})
    join = Join(["k"], ["id"], "inner", ("_x", "_y"), on=False)
    got = join.join(left, right)
    pd.testing.assert_frame_equal(got, pd.merge(left, right, left_on="k", right_on="id", sort=False))


@pytest.mark.parametrize("change", ["repeat", "float", "mixed"])
def test_what_is_not_many_to_one_on_one_integer_type_is_pandas_own(change):
    left, right = frames(2, "int64", 1, 1.0)
    if change == "repeat":
        right.loc[5, "k"] = right.loc[6, "k"]
    elif change == "float":
        left["k"], right["k"] = left["k"].astype(float), right["k"].astype(float)
    else:
        right["k"] = right["k"].astype("int32")
    join = Join(["k"], ["k"], "inner", ("_x", "_y"), on=True)
    assert join.looked_up(left, right) is None
    pd.testing.assert_frame_equal(join.join(left, right), pd.merge(left, right, on="k", sort=False))
