"""Object-dtype keys: values pandas groups together share a partition (issue 14, item 1).

The model is pandas itself: ``df.groupby(on, dropna=False, sort=False)`` on the same
frame. A shuffle must give exactly its groups (as sets of row ids), put each group in
one partition, and hand back the stored objects untouched.
"""

import datetime as dt
import enum
import fractions
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shuffle_kit
from shuffle_kit.kernels.hashing import (
    NULL_HASH,
    UnhashableKeyError,
    hash_array,
    hash_object,
    hash_objects,
)

# small ranges on purpose: 1, 1.0 and True (or '1') must meet often
ints = st.integers(-2, 3)
integral_floats = ints.map(float)
floats = st.sampled_from([0.5, -1.5, -0.0, float("nan"), float("inf")])
nulls = st.sampled_from([None, pd.NA, np.nan, pd.NaT])
strings = st.sampled_from(["", "1", "a", "True", "nan"])
numpy_numbers = st.one_of(
    ints.map(np.int8), ints.map(np.int64), integral_floats.map(np.float32), st.booleans().map(np.bool_)
)
python_scalars = st.one_of(ints, integral_floats, floats, st.booleans(), nulls, strings)
scalars = st.one_of(python_scalars, numpy_numbers)
# no NumPy scalar beside a tuple: ``np.int8(1) == (1,)`` broadcasts to a true array, so
# pandas' own groups then depend on its hash table's collisions (on PYTHONHASHSEED)
keys = st.one_of(python_scalars, st.tuples(scalars), st.tuples(scalars, scalars))
FAST = settings(max_examples=40, deadline=None)


def expected_groups(df: pd.DataFrame, on) -> set[frozenset]:
    ids = df.groupby(on, dropna=False, sort=False).ngroup()
    return {frozenset(df["row"][ids == g]) for g in ids.unique()}


def same_objects(a, b) -> bool:
    """The very values back: type and repr (NaN != NaN, so not ==)."""
    return [(type(v), repr(v)) for v in a] == [(type(v), repr(v)) for v in b]


def check_groupby(df: pd.DataFrame, on, npartitions: int) -> None:
    with shuffle_kit.groupby_shuffle(df, on=on, npartitions=npartitions, progress=False) as g:
        got = list(g)
    assert {frozenset(grp["row"]) for _, grp in got} == expected_groups(df, on)
    back = pd.concat([grp for _, grp in got]).sort_values("row")
    for col in df.columns:
        assert same_objects(back[col], df[col]), col


def check_partitions(df: pd.DataFrame, on, npartitions: int) -> None:
    with shuffle_kit.shuffle(df, on, npartitions, progress=False) as res:
        where = {row: p for p, part in enumerate(res) for row in part["row"]}
    assert sorted(where) == list(range(len(df)))
    for group in expected_groups(df, on):
        assert len({where[row] for row in group}) == 1, group


@FAST
@given(
    st.one_of(st.lists(keys, min_size=1, max_size=30), st.lists(scalars, min_size=1, max_size=30)),
    st.sampled_from([2, 3, 7, 16]),
)
def test_object_keys_give_pandas_groups(values, npartitions):
    df = pd.DataFrame({"k": pd.Series(values, dtype=object), "row": range(len(values))})
    check_groupby(df, "k", npartitions)
    check_partitions(df, "k", npartitions)


@FAST
@given(st.lists(st.tuples(keys, st.integers(0, 2)), min_size=1, max_size=30), st.sampled_from([2, 5, 8]))
def test_object_and_int_keys_give_pandas_groups(pairs, npartitions):
    df = pd.DataFrame({
        "k": pd.Series([k for k, _ in pairs], dtype=object),
        "i": np.array([i for _, i in pairs], dtype=np.int64),
        "row": range(len(pairs)),
    })
    check_groupby(df, ["k", "i"], npartitions)
    check_groupby(df, ["i", "k"], npartitions)
    check_partitions(df, ["k", "i"], npartitions)


