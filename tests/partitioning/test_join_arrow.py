"""The join job joins pairs as Arrow (no pandas) where pandas' merge could not differ: the
files then hold what the pandas path writes (rows in the same order, values, types, row
groups), and other joins keep pandas."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shuffle_kit.kernels.arrow_join import ArrowJoin
from shuffle_kit.kernels.join_indices import inner_positions
from shuffle_kit.kernels.joins import Join
from shuffle_kit.partitioning import join_job
from shuffle_kit.partitioning.join_job import join

from .test_join import assert_same_rows, model, write


def run(tmp_path, name: str, left: str, right: str, arrow: bool, monkeypatch, **kwargs) -> tuple[dict, int]:
    """The output files as read back (Arrow's schema, values in order, row groups), and how
    many pairs the Arrow path joined (both sides
    staged, a dimension table too)."""
    joined = []
    real = ArrowJoin.join

    def counted(self, lt, rt):
        out = real(self, lt, rt)
        joined.append(out is not None)
        return out

    with monkeypatch.context() as m:
        m.setattr(ArrowJoin, "join", counted)
        m.setattr(join_job, "_broadcast", lambda joined, lsource, rsource, pair_bytes: (None, rsource, 0))
        if not arrow:
            m.setattr(ArrowJoin, "plan", classmethod(lambda cls, *a: None))
        out = tmp_path / name
        join(left, right, out=str(out), progress=False, **kwargs)
    return {f: contents(out / f) for f in sorted(os.listdir(out))}, sum(joined)


def contents(path) -> tuple:
    """What a reader sees of a Parquet file: its schema (Arrow's, with its metadata), its
    rows and its row groups' sizes; the bytes differ where the Arrow path writes a staged
    dictionary (its entries in another order) that the pandas path encodes again."""
    f = pq.ParquetFile(path)
    return f.schema_arrow, f.read().to_pydict(), [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)]


def key_values(kind: str, codes: np.ndarray) -> pd.Series:
    if kind == "int64":
        return pd.Series(codes * 7 - 3, dtype="int64")
    if kind == "str":
        return pd.Series([f"key-{c}" for c in codes], dtype="str")
    if kind == "datetime":
        return pd.Series(pd.to_datetime(codes, unit="h", utc=True))
    return pd.Series(codes % 2 == 0)  # bool


@given(kind=st.sampled_from(["int64", "str", "datetime", "bool"]), seed=st.integers(0, 2**16),
       nkeys=st.integers(1, 2), npartitions=st.integers(1, 4), null_key=st.booleans())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arrow_pairs_are_what_pandas_pairs_give(tmp_path_factory, monkeypatch, kind, seed, nkeys, npartitions,
                                                    null_key):
    rng = np.random.default_rng(seed)
    d = tmp_path_factory.mktemp("j")
    frames = []
    for side, n in (("l", 300), ("r", 120)):
        f = pd.DataFrame({"k": key_values(kind, rng.integers(0, 25, n))})  # duplicates on both sides
        if nkeys == 2:
            f["k2"] = rng.integers(0, 3, n)
        f[f"{side}_n"] = np.arange(n)
        f["v"] = rng.random(n)  # in both: suffixed
        f[f"{side}_s"] = pd.Series([f"{side}{i}" if i % 5 else None for i in range(n)], dtype="str")
        frames.append(f)
    if null_key:  # null keys match null keys, as in pandas
        for f, rows in zip(frames, ([3, 7], [4])):
            if kind in ("int64", "bool"):
                f["k"] = f["k"].astype({"int64": "Int64", "bool": "boolean"}[kind])
            f.loc[rows, "k"] = None
    left, right = write(d / "left", frames[0]), write(d / "right", frames[1])
    on = ["k", "k2"][:nkeys]
    kwargs = dict(on=on, how="inner", npartitions=npartitions, threads=2)
    with_arrow, arrow_pairs = run(d, "arrow", left, right, True, monkeypatch, **kwargs)
    without, none = run(d, "pandas", left, right, False, monkeypatch, **kwargs)
    assert none == 0 and arrow_pairs > 0
    assert with_arrow == without
    assert_same_rows(pd.read_parquet(d / "arrow"), model(left, right, on=on, how="inner"))


@pytest.mark.parametrize("how", ["left", "right", "outer"])
def test_joins_that_keep_unmatched_rows_stay_with_pandas(tmp_path, how):
    left = pa.schema([("k", pa.int64()), ("a", pa.float64())])
    right = pa.schema([("k", pa.int64()), ("b", pa.int64())])
    out = pa.schema([("k", pa.int64()), ("a", pa.float64()), ("b", pa.int64())])
    assert ArrowJoin.plan(Join(["k"], ["k"], "inner", ("_x", "_y"), on=True), left, right, out) is not None
    assert ArrowJoin.plan(Join(["k"], ["k"], how, ("_x", "_y"), on=True), left, right, out) is None


@pytest.mark.parametrize("left_type, right_type", [
    (pa.float64(), pa.float64()),  # pandas matches NaN with NaN
    (pa.int64(), pa.int32()),  # pandas casts: left to the plan as two types
    (pa.list_(pa.int64()), pa.list_(pa.int64())),
])
def test_keys_arrow_could_match_otherwise_than_pandas_stay_with_pandas(left_type, right_type):
    left, right = pa.schema([("k", left_type), ("a", pa.int64())]), pa.schema([("k", right_type), ("b", pa.int64())])
    out = pa.schema([("k", left_type), ("a", pa.int64()), ("b", pa.int64())])
    assert ArrowJoin.plan(Join(["k"], ["k"], "inner", ("_x", "_y"), on=True), left, right, out) is None


def test_names_that_are_not_pandas_own_stay_with_pandas():
    left, right = pa.schema([("k", pa.int64()), ("v", pa.int64())]), pa.schema([("k", pa.int64()), ("v", pa.int64())])
    pandas_names = pa.schema([("k", pa.int64()), ("v_x", pa.int64()), ("v_y", pa.int64())])
    join = Join(["k"], ["k"], "inner", ("_x", "_y"), on=True)
    assert ArrowJoin.plan(join, left, right, pandas_names) is not None
    other = pa.schema([("k", pa.int64()), ("v_left", pa.int64()), ("v_right", pa.int64())])
    assert ArrowJoin.plan(join, left, right, other) is None


ROWS = st.lists(st.tuples(st.one_of(st.none(), st.integers(-3, 3)), st.sampled_from(["a", "b", "c", None])),
                max_size=30)


@given(ROWS, ROWS, st.integers(0, 60))
def test_inner_positions_are_pandas_merge_order(lrows, rrows, spread):
    """Left rows in order, each with its matches in the right's order, null keys matching
    null keys; integer keys spread wide (hashed) or narrow (their own codes), with a second
    key column of strings."""
    frames = []
    for rows, pos in ((lrows, "a"), (rrows, "b")):
        frames.append(pd.DataFrame({
            "k": pd.Series([k for k, _ in rows], dtype="Int64") * (1 << spread),
            "w": pd.Series([w for _, w in rows], dtype="str"),
            pos: np.arange(len(rows)),
        }))
    left, right = frames
    for on in (["k"], ["k", "w"]):
        expected = pd.merge(left, right, on=on, how="inner", sort=False)
        lpos, rpos = inner_positions([pa.array(left[c]) for c in on], [pa.array(right[c]) for c in on])
        np.testing.assert_array_equal(lpos, expected["a"].to_numpy())
        np.testing.assert_array_equal(rpos, expected["b"].to_numpy())


def test_every_left_row_matching_once_is_what_pandas_gives(tmp_path, monkeypatch):
    """Each left row with one match (a fact table and its dimension): the left's columns
    are taken as they are, in order."""
    rng = np.random.default_rng(7)
    n = 3000
    left = write(tmp_path / "left", pd.DataFrame({"id": rng.permutation(n), "k": rng.integers(0, 50, n),
                                                  "s": pd.Series([f"s{i % 7}" for i in range(n)], dtype="str")}))
    right = write(tmp_path / "right", pd.DataFrame({"k": rng.permutation(50), "name": [f"n{i}" for i in range(50)]}))
    kwargs = dict(on="k", how="inner", npartitions=3, threads=2)
    with_arrow, arrow_pairs = run(tmp_path, "arrow", left, right, True, monkeypatch, **kwargs)
    without, _ = run(tmp_path, "pandas", left, right, False, monkeypatch, **kwargs)
    assert arrow_pairs == 3 and with_arrow == without
    assert_same_rows(pd.read_parquet(tmp_path / "arrow"), model(left, right, on="k", how="inner"))


def test_a_float_nan_stays_nan_and_a_null_stays_null(tmp_path):
    """Arrow's float NaN and null are two values: every joined row keeps its own, pairs
    with null keys too (pandas' frame would read both back as null)."""
    n = 400
    k = pa.array([None if i % 9 == 0 else i % 40 for i in range(n)], pa.int64())
    x = pa.array([None if i % 7 == 0 else (float("nan") if i % 5 == 0 else float(i)) for i in range(n)])
    os.makedirs(tmp_path / "left")
    pq.write_table(pa.table({"k": k, "id": np.arange(n), "x": x}), tmp_path / "left" / "l.parquet")
    rk = pa.array([None, *range(40), *range(0, 40, 3)], pa.int64())  # repeated keys: pairs, not held whole
    os.makedirs(tmp_path / "right")
    pq.write_table(pa.table({"k": rk, "w": np.arange(len(rk))}), tmp_path / "right" / "r.parquet")
    join(str(tmp_path / "left"), str(tmp_path / "right"), on="k", out=str(tmp_path / "out"), npartitions=4,
         progress=False)
    out = pq.read_table(tmp_path / "out").sort_by([("id", "ascending"), ("w", "ascending")])
    expected = model(str(tmp_path / "left"), str(tmp_path / "right"), on="k", how="inner")
    assert out.column("id").to_pylist() == sorted(expected["id"].tolist())
    ids = out.column("id").to_numpy()
    got, given = out.column("x"), x.take(pa.array(ids))
    assert got.is_null().to_pylist() == given.is_null().to_pylist()
    assert np.array_equal(np.isnan(got.fill_null(0.0).to_numpy()), np.isnan(given.fill_null(0.0).to_numpy()))
    assert any(i % 9 == 0 for i in ids)  # null keys matched


TYPES = [pa.int8(), pa.int32(), pa.uint16(), pa.uint64(), pa.int64(), pa.float32(), pa.float64(), pa.bool_(),
         pa.string(), pa.large_string(), pa.date32(), pa.timestamp("s"), pa.timestamp("us", tz="UTC"),
         pa.timestamp("ns", tz="Europe/Paris"), pa.decimal128(5, 2), pa.list_(pa.int64())]


@given(key=st.sampled_from(TYPES), other_key=st.one_of(st.none(), st.sampled_from(TYPES)),
       lcols=st.lists(st.sampled_from(TYPES), max_size=3), rcols=st.lists(st.sampled_from(TYPES), max_size=3),
       shared=st.booleans(), suffix=st.sampled_from(["_y", ""]))
def test_a_join_of_arrow_types_has_the_schema_pandas_gives_it(key, other_key, lcols, rcols, shared, suffix):
    """What the join job asks pandas of inputs pandas did not describe, it takes from Arrow
    instead (:meth:`ArrowJoin.of_inputs`): the same plan, or None, and the same types."""
    from shuffle_kit.partitioning.join_pairs import pandas_schema

    left = pa.schema([("k", key), *((f"c{i}", t) for i, t in enumerate(lcols))])
    right = pa.schema([("k", other_key or key), *((f"c{i}" if shared else f"d{i}", t) for i, t in enumerate(rcols))])
    join = Join(["k"], ["k"], "inner", ("_x", suffix), on=True)
    own = ArrowJoin.of_inputs(join, left, right)
    try:
        asked = ArrowJoin.plan(join, left, right, pandas_schema(join, left, right))
    except (ValueError, TypeError):  # (keys pandas will not join, suffixes giving one name twice)
        asked = None
    assert (own is None) == (asked is None)
    if own is not None and asked is not None:
        assert own.schema.equals(asked.schema.remove_metadata()) and own.columns == asked.columns


@pytest.mark.parametrize("by_pandas", [True, False])
def test_staged_files_of_small_partitions_hold_a_large_dictionary_decoded_and_join_alike(tmp_path, by_pandas):
    """Under a small limit the sides are staged through sorted runs, and a partition of
    fewer rows than a string column's dictionary has values is staged with the column
    decoded, beside partitions that keep the dictionary: every pair still joins (it was
    refused, "Schema at index 0 was different"), as pandas joins the inputs."""
    rng = np.random.default_rng(22)
    n, m = 20_000, 1_500
    left = pd.DataFrame({"k": rng.integers(0, m, n), "s": [f"s{i}" for i in rng.integers(0, 3_000, n)]})
    right = pd.DataFrame({"k": rng.integers(0, m, 2 * m), "u": [f"u{i}" for i in range(2 * m)]})
    paths = []
    for name, df in (("l", left), ("r", right)):
        os.makedirs(tmp_path / name)
        table = pa.Table.from_pandas(df, preserve_index=False)
        pq.write_table(table if by_pandas else table.replace_schema_metadata(None), tmp_path / name / "f.parquet")
        paths.append(str(tmp_path / name))
    summary = join(*paths, "k", str(tmp_path / "out"), npartitions=40, memory_limit="8MB", progress=False)
    assert not summary.right_held
    assert_same_rows(pd.read_parquet(tmp_path / "out"), model(*paths, on="k"))
