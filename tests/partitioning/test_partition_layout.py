"""Output controls of the partition job (``shuffle_kit.Layout``, ``exists="append"``, hive
names), against simple models: the rows read back are the input's (as a multiset, or in
the model's order), every file keeps its row cap and its row groups their size, files are
sorted where asked (also through the merge of several sorted runs), appends read back as
the union of both inputs, kept key columns equal their directory's value, and the
directory names are the ones pyarrow's own hive partitioning makes."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.kernels.hashing import partition_ids
from shuffle_kit.partitioning import engine, sorting
from shuffle_kit.partitioning.job import JobError

WORDS = ["a", "", "b/../c", "é", "x" * 30, None, "B", "a b"]
SLOW_OK = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _table(seed: int, rows: int, distinct: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "k": pa.array(rng.integers(0, distinct, rows), mask=rng.random(rows) < 0.1),
        "w": pa.array([WORDS[i] for i in rng.integers(0, len(WORDS), rows)], pa.string()),
        "x": np.round(rng.random(rows), 2),  # ties, so stability shows
        "row": np.arange(rows),
    })


def _model_sorted(table: pa.Table, by: tuple[str, ...], descending: tuple[str, ...] = (),
                  na_position: str = "last") -> list[int]:
    """The rows (their ``row``) in pandas' stable order (ascending but ``descending``), NaN
    and nulls alike ``na_position``."""
    df = table.to_pandas()
    if by:
        df = df.sort_values(list(by), ascending=[c not in descending for c in by], kind="stable",
                            na_position=na_position)
    return df["row"].tolist()


def _read(path) -> pa.Table:
    path = str(path)
    if path.endswith(".arrow"):
        with pa.OSFile(path, "rb") as f:
            return pa.ipc.open_file(f).read_all()
    return pq.read_table(path)


def _groups(path) -> list[int]:
    """Rows of each row group (record batch) of a file."""
    path = str(path)
    if path.endswith(".arrow"):
        with pa.OSFile(path, "rb") as f:
            r = pa.ipc.open_file(f)
            return [r.get_batch(i).num_rows for i in range(r.num_record_batches)]
    meta = pq.read_metadata(path)
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def _check_series(files: list, max_rows: int | None, group: int | None) -> None:
    """Every file but the last holds ``max_rows`` rows; every row group but a file's last, ``group``."""
    sizes = [sum(_groups(f)) for f in files]
    if max_rows is None:
        assert len(files) == 1
    else:
        assert all(s == max_rows for s in sizes[:-1]) and 0 <= sizes[-1] <= max_rows
    if group is not None:
        for f in files:
            groups = _groups(f)
            assert all(g == group for g in groups[:-1]) and all(0 < g <= group for g in groups[-1:])


@given(
    seed=st.integers(0, 2**16), rows=st.integers(0, 2500), n=st.integers(1, 4),
    max_rows=st.sampled_from([None, 1, 37, 400]), group=st.sampled_from([None, 5, 128]),
    sort_by=st.sampled_from([(), ("x",), ("w", "x")]), budget=st.sampled_from([50_000, 2**30]),
    fmt=st.sampled_from(["parquet", "arrow"]), cuts=st.lists(st.integers(0, 2500), max_size=4),
    empty_files=st.booleans(), distinct=st.sampled_from([2, 7]),
)
@settings(deadline=None, max_examples=50)
def test_hash_files_keep_the_rows_their_caps_and_order(tmp_path_factory, seed, rows, n, max_rows, group, sort_by,
                                                       budget, fmt, cuts, empty_files, distinct):
    if max_rows == 1 and rows > 400:
        rows = 400  # a file per row: keep the example quick
    table = _table(seed, rows, distinct)
    bounds = sorted({0, rows, *(c for c in cuts if c < rows)})
    chunks = [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]
    chunks = [c.set_column(1, "w", c.column("w").dictionary_encode()) for c in chunks]  # as the job reads them
    d = tmp_path_factory.mktemp("out")
    layout = sk.Layout(max_rows_per_file=max_rows, row_group_size=group, sort_by=sort_by, empty_files=empty_files)
    files = engine.PartFiles.of(str(d), table.schema, fmt, "none", dictionary=["w"], layout=layout)
    written = engine.partition_into(chunks, ["k"], n, files, engine.Resources(budget, spill_dir=str(d)))
    assert written == rows
    ids = partition_ids(table, ["k"], n)
    names = sorted(os.listdir(d))
    ext = ".parquet" if fmt == "parquet" else ".arrow"
    for p in range(n):
        mine = [f for f in names if f.startswith(f"part-{p:05d}")]
        want = table.filter(pa.array(ids == p))
        if not want.num_rows and not empty_files:  # no rows: no file
            assert mine == []
            continue
        if max_rows is None:
            assert mine == [f"part-{p:05d}{ext}"]
        else:  # a series numbered from 0 (with empty_files, the first even when the partition is empty)
            assert mine == [f"part-{p:05d}-{i:05d}{ext}" for i in range(len(mine))]
        _check_series([d / f for f in mine], max_rows, group)
        got = pa.concat_tables([_read(d / f) for f in mine])
        assert got.schema.equals(table.schema, check_metadata=False)
        assert got.column("row").to_pylist() == _model_sorted(want, sort_by)
    assert len(names) == sum(1 for f in names if f.startswith("part-"))  # no run files left behind