def test_the_issue_example():
    column = pd.Series([2, 2.0, None, pd.NA, 1, True, (1, 2), (1.0, 2.0)], dtype=object)
    df = pd.DataFrame({"k": column, "row": range(8)})
    with shuffle_kit.groupby_shuffle(df, on="k", npartitions=8, progress=False) as g:
        assert sorted(sorted(grp["row"]) for _, grp in g) == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_other_types_pandas_groups_together():
    ts = pd.Timestamp("2020-01-01 01:00", tz="Europe/Paris")
    values = [
        ts, pd.Timestamp("2020-01-01", tz="UTC"), dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        pd.Timestamp("2020-01-01"), dt.datetime(2020, 1, 1),  # naive: another instant for pandas
        dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31),  # outside pandas' nanosecond range
        pd.Timedelta(1, "s"), dt.timedelta(seconds=1), np.timedelta64(1000, "ms"),
        Decimal(2), fractions.Fraction(4, 2), 2 + 0j, np.int16(2), Decimal("NaN"), np.datetime64("NaT"),
        dt.date(2020, 1, 1), dt.time(12, 30), b"x", "x", (1, ("a", 2.0)), (True, ("a", 2)),
        frozenset({1, "a"}), frozenset({"a", 1.0}), pd.Period("2020-01", "M"), pd.Interval(0, 1), pd.Interval(0.0, 1.0),
        10**400, Decimal("1e400"), 1.5 + 2j, complex(1.5, 2), complex(1, float("nan")),  # a null for pandas
        np.float16(2), np.uint64(2),
    ]
    df = pd.DataFrame({"k": pd.Series(values, dtype=object), "row": range(len(values))})
    assert len(expected_groups(df, "k")) < len(values) - 10  # many values meet
    check_groupby(df, "k", 16)
    check_partitions(df, "k", 16)


@given(st.lists(st.one_of(st.none(), st.text(max_size=20)), max_size=20))
def test_objects_hash_as_their_typed_columns(strs):
    # an object column stored as Arrow strings (all str) and one pickled (mixed) must agree
    assert hash_objects(strs).tolist() == hash_array(pa.array(strs, type=pa.string())).tolist()
    raw = [None if s is None else s.encode() for s in strs]
    assert hash_objects(raw).tolist() == hash_array(pa.array(raw, type=pa.binary())).tolist()


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.booleans()), max_size=20))
def test_numbers_hash_as_their_typed_columns(nums):
    floats = [None if v is None else float(v) for v in nums]
    assert hash_objects(nums).tolist() == hash_array(pa.array(floats, type=pa.float64())).tolist()


def test_times_hash_as_their_typed_columns():
    times = pd.to_datetime(["2024-03-01 12:00:00.000000007", None, "1970-01-01 00:00:00.000000000"])
    ts = pd.Series(times.tz_localize("Asia/Tokyo"))
    assert hash_objects(list(ts.astype(object))).tolist() == hash_array(pa.array(ts)).tolist()
    td = pd.Series(pd.to_timedelta([1, None, -3], unit="us"))
    assert hash_objects(list(td.astype(object))).tolist() == hash_array(pa.array(td)).tolist()
    assert hash_object(dt.date(2001, 2, 3)) == int(hash_array(pa.array([dt.date(2001, 2, 3)]))[0])
    assert hash_object(pd.NaT) == hash_object(np.timedelta64("NaT")) == int(NULL_HASH)


def test_object_index_level_as_key():
    values = [2, 2.0, None, np.nan, "a", (1, 2), (1.0, 2.0), True, 1]
    df = pd.DataFrame({"k": pd.Series(values, dtype=object), "row": range(len(values))}).set_index("k")
    with shuffle_kit.groupby_shuffle(df, on="k", npartitions=8, progress=False) as g:
        got = {frozenset(grp["row"]) for _, grp in g}
    assert got == expected_groups(df, "k")


