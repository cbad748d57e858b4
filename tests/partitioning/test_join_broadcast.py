"""The join job's right side held whole (a dimension table): the left streamed through it
gives the same rows, in the same files and the same order within each, as staging both
sides; anything it cannot hold exactly is staged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shuffle_kit.partitioning import join_job
from shuffle_kit.partitioning.join_job import join

from .test_join import assert_same_rows, model, write


def files(out) -> dict[str, pd.DataFrame]:
    return {f: pq.read_table(os.path.join(out, f)).to_pandas() for f in sorted(os.listdir(out))}


def staged(monkeypatch, *args, **kwargs):
    """The job with its right side staged whatever it holds."""
    with monkeypatch.context() as m:
        m.setattr(join_job, "_broadcast", lambda joined, lsource, rsource, pair_bytes: (None, rsource, 0))
        return join(*args, **kwargs)


def keys_of(values: np.ndarray, dtype: str) -> pd.Series:
    """Integer ``values`` as keys of ``dtype``: the integers, their strings, or instants."""
    if dtype == "str":
        return pd.Series([f"key{v}" for v in values], dtype="str")
    if dtype == "str-of-one-width":  # (ids, codes: hashed and compared by words in place)
        return pd.Series([f"k{v:012d}" for v in values], dtype="str")
    if dtype.startswith("datetime"):
        return pd.Series(pd.to_datetime(values, unit="s", utc=True)).astype(dtype)
    return pd.Series(values.astype(dtype))


def write_arrow(path, df: pd.DataFrame, nfiles: int = 2) -> str:
    """``df`` as ``nfiles`` Parquet files without pandas' metadata (as Arrow, polars or
    DuckDB write them); the directory."""
    os.makedirs(path, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    for i, rows in enumerate(np.array_split(np.arange(len(df)), nfiles)):
        pq.write_table(table.take(pa.array(rows, pa.int64())), os.path.join(path, f"f{i}.parquet"))
    return str(path)


@given(seed=st.integers(0, 2**16), wide=st.booleans(), null_keys=st.booleans(), npartitions=st.integers(1, 5),
       dtype=st.sampled_from(["int64", "int32", "uint16", "str", "str-of-one-width", "datetime64[ms, UTC]"]),
       by_pandas=st.booleans())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_held_whole_gives_the_staged_rows_in_the_same_files_and_order(tmp_path_factory, monkeypatch, seed, wide,
                                                                      null_keys, npartitions, dtype, by_pandas):
    """Inputs pandas wrote (its metadata in their schemas) or Arrow did (none): the files'
    schemas, metadata included, are the same either way the right side goes."""
    rng = np.random.default_rng(seed)
    d = tmp_path_factory.mktemp("b")
    n, m = 2000, 300
    step = 1 if not wide or dtype == "uint16" else 10**6  # keys spanning few values, or hashed
    right_keys = keys_of(rng.permutation(m) * step, dtype)
    left_keys = keys_of(rng.integers(0, m + 50, n) * step, dtype)  # some match nothing
    if null_keys:
        if dtype.startswith(("int", "uint")):
            left_keys = left_keys.astype(dtype.capitalize().replace("Uint", "UInt"))
        left_keys[rng.random(n) < 0.1] = None
    writer = write if by_pandas else write_arrow
    left = writer(d / "left", pd.DataFrame({
        "k": left_keys, "x": rng.random(n), "s": pd.Series(rng.choice(["a", "bb", None], n), dtype="str"),
        "t": pd.to_datetime(rng.integers(0, 10**6, n), unit="s"),
    }), nfiles=3)
    right = writer(d / "right", pd.DataFrame({"k": right_keys, "x": rng.integers(0, 9, m),
                                              "label": pd.Series([f"L{i}" for i in range(m)], dtype="str")}))
    held = join(left, right, "k", str(d / "held"), npartitions=npartitions, progress=False, threads=2)
    both = staged(monkeypatch, left, right, "k", str(d / "staged"), npartitions=npartitions, progress=False, threads=2)
    assert held.right_held and not both.right_held
    assert held.sizes.rows.tolist() == both.sizes.rows.tolist() and held.rows_out == both.rows_out
    got, expected = files(d / "held"), files(d / "staged")
    assert got.keys() == expected.keys()
    for name in got:
        pd.testing.assert_frame_equal(got[name], expected[name])
        schema = pq.read_schema(d / "held" / name)
        assert schema.equals(pq.read_schema(d / "staged" / name), check_metadata=True)
        assert (b"pandas" in (schema.metadata or {})) == by_pandas
    joined, expected_rows = pd.read_parquet(d / "held"), model(left, right, on="k", how="inner")
    if by_pandas or not null_keys:
        assert_same_rows(joined, expected_rows)
    else:  # pandas reads an integer key with nulls as float64; none is left in the files
        assert_same_rows(joined, expected_rows.astype(joined.dtypes.to_dict()))


@pytest.fixture
def dimension(tmp_path):
    rng = np.random.default_rng(3)
    left = write(tmp_path / "left", pd.DataFrame({"k": rng.integers(0, 500, 5000), "a": np.arange(5000)}), nfiles=2)
    return tmp_path, left, rng


@pytest.mark.parametrize("right, how, limit", [
    (pd.DataFrame({"k": np.arange(400) // 2, "b": np.arange(400)}), "inner", "64MB"),  # keys repeat
    (pd.DataFrame({"k": pd.array([1, None, 3], "Int64"), "b": [1, 2, 3]}), "inner", "64MB"),  # a null key
    (pd.DataFrame({"k": np.arange(400), "b": np.arange(400)}), "left", "64MB"),  # unmatched rows kept
    (pd.DataFrame({"k": np.arange(200_000), "b": np.arange(200_000)}), "inner", "8MB"),  # more than a pair's share
], ids=["repeating", "null", "left-join", "too-large"])
def test_what_cannot_be_held_exactly_is_staged(dimension, right, how, limit):
    tmp_path, left, _ = dimension
    r = write(tmp_path / "right", right)
    s = join(left, r, "k", str(tmp_path / "out"), how=how, npartitions=4, memory_limit=limit, progress=False)
    assert not s.right_held and s.ok
    assert_same_rows(pd.read_parquet(tmp_path / "out"), model(left, r, on="k", how=how))


def test_float_keys_are_staged_and_integer_and_string_ones_held(dimension):
    # pandas matches NaN with NaN: float keys go the way that joins as pandas does
    tmp_path, left, _ = dimension
    frame = pd.DataFrame({"k": np.arange(500), "b": np.arange(500)})
    for kind, held in (("int64", True), ("str", True), ("float64", False)):
        lk = write(tmp_path / f"l{kind}", pd.read_parquet(left).astype({"k": kind}))
        rk = write(tmp_path / f"r{kind}", frame.astype({"k": kind}))
        s = join(lk, rk, "k", str(tmp_path / f"out{kind}"), npartitions=3, progress=False)
        assert s.right_held == held
        assert_same_rows(pd.read_parquet(tmp_path / f"out{kind}"), model(lk, rk, on="k"))


def test_held_whole_files_are_the_same_for_1_2_and_5_threads(tmp_path):
    rng = np.random.default_rng(5)
    n = 200_000
    left = write(tmp_path / "l", pd.DataFrame({"k": rng.integers(0, 5000, n), "x": rng.random(n),
                                               "s": rng.choice(["a", "bb", None], n)}), nfiles=3)
    right = write(tmp_path / "r", pd.DataFrame({"k": np.arange(5000), "y": rng.integers(0, 9, 5000)}))
    contents = []
    for threads in (1, 2, 5):
        out = tmp_path / f"out{threads}"
        s = join(left, right, "k", str(out), npartitions=6, threads=threads, memory_limit="16MB", progress=False)
        assert s.right_held
        contents.append({f: (out / f).read_bytes() for f in sorted(os.listdir(out))})
    assert contents[0] == contents[1] == contents[2] and len(contents[0]) == 6


def test_the_summary_says_the_right_side_was_held(dimension):
    tmp_path, left, _ = dimension
    r = write(tmp_path / "right", pd.DataFrame({"k": np.arange(500), "b": np.arange(500)}))
    s = join(left, r, "k", str(tmp_path / "out"), npartitions=3, progress=False)
    assert json.loads(json.dumps(s.to_dict()))["right_held"] is True
    assert any("right side held in memory" in line for line in s.lines())


@pytest.mark.slow
def test_peak_memory_holds_with_the_right_side_held(tmp_path):
    from shuffle_kit.byte_sizes import check_memory_limit
    from shuffle_kit.partitioning.job import OVERHEAD
    from tests.helpers.cli import cli

    rng = np.random.default_rng(6)
    n, m = 4_000_000, 300_000  # the right side takes most of a pair's share of 64MB
    left = write(tmp_path / "l", pd.DataFrame({"k": rng.integers(0, m, n), "x": rng.random(n),
                                               "s": rng.choice(["ab", "cd", "ef"], n)}), nfiles=4)
    right = write(tmp_path / "r", pd.DataFrame({"k": rng.permutation(m), "y": rng.random(m)}))
    r = cli("join", left, "--with", right, "--on", "k", "--out", tmp_path / "out", "--memory-limit", "64MB",
            "--npartitions", 32, "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["right_held"] and summary["rows_out"] == n
    assert summary["peak_rss"] <= check_memory_limit("64MB") + OVERHEAD, summary["peak_rss"] / 2**20


def test_a_dimension_table_is_held_whole_even_beside_an_input_partitioned_on_the_keys(tmp_path, caplog):
    # an inner join with a right side of unique keys that fits memory streams the left
    # through it (nothing staged): that stays so when the left is the partition job's output
    import shuffle_kit

    lf = pd.DataFrame({"k": np.arange(300) % 40, "a": np.arange(300)})
    dim = pd.DataFrame({"k": np.arange(50), "name": [f"n{i}" for i in range(50)]})
    shuffle_kit.partition(write(tmp_path / "l", lf), "k", str(tmp_path / "L"), npartitions=4, progress=False)
    right = write(tmp_path / "dim", dim)
    for how, held in (("inner", True), ("left", False)):
        caplog.clear()
        with caplog.at_level("INFO", logger="shuffle_kit.partitioning.join_job"):
            s = join(str(tmp_path / "L"), right, "k", str(tmp_path / f"out_{how}"), how=how, progress=False)
        assert s.right_held == held and s.partitions == 4
        assert ("the left input is hash-partitioned" in caplog.text) == (not held)
        assert_same_rows(pd.read_parquet(tmp_path / f"out_{how}"), pd.merge(lf, dim, on="k", how=how))


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_string_columns_of_both_sides_keep_their_type_and_true_statistics(tmp_path, fmt):
    # the left's and the right's strings reach the Parquet writer as dictionaries (both
    # inputs store them with one): the files read back as the inputs' type, with a
    # dictionary page, and each row group's min and max are those of its own values
    rng = np.random.default_rng(8)
    n, m = 30_000, 2_000
    words = np.array([f"w{i:05d}" for i in range(m)])
    left = write(tmp_path / "l", pd.DataFrame({"k": rng.integers(0, m, n), "s": rng.choice(words[:300], n)}),
                 nfiles=3)
    right = write(tmp_path / "r", pd.DataFrame({"k": rng.permutation(m), "label": words}))
    s = join(left, right, "k", str(tmp_path / "out"), npartitions=5, format=fmt, memory_limit="16MB",
             progress=False)
    assert s.right_held and s.rows_out == n
    read = {"parquet": pd.read_parquet, "arrow": lambda p: pd.concat(
        pa.ipc.open_file(os.path.join(p, f)).read_pandas() for f in sorted(os.listdir(p))),
        "csv": lambda p: pd.concat(pd.read_csv(os.path.join(p, f)) for f in sorted(os.listdir(p)))}[fmt]
    got = read(tmp_path / "out")
    assert_same_rows(got.astype({"s": "str", "label": "str"}), model(left, right, on="k", how="inner"))
    if fmt != "parquet":
        return
    types = {name: pq.read_schema(os.path.join(path, sorted(os.listdir(path))[0])).field(name).type
             for name, path in (("s", left), ("label", right))}
    for f in sorted(os.listdir(tmp_path / "out")):
        pf = pq.ParquetFile(tmp_path / "out" / f)
        assert pf.schema_arrow.field("s").type == types["s"] and pf.schema_arrow.field("label").type == types["label"]
        for g in range(pf.metadata.num_row_groups):
            values = pf.read_row_group(g)
            for name in ("s", "label"):
                column = pf.metadata.row_group(g).column(pf.schema_arrow.get_field_index(name))
                assert column.has_dictionary_page
                stats = column.statistics
                assert (stats.min, stats.max) == (pc.min(values[name]).as_py(), pc.max(values[name]).as_py())


def test_a_right_file_narrower_than_the_right_side_is_held_with_the_side_s_types(tmp_path):
    # one right file holds the key as int32, another (empty) as int64: the side is int64,
    # and a left key beyond int32 finds nothing rather than failing a cast
    d = tmp_path
    r = pa.table({"k": pa.array(np.arange(2000), pa.int32()), "name": [f"n{i}" for i in range(2000)]})
    os.makedirs(d / "r")
    pq.write_table(r, d / "r" / "r0.parquet")
    pq.write_table(r.slice(0, 0).cast(pa.schema([("k", pa.int64()), ("name", pa.string())])), d / "r" / "r1.parquet")
    os.makedirs(d / "l")
    pq.write_table(pa.table({"k": pa.array([1, 2**40, 1999], pa.int64())}), d / "l" / "l.parquet")
    s = join(str(d / "l"), str(d / "r"), "k", str(d / "out"), progress=False, threads=2)
    assert s.right_held and s.rows_out == 2
    assert_same_rows(pd.read_parquet(d / "out"), pd.merge(pd.read_parquet(d / "l"), pd.read_parquet(d / "r"), on="k"))


@pytest.mark.slow
def test_a_wide_right_side_held_keeps_the_memory_limit(tmp_path):
    # each left row takes 800 bytes of the right's strings: the left's chunks are joined
    # in slices whose joined rows fit a chunk, not whole
    from shuffle_kit.byte_sizes import check_memory_limit
    from shuffle_kit.partitioning.job import OVERHEAD
    from tests.helpers.cli import cli

    rng = np.random.default_rng(9)
    m, n = 25_000, 3_000_000
    right = pa.table({"k": np.arange(m), **{f"s{j}": [f"{j}-{i:0198d}" for i in range(m)] for j in range(4)}})
    os.makedirs(tmp_path / "r")
    feather.write_feather(right, str(tmp_path / "r" / "r.arrow"), compression="uncompressed")
    os.makedirs(tmp_path / "l")
    pq.write_table(pa.table({"k": rng.integers(0, m, n)}), tmp_path / "l" / "l.parquet")
    r = cli("join", tmp_path / "l", "--with", tmp_path / "r", "--on", "k", "--out", tmp_path / "out",
            "--memory-limit", "256MB", "--npartitions", 4, "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["right_held"] and summary["rows_out"] == n
    assert summary["peak_rss"] <= check_memory_limit("256MB") + OVERHEAD, summary["peak_rss"] / 2**20


@pytest.mark.parametrize("held, keys", [(True, "dense"), (False, "dense"), (True, "sparse"), (True, "string")])
def test_a_join_of_arrow_files_never_loads_pandas(tmp_path, held, keys):
    """The pandas' dtypes of a join of Arrow's types are its inputs' own: nothing asks
    pandas (whose import is most of a small join's time), whether the right side is held
    whole (its key dense integers, integers spanning far more values than they are, or
    strings) or, holding a key twice, staged and joined pair by pair."""
    n, m = 5000, 300
    rng = np.random.default_rng(3)
    os.makedirs(tmp_path / "l"), os.makedirs(tmp_path / "r")
    values = {"dense": np.arange(m), "sparse": rng.choice(2**62, m, replace=False) - 2**61,
              "string": pa.array([f"k-{i}-é" for i in range(m)])}[keys]
    left = pa.table({"k": pc.take(values, pa.array(rng.integers(0, m, n))),
                     "s": pa.array([f"s{i % 7}" for i in range(n)])})
    rows = rng.permutation(m) if held else np.concatenate([rng.permutation(m), rng.integers(0, m, 50)])
    right = pa.table({"k": pc.take(values, pa.array(rows)), "w": rng.random(len(rows))})
    pq.write_table(left, tmp_path / "l" / "l.parquet")
    pq.write_table(right, tmp_path / "r" / "r.parquet")
    code = (f"import sys, shuffle_kit.partitioning.join_job as j; "
            f"s = j.join({str(tmp_path / 'l')!r}, {str(tmp_path / 'r')!r}, 'k', {str(tmp_path / 'out')!r}, "
            f"npartitions=4, progress=False); print(s.right_held, s.rows_out, 'pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    expected = left.to_pandas().merge(right.to_pandas(), on="k")
    assert done.stdout.split() == [str(held), str(len(expected)), "False"]
    got = pq.read_table(tmp_path / "out").to_pandas()
    assert got.dtypes.tolist() == expected.dtypes.tolist()
    order = ["k", "s", "w"]
    pd.testing.assert_frame_equal(got.sort_values(order, ignore_index=True),
                                  expected.sort_values(order, ignore_index=True))


def test_a_held_dimension_joined_on_keys_of_other_names_gives_both_key_columns(tmp_path):
    """The joined rows take the right's key only where the join's columns have it (keys of
    other names: pandas keeps both), as pandas merges."""
    rng = np.random.default_rng(5)
    n, m = 30_000, 2_000
    os.makedirs(tmp_path / "l"), os.makedirs(tmp_path / "r")
    pq.write_table(pa.table({"a": rng.integers(0, m + 50, n), "x": rng.random(n)}), tmp_path / "l" / "l.parquet")
    pq.write_table(pa.table({"b": rng.permutation(m), "w": [f"w{i}" for i in range(m)]}), tmp_path / "r" / "r.parquet")
    summary = join(str(tmp_path / "l"), str(tmp_path / "r"), None, str(tmp_path / "out"), left_on="a", right_on="b",
                   npartitions=4, progress=False)
    expected = pd.merge(pd.read_parquet(tmp_path / "l"), pd.read_parquet(tmp_path / "r"), left_on="a", right_on="b")
    got = pd.read_parquet(tmp_path / "out")
    assert summary.right_held and list(got.columns) == ["a", "x", "b", "w"]
    order = list(expected.columns)
    pd.testing.assert_frame_equal(got.sort_values(order, ignore_index=True),
                                  expected.sort_values(order, ignore_index=True))


@pytest.mark.parametrize("key_type", [pa.string(), pa.large_string(), pa.int64()])
def test_joined_rows_carry_their_key_s_hashes_when_the_lookup_hashes_them(key_type):
    """A dimension found by hash (strings) gives the joined rows with their key's hashes, of
    the joined key column (unmatched rows left out), for the engine's partition ids; one
    found by its integers' bits gives the rows alone."""
    from shuffle_kit.kernels.arrow_join import ArrowJoin
    from shuffle_kit.kernels.hashing import hash_columns
    from shuffle_kit.kernels.joins import Join
    from shuffle_kit.partitioning.engine import HashedChunk
    from shuffle_kit.partitioning.join_broadcast import Broadcast

    keys = [f"k{i:09d}" for i in range(50)] if key_type != pa.int64() else list(range(0, 500, 10))
    right = pa.table({"id": pa.array(keys[::2], key_type), "v": np.arange(25)})
    left = pa.table({"key": pa.array([keys[i % 50] for i in range(7, 300, 3)] + [None], key_type)})
    plan = ArrowJoin.plan(Join(["key"], ["id"], "inner", ("_x", "_y"), on=False), left.schema, right.schema,
                          pa.schema([("key", key_type), ("id", key_type), ("v", pa.int64())]))
    through = Broadcast.of(plan, [right], right.schema)
    out = through(left)
    if key_type == pa.int64():
        assert isinstance(out, pa.Table)
        return
    assert isinstance(out, HashedChunk) and out.on == ("key",)
    assert 0 < out.table.num_rows < left.num_rows  # (some left rows found nothing)
    assert out.hashes.tolist() == hash_columns([out.table.column("key")]).tolist()


@pytest.mark.parametrize("dictionary", [True, False])
def test_the_key_keeps_its_inputs_dictionary_in_the_files(tmp_path, dictionary):
    # an integer key the left's files store with a dictionary is stored with one in the
    # joined files too (a file holds one hash partition's keys), as the partition job does
    rng = np.random.default_rng(3)
    os.makedirs(tmp_path / "l")
    os.makedirs(tmp_path / "r")
    left = pa.table({"k": rng.integers(0, 300, 5000), "x": rng.random(5000)})
    pq.write_table(left, tmp_path / "l" / "l.parquet", use_dictionary=["k"] if dictionary else False)
    right = pa.table({"k": np.arange(300), "y": rng.random(300)})
    pq.write_table(right, tmp_path / "r" / "r.parquet")
    s = join(str(tmp_path / "l"), str(tmp_path / "r"), "k", str(tmp_path / "out"), npartitions=3, progress=False)
    assert s.right_held
    for f in sorted(os.listdir(tmp_path / "out")):
        meta = pq.ParquetFile(tmp_path / "out" / f).metadata
        chunks = [meta.row_group(g).column(meta.schema.names.index(name)) for g in range(meta.num_row_groups)
                  for name in ("k", "x")]
        assert [c.has_dictionary_page for c in chunks] == [dictionary, False] * meta.num_row_groups
    got = pq.read_table(tmp_path / "out").to_pandas()
    assert_same_rows(got, pd.merge(left.to_pandas(), right.to_pandas(), on="k"))