@given(
    seed=st.integers(0, 2**16), rows=st.integers(0, 1500), batch=st.sampled_from([1_500, 8_000, 10**7]),
    by=st.sampled_from([("x",), ("k", "x"), ("w",), ("w", "k"), ("f",)]),
    cuts=st.lists(st.integers(0, 3000), max_size=5),
    dictionary=st.booleans(),
    descending=st.sampled_from([(), ("x",), ("k", "w", "x", "f")]),
    na_position=st.sampled_from(["last", "first"]),
)
@settings(deadline=None, max_examples=40)
def test_sorted_stream_equals_a_stable_sort_for_any_batch_size(
    tmp_path_factory, seed, rows, batch, by, cuts, dictionary, descending, na_position
):
    # small batches: many runs, merged FAN_IN at a time over several passes
    table = _table(seed, rows)
    f = np.random.default_rng(seed).random(rows)
    f[f < 0.1] = np.nan  # NaN and null: both missing, in input order among themselves (as pandas)
    table = table.append_column("f", pa.array(f, mask=np.arange(rows) % 7 == 0))
    if dictionary:
        table = table.set_column(1, "w", table.column("w").dictionary_encode())
    bounds = sorted({0, rows, *(c for c in cuts if c < rows)})
    pieces = [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]
    d = tmp_path_factory.mktemp("runs")
    order = sorting.key_order(table.schema, by, descending, na_position)
    got = list(sorting.sorted_stream(pieces, order, table.schema, batch, str(d)))
    assert os.listdir(d) == []
    out = pa.concat_tables(got) if got else table.slice(0, 0)
    plain = table.set_column(1, "w", table.column("w").cast(pa.string())) if dictionary else table
    assert out.column("row").to_pylist() == _model_sorted(plain, by, descending, na_position)
    assert sorting.sorted_table(table, order).column("row").to_pylist() == out.column("row").to_pylist()


def test_a_partition_larger_than_the_budget_is_sorted_through_merged_runs(tmp_path, monkeypatch):
    table = _table(3, 300_000, distinct=1)  # one key: one partition of ~8 MB under a 2 MiB limit
    pq.write_table(table, tmp_path / "in.parquet")
    runs = []
    real = sorting._SortedRun.write
    monkeypatch.setattr(sorting._SortedRun, "write", classmethod(lambda cls, *a: runs.append(1) or real(*a)))
    s = sk.partition(str(tmp_path / "in.parquet"), "k", str(tmp_path / "out"), npartitions=2, memory_limit="2MiB",
                     layout=sk.Layout(sort_by=["w", "x"], max_rows_per_file=50_000), progress=False)
    assert s.ok and len(runs) > sorting.FAN_IN  # several runs, merged in more than one pass
    files = sorted((tmp_path / "out").iterdir())
    back = pa.concat_tables([pq.read_table(f) for f in files])
    ids = partition_ids(table, ["k"], 2)
    want = []
    for p in range(2):
        want += _model_sorted(table.filter(pa.array(ids == p)), ("w", "x"))
    assert back.column("row").to_pylist() == want
    assert [f.name for f in files] == sorted(f.name for f in files)
    assert sorted(os.listdir(tmp_path)) == ["in.parquet", "out"]  # no runs left