def test_storage_changes_between_chunks_keep_keys_together():
    # chunk 1 is all str (Arrow strings), chunk 2 mixes in ints (pickled): 'a' stays put
    first = pd.DataFrame({"k": pd.Series(["a", "b", None], dtype=object), "row": [0, 1, 2]})
    second = pd.DataFrame({"k": pd.Series(["a", 1, np.nan, "b"], dtype=object), "row": [3, 4, 5, 6]})
    with shuffle_kit.shuffle([first, second], "k", 64, progress=False) as res:
        where = {row: p for p, part in enumerate(res) for row in part["row"]}
    assert where[0] == where[3] and where[1] == where[6] and where[2] == where[5]


class Opaque:
    """Hashable, with an equality of its own that the hash cannot know."""

    def __init__(self, v):
        self.v = v

    def __eq__(self, other):
        return isinstance(other, Opaque) and self.v == other.v

    def __hash__(self):
        return hash(self.v)


class Colour(enum.Enum):
    RED = 1


@pytest.mark.parametrize("bad", [Opaque(1), Colour.RED, (1, Opaque(2)), np.timedelta64(5)])
def test_unsupported_objects_are_refused_naming_the_column(bad):
    df = pd.DataFrame({"key col": pd.Series([1, "a", bad], dtype=object), "row": range(3)})
    with pytest.raises(UnhashableKeyError) as info:
        shuffle_kit.groupby_shuffle(df, on="key col", npartitions=4, progress=False)
    message = str(info.value)
    culprit = bad if not isinstance(bad, tuple) else bad[1]
    assert "\n" not in message and "'key col'" in message and type(culprit).__name__ in message


def test_lists_are_refused_like_pandas():
    df = pd.DataFrame({"k": pd.Series([[1], [1]], dtype=object), "row": range(2)})
    with pytest.raises(UnhashableKeyError, match="key column 'k' holds list values"):
        shuffle_kit.shuffle(df, "k", 4, progress=False)


mixed = st.one_of(
    keys, st.integers(), st.text(max_size=12), st.floats(), st.binary(max_size=10),
    st.just("\ud800"), st.just(10**400), st.just(-(10**400)),
)


@given(st.lists(mixed, max_size=30))
def test_bulk_hashes_equal_one_by_one(values):
    # hash_objects sends common types through the vectorised column hashes: same result
    assert hash_objects(values).tolist() == [hash_object(v) for v in values]


SEED_SCRIPT = """
import numpy as np, pandas as pd
from shuffle_kit.frames import frame_to_table
from shuffle_kit.kernels.hashing import partition_ids
values = [frozenset({'a', 1, 2.5}), ('x', None), 'x', 7, 7.0, None, b'y', (frozenset({'b', 3}),)] * 3
table = frame_to_table(pd.DataFrame({'k': pd.Series(values, dtype=object)}))
print(partition_ids(table, ['k'], 1 << 16).tolist())
"""


def test_pickled_keys_independent_of_pythonhashseed():
    # frozensets pickle in their iteration order, which follows PYTHONHASHSEED
    import os
    import subprocess
    import sys

    outs = {
        subprocess.run(
            [sys.executable, "-c", SEED_SCRIPT], env=dict(os.environ, PYTHONHASHSEED=seed),
            capture_output=True, text=True, check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1 and len(next(iter(outs))) > 50


def test_shuffle_dropna_drops_every_kind_of_null_object_key():
    import numpy as np
    import pandas as pd

    import shuffle_kit as sk

    keys = [1, None, "a", np.nan, pd.NA, (1, 2), pd.NaT, np.datetime64("NaT"), 2.0, float("nan")]
    df = pd.DataFrame({"k": pd.Series(keys, dtype=object), "x": range(len(keys))})
    with sk.shuffle(df, "k", 3, dropna=True, progress=False) as result:
        kept = sorted(result.to_pandas()["x"].tolist())
    assert kept == sorted(df.dropna(subset=["k"])["x"].tolist())
