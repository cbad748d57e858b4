"""Files by key value (``by_value=True``) against a pandas model: random tables with every
key type (the model tests' kinds, and the types whose values float64 cannot tell apart:
large int64 and uint64, decimals, timestamps of every unit), given as an Arrow table, a
Parquet file, a pandas frame or a polars frame; the directory names are parsed back into
values of the key's type, and every row must be in the directory of its own key value,
one directory per value (None, NaN and NaT one null value; -0.0 equal to 0.0). Also: the
files read back into pandas with the input's dtypes, and appends refuse key columns of
another type."""

from __future__ import annotations

import math
import os
import re
from decimal import Decimal
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.errors import ShuffleKitError
from shuffle_kit.partitioning.job import JobError

NULL = "__HIVE_DEFAULT_PARTITION__"
NAN = float("nan")
BIG = 2**53
# the values of each key type: few, so that values repeat; each with the ones float64 merges
INTS = [0, 1, -1, BIG, BIG + 1, BIG + 2, 2**63 - 1, 2**63 - 2, -(2**63), None]
TIMES = [0, 1, -1, 1_700_000_000_123_456_789 // 10**9 * 10**9, 1_700_000_000_123_456_789, None]
STRINGS = ["a", "", "a/b", "é", NULL, "%", "1", " x", None]
POOLS: dict[str, tuple[pa.DataType, list]] = {
    "int64": (pa.int64(), INTS),
    "int8": (pa.int8(), [0, 1, -128, 127, None]),
    "uint32": (pa.uint32(), [0, 1, 2**32 - 1, None]),
    "uint64": (pa.uint64(), [0, BIG, BIG + 1, 2**63, 2**64 - 1, 2**64 - 2, None]),
    "float64": (pa.float64(), [0.0, -0.0, 1.5, NAN, None, float(BIG), float(BIG + 2), 1e20, 0.1, math.inf]),
    "float32": (pa.float32(), [0.0, -0.0, 0.1, NAN, None, 1e-7, 16777216.0, 16777218.0]),
    "bool": (pa.bool_(), [True, False, None]),
    "string": (pa.string(), STRINGS),
    "large_string": (pa.large_string(), STRINGS),
    "category": (pa.dictionary(pa.int32(), pa.string()), STRINGS),
    "decimal": (pa.decimal128(20, 3), [Decimal("1.000"), Decimal("-0.001"), Decimal("12345678901234567.891"),
                                       Decimal("12345678901234567.890"), Decimal("0.000"), None]),
    "date": (pa.date32(), [0, 1, -1, 19000, None]),
    "ts_s": (pa.timestamp("s"), [0, 1, -1, 1_700_000_000, 1_700_000_001, None]),
    "ts_ms": (pa.timestamp("ms"), [0, 1, -1, 1_700_000_000_000, 1_700_000_000_001, None]),
    "ts_us": (pa.timestamp("us"), [0, 1, -1, BIG, BIG + 1, None]),
    "ts_ns": (pa.timestamp("ns"), TIMES),
    "ts_tz": (pa.timestamp("us", "Europe/Paris"), [0, 1, BIG, BIG + 1, None]),
    "ts_utc": (pa.timestamp("ns", "UTC"), TIMES),
    "duration": (pa.duration("s"), [0, 1, -1, BIG, BIG + 1, None]),
}
ROUTES = ["arrow", "parquet", "pandas", "pandas_nullable", "polars"]


def _array(kind: str, picks: list[int]) -> pa.Array:
    type_, pool = POOLS[kind]
    values = [pool[i % len(pool)] for i in picks]
    if kind == "category":
        return pa.array(values, pa.string()).dictionary_encode()
    if pa.types.is_temporal(type_) and not pa.types.is_date(type_) or pa.types.is_duration(type_):
        return pa.array(values, pa.int64()).cast(type_)
    if pa.types.is_date(type_):
        return pa.array(values, pa.int32()).cast(type_)
    return pa.array(values, type_)


@st.composite
def cases(draw):
    n = draw(st.integers(0, 60))
    kinds = draw(st.lists(st.sampled_from(sorted(POOLS)), min_size=1, max_size=2))
    columns = {f"k{i}_{kind}": _array(kind, draw(st.lists(st.integers(0, 30), min_size=n, max_size=n)))
               for i, kind in enumerate(kinds)}
    table = pa.table({**columns, "rid": pa.array(range(n), pa.int64())})
    return table, list(columns), draw(st.sampled_from(ROUTES)), draw(st.booleans())


def _nullable(t: pa.DataType):
    """pandas' nullable dtype for an Arrow type, where it has one."""
    if pa.types.is_integer(t):
        return pd.api.types.pandas_dtype(str(t).replace("int", "Int").replace("uInt", "UInt"))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pd.StringDtype("python")
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    return None


def _given(table: pa.Table, route: str, d) -> tuple[object, pa.Table]:
    """The input in the form ``route`` gives it to the job, and the Arrow table of what the
    job gets (the key values it must group by)."""
    if route == "arrow":
        return table, table
    if route == "parquet":
        pq.write_table(table, d / "in.parquet")
        return str(d / "in.parquet"), pq.read_table(d / "in.parquet")
    if route == "polars":
        import polars as pl

        frame = pl.from_arrow(table)
        return frame, frame.to_arrow()
    if route == "pandas":
        frame = table.to_pandas()
    else:
        frame = table.to_pandas(types_mapper=_nullable)
    return frame, pa.Table.from_pandas(frame, preserve_index=False)


def _model_value(v):
    """A key value as the model compares it: every null (None, NaN, NaT) one None; -0.0 is
    0.0 already for ``==``; temporal values as integers (exact, whatever the unit)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


NANOSECONDS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _python_values(column: pa.ChunkedArray) -> list:
    """The values of a column as the model holds them: temporal values as Python ints
    (nanoseconds; days for dates), exact whatever the unit; dictionaries by value."""
    t = column.type
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
        t = t.value_type
    if pa.types.is_date(t):
        column = column.cast(pa.int32())
    elif pa.types.is_timestamp(t) or pa.types.is_duration(t):
        step = NANOSECONDS[t.unit]
        return [None if v is None else v * step for v in column.cast(pa.int64()).to_pylist()]
    return [_model_value(v) for v in column.to_pylist()]


def _parse(segment: str, name: str, t: pa.DataType):
    """The value a directory name ``name=text`` holds, as a value of type ``t``."""
    key, text = segment.split("=", 1)
    assert unquote(key) == name
    if text == NULL:
        return None
    text = unquote(text)
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_duration(t):  # (Arrow parses no durations: they are named by their count)
        return _python_values(pa.chunked_array([pa.array([int(text)]).cast(t)]))[0]
    return _python_values(pa.chunked_array([pa.array([text]).cast(t)]))[0]


SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@given(case=cases())
@SETTINGS
def test_every_row_is_in_the_directory_of_its_own_key_value(tmp_path_factory, case):
    table, keys, route, keep_keys = case
    d = tmp_path_factory.mktemp("values")
    data, seen = _given(table, route, d)
    s = sk.partition(data, keys, str(d / "out"), by_value=True, layout=sk.Layout(keep_keys=keep_keys), progress=False)
    assert s.ok and s.rows_out == table.num_rows

    # the model: pandas groups the rows by their exact key values (Python objects)
    model = pd.DataFrame({k: pd.Series(_python_values(seen.column(k)), dtype=object) for k in keys})
    codes = model.groupby(keys, dropna=False, sort=False).ngroup().to_numpy()  # (its keys would be floats)
    groups: dict[tuple, set[int]] = {}
    for i, code in enumerate(codes):
        groups.setdefault(int(code), set()).add(i)
    groups = {tuple(model.iloc[min(rows)]): rows for rows in groups.values()}
    rid = seen.column("rid").to_pylist()

    got: dict[str, set[int]] = {}
    where = {}
    for root, _, files in os.walk(d / "out"):
        for f in files:
            rel = os.path.relpath(root, d / "out")
            part = pq.read_table(os.path.join(root, f), partitioning=None)
            got.setdefault(rel, set()).update(part.column("rid").to_pylist())
            if keep_keys:  # the kept key columns hold the directory's value
                value = tuple(_parse(seg, k, seen.schema.field(k).type) for seg, k in zip(rel.split(os.sep), keys))
                kept = list(zip(*(_python_values(part.column(k)) for k in keys)))
                assert all(row == value for row in kept), (rel, kept)
            where[rel] = tuple(
                _parse(seg, k, seen.schema.field(k).type) for seg, k in zip(rel.split(os.sep), keys)
            )
    # one directory per value, and each value's rows (by their position in the input) in it
    assert len(got) == len(groups), (sorted(got), list(groups))
    back = {where[rel]: rows for rel, rows in got.items()}
    position = {r: i for i, r in enumerate(rid)}
    assert {key: {position[r] for r in rows} for key, rows in back.items()} == groups


# -- pandas dtypes -------------------------------------------------------------------------------


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 4, n)
    null = rng.random(n) < 0.25
    return pd.DataFrame({
        "k": pd.Series([f"key{v % 3}" for v in small], dtype="string"),
        "i": pd.array([None if z else int(v) * BIG + 1 for v, z in zip(small, null)], dtype="Int64"),
        "s": pd.array([None if z else f"s{v}" for v, z in zip(small, null)], dtype="string"),
        "c": pd.Categorical([None if z else f"c{v}" for v, z in zip(small, null)], categories=["c0", "c1", "c2", "c3"]),
        "t": pd.Series(pd.to_datetime(small, unit="D").tz_localize("Europe/Paris")).where(~null),
        "rid": np.arange(n),
    })


def _same_dtypes(got: pd.DataFrame, want: pd.DataFrame) -> None:
    for c in want.columns:
        if isinstance(want[c].dtype, pd.CategoricalDtype):  # (a file's dictionary holds the values it uses)
            assert isinstance(got[c].dtype, pd.CategoricalDtype), (c, got[c].dtype)
            assert set(got[c].cat.categories) <= set(want[c].cat.categories)
        else:
            assert got[c].dtype == want[c].dtype, (c, got[c].dtype, want[c].dtype)


@pytest.mark.parametrize("given_as", ["frame", "parquet"])
def test_files_by_value_read_back_with_the_inputs_pandas_dtypes(tmp_path, given_as):
    df = _frame()
    if given_as == "parquet":
        df.to_parquet(tmp_path / "in.parquet", index=False)
    data = df if given_as == "frame" else str(tmp_path / "in.parquet")
    sk.partition(data, "k", str(tmp_path / "hash"), npartitions=2, progress=False)
    sk.partition(data, "k", str(tmp_path / "value"), by_value=True, progress=False)
    sk.partition(data, "k", str(tmp_path / "kept"), by_value=True, layout=sk.Layout(keep_keys=True), progress=False)
    data_columns = df.drop(columns="k")
    for f in sorted((tmp_path / "hash").iterdir()):
        _same_dtypes(pd.read_parquet(f), df)
    for d in sorted((tmp_path / "value").iterdir()):
        for f in sorted(d.iterdir()):
            got = pd.read_parquet(f)
            assert "k" not in got.columns
            _same_dtypes(got, data_columns)
            value = unquote(d.name.split("=", 1)[1])
            want = df[df["k"] == value].drop(columns="k").reset_index(drop=True)
            pd.testing.assert_frame_equal(got.sort_values("rid").reset_index(drop=True), want, check_categorical=False)
    for d in sorted((tmp_path / "kept").iterdir()):
        for f in sorted(d.iterdir()):
            _same_dtypes(pd.read_parquet(f), df)  # the key too: it is in the file
    # the dataset: the data columns as in the input; the key from the directory names, as
    # pyarrow's hive partitioning types them (a category of strings)
    whole = pd.read_parquet(tmp_path / "value")
    _same_dtypes(whole, data_columns)
    assert isinstance(whole["k"].dtype, pd.CategoricalDtype)
    whole = whole.sort_values("rid").reset_index(drop=True)
    assert whole["k"].astype(str).tolist() == df["k"].tolist()


# -- appends compare the key columns' types ----------------------------------------------------


def _walk(root) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(r, f), root): open(os.path.join(r, f), "rb").read()
            for r, _, fs in os.walk(root) for f in fs}


TYPE_CASES = [
    # (old keys, new keys, the types the error names)
    (pa.array([1, 2, 1], pa.int64()), pa.array(["1", "x", "2"]), ("string", "int64")),
    (pa.array([0, 1_700_000_000, 0], pa.timestamp("s")), pa.array([0, 1_700_000_000_000_000, 5], pa.timestamp("us")),
     ("timestamp[us]", "timestamp[s]")),
    (pa.array([1.5, 2.0, 1.5]), pa.array([1, 2, 3], pa.int64()), ("int64", "double")),
    (pa.array(["a", "b", "a"]), pa.array([1, 2, 3], pa.int64()), ("int64", "string")),
]


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
@pytest.mark.parametrize("keep_keys", [False, True])
@pytest.mark.parametrize("old, new, types", TYPE_CASES, ids=["str-int", "us-s", "int-float", "int-str"])
def test_an_append_with_keys_of_another_type_is_refused_in_one_line_and_changes_nothing(
        tmp_path, old, new, types, fmt, keep_keys):
    layout = sk.Layout(keep_keys=keep_keys)
    sk.partition(pa.table({"k": old, "v": [1, 2, 3]}), "k", str(tmp_path / "out"), by_value=True, format=fmt,
                 layout=layout, progress=False)
    before = _walk(tmp_path / "out")
    words = f"key column 'k' is {types[0]} in the new rows but {types[1]} in --out"
    with pytest.raises(JobError, match=re.escape(words)) as e:
        sk.partition(pa.table({"k": new, "v": [4, 5, 6]}), "k", str(tmp_path / "out"), by_value=True, format=fmt,
                     exists="append", layout=layout, progress=False)
    assert isinstance(e.value, ShuffleKitError) and "\n" not in str(e.value)
    assert _walk(tmp_path / "out") == before
    assert sorted(os.listdir(tmp_path)) == ["out"]
    # the same type appends
    sk.partition(pa.table({"k": old, "v": [4, 5, 6]}), "k", str(tmp_path / "out"), by_value=True, format=fmt,
                 exists="append", layout=layout, progress=False)


def test_an_append_to_directories_another_writer_named_checks_their_names(tmp_path):
    # CSV files (and datasets other writers made) record no key types: the names are checked
    t = pa.table({"t": pa.array([0, 1_700_000_000], pa.timestamp("s")), "v": [1, 2]})
    sk.partition(t, "t", str(tmp_path / "out"), by_value=True, format="csv", progress=False)
    before = _walk(tmp_path / "out")
    finer = pa.table({"t": pa.array([0, 5], pa.timestamp("ms")), "v": [3, 4]})
    with pytest.raises(JobError, match="key column 't' is timestamp.ms. in the new rows, but the directory 't=1970"):
        sk.partition(finer, "t", str(tmp_path / "out"), by_value=True, format="csv", exists="append", progress=False)
    assert _walk(tmp_path / "out") == before
    sk.partition(t, "t", str(tmp_path / "out"), by_value=True, format="csv", exists="append", progress=False)
    assert len(_walk(tmp_path / "out")) == 2 * len(before)
    # pyarrow's own dataset: its -0 is this job's 0, an equal value
    import pyarrow.dataset as ds

    f = pa.table({"f": [-0.0, 1.0], "v": [1, 2]})
    ds.write_dataset(f, tmp_path / "theirs", format="parquet", partitioning=["f"], partitioning_flavor="hive")
    sk.partition(f, "f", str(tmp_path / "theirs"), by_value=True, exists="append", progress=False)
    back = ds.dataset(tmp_path / "theirs", partitioning="hive").to_table()
    assert sorted(back.column("v").to_pylist()) == [1, 1, 2, 2]