def _walk(root) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(r, f), root): open(os.path.join(r, f), "rb").read()
            for r, _, fs in os.walk(root) for f in fs}


@given(
    seed=st.integers(0, 2**16), rows=st.integers(1, 1500), max_rows=st.sampled_from([None, 3, 250]),
    group=st.sampled_from([None, 4, 100]), sort_by=st.sampled_from([(), ("x",), ("w", "row")]),
    keep_keys=st.booleans(), limit=st.sampled_from(["2MiB", "1GB"]),
)
@SLOW_OK
def test_files_by_value_keep_rows_caps_keys_and_order(tmp_path_factory, seed, rows, max_rows, group, sort_by,
                                                      keep_keys, limit):
    d = tmp_path_factory.mktemp("job")
    table = _table(seed, rows, distinct=4)
    pq.write_table(table, d / "in.parquet", row_group_size=300)
    layout = sk.Layout(max_rows_per_file=max_rows, row_group_size=group, keep_keys=keep_keys, sort_by=sort_by)
    s = sk.partition(str(d / "in.parquet"), "k", str(d / "out"), by_value=True, layout=layout, memory_limit=limit,
                     progress=False)
    assert s.ok
    keys = pc.unique(table.column("k")).to_pylist()
    names = [f"k={'__HIVE_DEFAULT_PARTITION__' if v is None else v}" for v in keys]
    assert sorted(os.listdir(d / "out")) == sorted(names)
    rows_back = []
    for value in keys:
        folder = d / "out" / f"k={'__HIVE_DEFAULT_PARTITION__' if value is None else value}"
        files = sorted(folder.iterdir())
        if max_rows is not None or sort_by:  # a value's rows in one series of files, in order
            assert [f.name for f in files] == [f"part-{i:05d}.parquet" for i in range(len(files))]
            _check_series(files, max_rows, group)
        got = pa.concat_tables([pq.read_table(f) for f in files])
        assert ("k" in got.column_names) == keep_keys
        if keep_keys:
            assert got.column("k").to_pylist() == [value] * got.num_rows and got.schema.field("k").type == pa.int64()
        mine = table.filter(pc.is_null(table.column("k")) if value is None else pc.equal(table.column("k"), value))
        if sort_by or max_rows is not None:
            assert got.column("row").to_pylist() == _model_sorted(mine, sort_by)
        for f in files:  # sorted within each file
            part = pq.read_table(f)
            assert part.column("row").to_pylist() == _model_sorted(part, sort_by)
        rows_back += got.column("row").to_pylist()
    assert sorted(rows_back) == list(range(rows))


@pytest.mark.parametrize("by_value", [False, True])
@given(
    seed=st.integers(0, 2**16), first=st.integers(0, 800), second=st.integers(1, 800),
    max_rows=st.sampled_from([None, 100]),
)
@SLOW_OK
def test_appended_datasets_read_back_as_the_union(tmp_path_factory, by_value, seed, first, second, max_rows):
    d = tmp_path_factory.mktemp("job")
    a, b = _table(seed, first), _table(seed + 1, second)
    b = b.set_column(3, "row", pc.add(b.column("row"), 10**6))
    pq.write_table(a, d / "a.parquet")
    pq.write_table(b, d / "b.parquet")
    kw = dict(by_value=by_value, npartitions=None if by_value else 3, exists="append", progress=False,
              layout=sk.Layout(max_rows_per_file=max_rows))
    sk.partition(str(d / "a.parquet"), "k", str(d / "out"), **kw)  # into nothing: a plain output, named for appends
    before = _walk(d / "out")
    sk.partition(str(d / "b.parquet"), "k", str(d / "out"), **kw)
    after = _walk(d / "out")
    assert all(after[f] == data for f, data in before.items())  # nothing old replaced or changed
    hive = ds.partitioning(pa.schema([("k", pa.int64())]), flavor="hive")
    back = ds.dataset(d / "out", partitioning=hive if by_value else None).to_table()
    assert sorted(back.column("row").to_pylist()) == sorted(a.column("row").to_pylist() + b.column("row").to_pylist())
    if not by_value:  # the same keys in the same partition numbers: part-00002-* holds them all
        ids = partition_ids(pa.concat_tables([a, b]), ["k"], 3)
        for p in range(3):
            mine = [pq.read_table(d / "out" / f) for f in sorted(after) if f.startswith(f"part-{p:05d}-")]
            want = pa.concat_tables([a, b]).filter(pa.array(ids == p))
            got = pa.concat_tables(mine).column("row").to_pylist() if mine else []
            assert sorted(got) == sorted(want.column("row").to_pylist())
    assert sorted(os.listdir(d)) == ["a.parquet", "b.parquet", "out"]


