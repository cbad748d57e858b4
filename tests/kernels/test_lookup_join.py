"""A many-to-one join on one integer or string key is found through a lookup of the right's key, and
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


def keys_of(numbers: np.ndarray, dtype: str) -> pd.Series | np.ndarray:
    """Integer ``numbers`` as keys of ``dtype``: integers, or their strings (``"str"``)."""
    if dtype == "str":
        return pd.Series([f"key{v}" for v in numbers], dtype="str")
    return numbers.astype(dtype)


def frames(seed: int, dtype: str, spread: int, matched_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    m = ROWS
    numbers = rng.permutation(m).astype(np.int64) * spread
    right = pd.DataFrame({
        "k": keys_of(numbers, dtype), "v": rng.random(m),
        "label": pd.Series([f"L{i}" if i % 7 else None for i in range(m)], dtype="str"),
        "c": pd.Categorical(rng.choice(["p", "q"], m)), "n": pd.array(rng.integers(0, 5, m), dtype="Int64"),
    })
    n = 3 * m
    picked = numbers[rng.integers(0, m, n)]
    missing = rng.random(n) > matched_share
    lk = keys_of(np.where(missing, m * spread + 1, picked), dtype)
    left = pd.DataFrame({"v": rng.integers(0, 9, n), "k": np.asarray(lk) if dtype != "str" else lk.to_numpy(),
                         "t": pd.to_datetime(rng.integers(0, 10**9, n), unit="s", utc=True)},
                        index=pd.RangeIndex(100, 100 + n))
    if dtype == "str":
        left["k"] = left["k"].astype("str")
        if matched_share < 1:  # a missing key too, which matches nothing (the right has none)
            left.loc[101, "k"] = None
    return left, right


@given(seed=st.integers(0, 2**16), dtype=st.sampled_from(["int64", "int32", "uint32", "str"]),
       spread=st.sampled_from([1, 3, 10**6]), matched=st.sampled_from([1.0, 0.8]),
       how=st.sampled_from(["inner", "left"]), suffixes=st.sampled_from([("_x", "_y"), ("", "_r")]))
@settings(max_examples=30, deadline=None)
def test_alooked_up_join_is_pandas_merge(seed, dtype, spread, matched, how, suffixes):
    if dtype in ("int32", "uint32") and spread == 10**6:
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


@pytest.mark.parametrize("change", ["repeat", "float", "mixed", "null on the right", "object strings",
                                    "a string Arrow cannot hold"])
def test_what_is_not_many_to_one_on_one_integer_type_is_pandas_own(change):
    left, right = frames(2, "str" if "strings" in change or "null" in change else "int64", 1, 1.0)
    if change == "repeat":
        right.loc[5, "k"] = right.loc[6, "k"]
    elif change == "null on the right":
        right.loc[5, "k"] = None
    elif change == "a string Arrow cannot hold":  # (a lone surrogate: pandas' merge takes it)
        left["k"], right["k"] = (side["k"].astype(pd.StringDtype("python")) for side in (left, right))
        left.loc[101, "k"] = right.loc[3, "k"] = "\ud800"
    elif change == "object strings":
        left["k"], right["k"] = left["k"].astype(object), right["k"].astype(object)
    elif change == "float":
        left["k"], right["k"] = left["k"].astype(float), right["k"].astype(float)
    else:
        right["k"] = right["k"].astype("int32")
    join = Join(["k"], ["k"], "inner", ("_x", "_y"), on=True)
    assert join.looked_up(left, right) is None
    pd.testing.assert_frame_equal(join.join(left, right), pd.merge(left, right, on="k", sort=False))