def test_append_refuses_other_columns_in_one_line_and_changes_nothing(tmp_path):
    t = _table(0, 500)
    pq.write_table(t, tmp_path / "a.parquet")
    sk.partition(str(tmp_path / "a.parquet"), "k", str(tmp_path / "out"), npartitions=2, progress=False)
    before = _walk(tmp_path / "out")
    cases = [
        (t.set_column(2, "x", pa.array(np.arange(500))), "column 'x' is int64 in the new rows but double"),
        (t.drop_columns(["w"]), "column 'w' of the files in --out"),
        (t.append_column("extra", t.column("row")), "column 'extra' of the new rows is not in the files"),
    ]
    for i, (other, words) in enumerate(cases):
        pq.write_table(other, tmp_path / f"b{i}.parquet")
        with pytest.raises(JobError, match=words) as e:
            sk.partition(str(tmp_path / f"b{i}.parquet"), "k", str(tmp_path / "out"), npartitions=2, exists="append",
                         progress=False)
        assert "\n" not in str(e.value)
    with pytest.raises(JobError, match="hive directories k=..."):
        sk.partition(str(tmp_path / "a.parquet"), "k", str(tmp_path / "out"), by_value=True, exists="append",
                     progress=False)
    with pytest.raises(JobError, match="not a csv file"):
        sk.partition(str(tmp_path / "a.parquet"), "k", str(tmp_path / "out"), format="csv", exists="append",
                     progress=False)
    assert _walk(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_failure_while_appending_takes_back_every_moved_file(tmp_path, monkeypatch):
    from shuffle_kit.partitioning import publish_local

    t = _table(1, 2000, distinct=20)
    pq.write_table(t, tmp_path / "a.parquet")
    sk.partition(str(tmp_path / "a.parquet"), "k", str(tmp_path / "out"), by_value=True, progress=False)
    before = _walk(tmp_path / "out")
    real, calls = publish_local.move_new, []

    def move(src, dst):
        calls.append(dst)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(publish_local, "move_new", move)
    # new values too: their directories are made, then taken back
    pq.write_table(t.set_column(0, "k", pc.add(t.column("k"), 10)), tmp_path / "b.parquet")
    with pytest.raises(OSError, match="No space left"):
        sk.partition(str(tmp_path / "b.parquet"), "k", str(tmp_path / "out"), by_value=True, exists="append",
                     progress=False)
    assert len(calls) == 5
    assert _walk(tmp_path / "out") == before
    assert sorted(os.listdir(tmp_path / "out")) == sorted({f.split("/")[0] for f in before})
    assert sorted(os.listdir(tmp_path)) == ["a.parquet", "b.parquet", "out"]


KILLED_APPEND = """
import os, signal, sys
import shuffle_kit as sk
from shuffle_kit.partitioning import publish_local
real, moved = publish_local.move_new, []
def move(src, dst):
    if len(moved) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
    moved.append(dst)
publish_local.move_new = move
sk.partition(sys.argv[1], "k", sys.argv[2], by_value=True, exists="append", progress=False)
"""


@pytest.mark.parametrize("moves", [0, 5])
def test_an_append_killed_while_moving_its_files_is_taken_back_by_the_next_job(tmp_path, moves):
    import subprocess
    import sys

    t = _table(1, 2000, distinct=20)
    pq.write_table(t, tmp_path / "a.parquet")
    sk.partition(str(tmp_path / "a.parquet"), "k", str(tmp_path / "out"), by_value=True, progress=False)
    before = _walk(tmp_path / "out")
    # new values too: the killed job made their directories
    b = t.set_column(0, "k", pc.add(t.column("k"), 10)).set_column(3, "row", pc.add(t.column("row"), 10**6))
    pq.write_table(b, tmp_path / "b.parquet")
    killed = subprocess.run([sys.executable, "-c", KILLED_APPEND, str(tmp_path / "b.parquet"), str(tmp_path / "out"),
                             str(moves)], capture_output=True, text=True)
    # killed -9 after so many of its files were moved into the output
    assert killed.returncode == -9, killed.stderr
    if moves:
        assert _walk(tmp_path / "out") != before
    c = t.set_column(3, "row", pc.add(t.column("row"), 2 * 10**6))
    pq.write_table(c, tmp_path / "c.parquet")
    sk.partition(str(tmp_path / "c.parquet"), "k", str(tmp_path / "out"), by_value=True, exists="append",
                 progress=False)
    after = _walk(tmp_path / "out")
    assert all(after[f] == data for f, data in before.items())
    hive = ds.partitioning(pa.schema([("k", pa.int64())]), flavor="hive")
    back = ds.dataset(tmp_path / "out", partitioning=hive).to_table()
    # the union of a and c: nothing of the killed append is left
    assert sorted(back.column("row").to_pylist()) == sorted(t.column("row").to_pylist() + c.column("row").to_pylist())
    assert sorted(os.listdir(tmp_path)) == ["a.parquet", "b.parquet", "c.parquet", "out"]


def test_append_to_an_object_store_is_refused_in_one_line(tmp_path):
    pq.write_table(_table(0, 10), tmp_path / "in.parquet")
    with pytest.raises(JobError, match="--exists append: only for a local --out") as e:
        sk.partition(str(tmp_path / "in.parquet"), "k", "memory://bucket/out", exists="append", progress=False)
    assert "\n" not in str(e.value)


def test_append_never_replaces_a_file_with_the_same_name(tmp_path):
    from shuffle_kit.partitioning import publish_local

    (tmp_path / "a").write_bytes(b"new")
    (tmp_path / "b").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="exists already"):
        publish_local.move_new(str(tmp_path / "a"), str(tmp_path / "b"))
    assert (tmp_path / "b").read_bytes() == b"old" and (tmp_path / "a").read_bytes() == b"new"
    publish_local.move_new(str(tmp_path / "a"), str(tmp_path / "c"))
    assert (tmp_path / "c").read_bytes() == b"new" and not (tmp_path / "a").exists()


HIVE_VALUES = {
    "i": pa.array([1, -5, None, 0], pa.int64()),
    "u": pa.array([1, 200, None, 3], pa.uint8()),
    "f": pa.array([1.0, 0.5, None, 1e20], pa.float64()),
    "g": pa.array([-0.0, 1.5e-7, float("inf"), 0.1], pa.float32()),
    "b": pa.array([True, False, None, True]),
    "s": pa.array(["a b", "a/b", "é", "a:b~+-_.!*'()%=&?#"]),
    "e": pa.array(["", None, "..", "x\x01"]),
    "d": pa.array([dt.date(2024, 5, 1), None, dt.date(1970, 1, 1), dt.date(2024, 5, 1)]),
    "ts": pa.array(
        [dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(2024, 1, 2), dt.datetime(1, 1, 1)], pa.timestamp("s")
    ),
    "tu": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 6), dt.datetime(2024, 1, 2), None, None], pa.timestamp("us")),
    "tn": pa.array([10**18 + 7, 0, None, 5], pa.timestamp("ns")),
    "tz": pa.array(
        [dt.datetime(2024, 1, 2, 3, 4, 5, 6), None, dt.datetime(2024, 7, 1), dt.datetime(2024, 1, 2)],
        pa.timestamp("us", "Europe/Paris"),
    ),
    "utc": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5), None, None, None], pa.timestamp("ms", "UTC")),
}


@pytest.mark.parametrize("column", sorted(HIVE_VALUES))
def test_hive_directories_are_named_as_pyarrow_names_them(tmp_path, column):
    values = HIVE_VALUES[column]
    table = pa.table({column: values, "v": pa.array(range(len(values)))})
    ds.write_dataset(table, tmp_path / "pyarrow", format="parquet", partitioning=[column], partitioning_flavor="hive")
    with pa.OSFile(str(tmp_path / "in.arrow"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:  # every type as it is
        w.write_table(table)
    sk.partition(str(tmp_path / "in.arrow"), column, str(tmp_path / "ours"), by_value=True, progress=False)
    # the one difference: pyarrow names -0.0 "-0", a directory apart from 0.0's "0"; here one value, "0"
    theirs = {d.replace("=-0", "=0") if d.endswith("=-0") else d for d in os.listdir(tmp_path / "pyarrow")}
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(theirs)


@pytest.mark.parametrize("type_", [pa.float16(), pa.float32(), pa.float64()])
@pytest.mark.parametrize("keep_keys", [False, True])
def test_zero_and_minus_zero_are_one_directory_in_any_order_and_across_appends(tmp_path, type_, keep_keys):
    layout = sk.Layout(keep_keys=keep_keys)
    for i, zeros in enumerate([[-0.0, 0.0], [0.0, -0.0], [-0.0], [0.0]]):
        table = pa.table({"f": pa.array(np.array([*zeros, 1.5]), type_), "v": pa.array([i] * (len(zeros) + 1))})
        pq.write_table(table, tmp_path / f"in{i}.parquet")
        sk.partition(str(tmp_path / f"in{i}.parquet"), "f", str(tmp_path / "out"), by_value=True, exists="append",
                     layout=layout, progress=False)
        assert sorted(os.listdir(tmp_path / "out")) == ["f=0", "f=1.5"]
    zero = pq.read_table(tmp_path / "out" / "f=0", partitioning=None)
    assert sorted(zero.column("v").to_pylist()) == [0, 0, 1, 1, 2, 3]
    assert pq.read_table(tmp_path / "out" / "f=1.5", partitioning=None).num_rows == 4


def test_two_keys_and_an_append_to_a_dataset_pyarrow_wrote(tmp_path):
    table = pa.table({"f": [1.0, 2.5, 1.0, None], "t": pa.array([0, 1, 0, 2], pa.timestamp("us")), "v": [1, 2, 3, 4]})
    ds.write_dataset(table, tmp_path / "out", format="parquet", partitioning=["f", "t"], partitioning_flavor="hive")
    pq.write_table(table, tmp_path / "in.parquet")
    before = sorted(r for r, _, fs in os.walk(tmp_path / "out") if fs)
    sk.partition(str(tmp_path / "in.parquet"), ["f", "t"], str(tmp_path / "out"), by_value=True, exists="append",
                 progress=False)
    assert sorted(r for r, _, fs in os.walk(tmp_path / "out") if fs) == before  # no value split over two directories
    back = ds.dataset(tmp_path / "out", partitioning="hive").to_table()
    assert sorted(back.column("v").to_pylist()) == [1, 1, 2, 2, 3, 3, 4, 4]


@pytest.mark.parametrize("limit", ["1GB", "2MiB"])
@pytest.mark.parametrize("by_value", [False, True])
def test_files_with_every_control_are_identical_for_1_2_and_5_threads(tmp_path, limit, by_value):
    table = _table(7, 30_000, distinct=300 if not by_value else 12)
    os.makedirs(tmp_path / "in")
    pq.write_table(table, tmp_path / "in" / "a.parquet", row_group_size=3000)
    layout = sk.Layout(max_rows_per_file=1000, row_group_size=300, keep_keys=by_value, sort_by=("x",))
    outputs = []
    for threads in (1, 2, 5):
        out = tmp_path / f"out{threads}"
        s = sk.partition(str(tmp_path / "in"), "k", str(out), npartitions=None if by_value else 7, by_value=by_value,
                         memory_limit=limit, threads=threads, layout=layout, progress=False)
        assert s.ok
        outputs.append(_walk(out))
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0]) > (7 if not by_value else 13)


def test_a_row_group_size_that_does_not_fit_is_refused_or_takes_sorted_runs(tmp_path, monkeypatch):
    table = _table(2, 20_000)
    pq.write_table(table, tmp_path / "in.parquet")
    with pytest.raises(JobError, match="--row-group-size 10,000,000: .* at most [0-9,]+ rows") as e:
        sk.partition(str(tmp_path / "in.parquet"), "k", str(tmp_path / "out"), memory_limit="16MB", progress=False,
                     layout=sk.Layout(row_group_size=10_000_000))
    assert "\n" not in str(e.value) and sorted(os.listdir(tmp_path)) == ["in.parquet"]
    # 64 writers each holding 15,000 rows (~0.5 MB) outgrow a quarter of the 100 MB that
    # a 200MB limit holds: sorted runs
    row_bytes = table.nbytes // table.num_rows
    assert engine.keeps_files_open(64, 10**8)
    assert not engine.keeps_files_open(64, 10**8, engine.WRITER_BYTES + 15_000 * row_bytes)
    ways = []
    real = engine._SortedRuns.__init__
    monkeypatch.setattr(engine._SortedRuns, "__init__", lambda self, *a: ways.append("runs") or real(self, *a))
    s = sk.partition(str(tmp_path / "in.parquet"), "k", str(tmp_path / "out"), npartitions=64, memory_limit="200MB",
                     layout=sk.Layout(row_group_size=15_000), progress=False)
    assert s.ok and ways == ["runs"]
    sk.partition(str(tmp_path / "in.parquet"), "k", str(tmp_path / "o2"), npartitions=64, memory_limit="200MB",
                 layout=sk.Layout(row_group_size=150), progress=False)
    assert ways == ["runs"]  # small groups: files stay open
    for f in os.listdir(tmp_path / "o2"):
        _check_series([tmp_path / "o2" / f], None, 150)


@pytest.mark.parametrize("kwargs, words", [
    ({"layout": sk.Layout(keep_keys=True)}, "--keep-keys is for --by-value"),
    ({"layout": sk.Layout(sort_by="nope")}, "--sort-by column 'nope' is not in the input"),
    ({"layout": sk.Layout(sort_by="l")}, "--sort-by column 'l' holds list<"),
    ({"layout": sk.Layout(row_group_size=10), "format": "csv"}, "--row-group-size: CSV files have no row groups"),
    ({"layout": sk.Layout(max_rows_per_file=0)}, "--max-rows-per-file must be a whole number"),
    ({"layout": sk.Layout(sort_by="x,x")}, "--sort-by names a column twice"),
    ({"layout": {"sort_by": "x"}}, "layout must be a shuffle_kit.Layout"),
    ({"exists": "merge"}, "--exists must be error, overwrite or append"),
])
def test_bad_layouts_are_one_line_and_write_nothing(tmp_path, kwargs, words):
    pq.write_table(pa.table({"k": [1, 2], "x": [1.0, 2.0], "l": [[1], [2]]}), tmp_path / "in.parquet")
    with pytest.raises(JobError, match=words) as e:
        sk.partition(str(tmp_path / "in.parquet"), "k", str(tmp_path / "out"), progress=False, **kwargs)
    assert "\n" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == ["in.parquet"]


def test_pandas_and_the_model_agree_on_where_nulls_go():
    # the documented order: ascending, nulls last, as pandas' sort_values by default
    t = pa.table({"x": [2.0, None, 1.0, None, 0.5], "row": range(5)})
    assert sorting.sorted_table(t, ["x"]).column("row").to_pylist() == _model_sorted(t, ("x",)) == [4, 2, 0, 1, 3]
    assert pd.Series([2.0, None, 1.0]).sort_values().index.tolist() == [2, 0, 1]


@pytest.mark.parametrize("na_position", ["last", "first"])
@pytest.mark.parametrize("descending", [(), ("f",)])
def test_nan_and_null_are_one_missing_value_in_input_order_as_pandas(tmp_path, na_position, descending):
    # Arrow alone puts NaN before null; pandas holds both as NaN, stably, at na_position
    nan = float("nan")
    f = pa.array([nan, 2.0, None, 1.0, nan, None, 2.0, None, nan, 0.0])
    t = pa.table({"f": f, "row": range(len(f))})
    pq.write_table(t, tmp_path / "in.parquet", row_group_size=3)
    want = _model_sorted(t, ("f",), descending, na_position)
    for limit in ("1GB", "1MiB"):
        out = tmp_path / f"out-{limit}"
        sk.partition(str(tmp_path / "in.parquet"), "row", str(out), npartitions=1, progress=False, memory_limit=limit,
                     layout=sk.Layout(sort_by="f"), descending=descending, na_position=na_position)
        assert _read(next(out.iterdir())).column("row").to_pylist() == want
    missing = [0, 2, 4, 5, 7, 8]  # NaN and null in input order: pandas' order, spelled out
    numbers = [9, 3, 1, 6] if not descending else [1, 6, 3, 9]
    assert want == (numbers + missing if na_position == "last" else missing + numbers)
