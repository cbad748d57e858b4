"""``shuffle-kit partition`` and ``shuffle-kit demo``, run as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from shuffle_kit.io.readers import dictionary_encoded
from tests.helpers.cli import assert_one_line_error, cli, has_data, interrupted, wait_for

HOSTILE = ["../x", "a/b", "", None, "..", ".", "/etc/passwd", "__HIVE_DEFAULT_PARTITION__", "%41", "é z", "k=v", "a\\b"]


def frame(rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "k": rng.integers(0, 300, rows),
        "s": rng.choice(HOSTILE, rows),
        "x": rng.random(rows),
        "row": np.arange(rows),
    })


def write_inputs(tmp_path, df: pd.DataFrame, fmt: str = "parquet", nfiles: int = 2) -> list[str]:
    d = tmp_path / "in"
    d.mkdir(exist_ok=True)
    paths = []
    for i, part in enumerate(np.array_split(np.arange(len(df)), nfiles)):
        t = pa.Table.from_pandas(df.iloc[part], preserve_index=False)
        p = d / f"f{i}.{ {'parquet': 'parquet', 'csv': 'csv', 'arrow': 'arrow'}[fmt] }"
        if fmt == "parquet":
            pq.write_table(t, p)
        elif fmt == "csv":
            pacsv.write_csv(t, p)
        else:
            with pa.ipc.new_file(p, t.schema) as w:
                w.write_table(t)
        paths.append(str(p))
    return paths


def read_file(path: str) -> pa.Table:
    if path.endswith(".parquet"):
        return pq.read_table(path)
    if path.endswith(".arrow"):
        return pa.ipc.open_file(path).read_all()
    return pacsv.read_csv(path)


# 1GB: every file stays open and takes row groups while the input is read; 2MiB: too little
# for the files' writers, so through sorted runs merged into whole files
PATHS = ["1GB", "2MiB"]


@pytest.mark.parametrize("limit", PATHS)
@pytest.mark.parametrize("fmt", ["parquet", "csv", "arrow"])
def test_hash_partitions(tmp_path, fmt, limit):
    df = frame()
    inputs = write_inputs(tmp_path, df, fmt)
    out = tmp_path / "out"
    r = cli("partition", *inputs, "--on", "k", "--out", out, "--npartitions", 7, "--format", fmt,
            "--memory-limit", limit)
    assert r.returncode == 0, r.stderr
    assert "rows in     5,000" in r.stdout and "rows out    5,000" in r.stdout
    files = sorted(os.listdir(out))
    assert files == [f"part-{i:05d}.{fmt}" for i in range(7)]
    owner = {}
    rows = []
    for f in files:
        t = read_file(str(out / f))
        rows.extend(t.column("row").to_pylist())
        for k in set(t.column("k").to_pylist()):
            assert owner.setdefault(k, f) == f, f"key {k} in {owner[k]} and {f}"
        assert t.column("row").to_pylist() == sorted(t.column("row").to_pylist())  # input order kept
        if fmt == "parquet":  # keys and strings stored with a dictionary, read back with the input's types
            meta = pq.read_metadata(out / f)
            assert dictionary_encoded(meta, "k") and dictionary_encoded(meta, "s")
            assert not dictionary_encoded(meta, "x")
            assert t.schema.equals(pq.read_schema(inputs[0]), check_metadata=False)
    assert sorted(rows) == list(range(len(df)))
    # nothing left beside the output
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "arrow"])
def test_a_partition_without_rows_gets_a_file_only_with_empty_files(tmp_path, fmt):
    df = frame(500)
    df["k"] = df["k"] % 5  # 5 keys into 64 partitions: most partitions get no row
    inputs = write_inputs(tmp_path, df, fmt)
    for flag, out, files in (([], tmp_path / "lean", 5), (["--empty-files"], tmp_path / "full", 64)):
        r = cli("partition", *inputs, "--on", "k", "--out", out, "--npartitions", 64, "--format", fmt, "--json", *flag)
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        names = sorted(os.listdir(out))
        assert (summary["partitions"], summary["files"], len(names)) == (64, files, files)
        assert summary["sizes"]["count"] == 64 and summary["sizes"]["min"] == 0  # the empty ones counted
        rows = []
        for name in names:  # each file, empty or not, reads back with the columns
            t = read_file(str(out / name))
            assert t.column_names == list(df.columns)
            rows += t.column("row").to_pylist()
        assert sorted(rows) == list(range(len(df)))
    r = cli("partition", *inputs, "--on", "k", "--out", tmp_path / "v", "--by-value", "--empty-files")
    assert_one_line_error(r, "--empty-files is for hash partitions")


@pytest.mark.parametrize("limit", PATHS)
def test_keys_get_a_dictionary_only_where_the_inputs_had_one(tmp_path, limit):
    # keys stored plain in the input may be all distinct: a dictionary would be built,
    # abandoned and make the file larger
    t = pa.Table.from_pandas(frame(), preserve_index=False)
    pq.write_table(t, tmp_path / "plain.parquet", use_dictionary=["s"])
    out = tmp_path / "out"
    r = cli("partition", tmp_path / "plain.parquet", "--on", "k", "--out", out, "--npartitions", 3,
            "--memory-limit", limit)
    assert r.returncode == 0, r.stderr
    for f in os.listdir(out):
        meta = pq.read_metadata(out / f)
        assert not dictionary_encoded(meta, "k") and dictionary_encoded(meta, "s")


def test_glob_directory_and_multi_column_key(tmp_path):
    df = frame(3000)
    write_inputs(tmp_path, df, nfiles=3)
    out = tmp_path / "out"
    r = cli("partition", tmp_path / "in", "--on", "k,s", "--out", out, "--npartitions", 4)
    assert r.returncode == 0, r.stderr
    back = ds.dataset(str(out)).to_table().to_pandas()
    assert sorted(back["row"]) == list(range(len(df)))
    r = cli("partition", str(tmp_path / "in" / "*.parquet"), "--on", "k", "--on", "s", "--out", tmp_path / "o2",
            "--npartitions", 4)
    assert r.returncode == 0, r.stderr
    for f in os.listdir(out):  # same keys, same hash: same files
        assert pq.read_table(out / f).equals(pq.read_table(tmp_path / "o2" / f))


def test_by_value_hostile_values_stay_inside_out(tmp_path):
    df = frame(4000)
    inputs = write_inputs(tmp_path, df)
    out = tmp_path / "nest" / "out"
    r = cli("partition", *inputs, "--on", "s", "--out", out, "--by-value")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["in", "nest"]
    assert os.listdir(tmp_path / "nest") == ["out"]
    dirs = sorted(os.listdir(out))
    assert len(dirs) == len(set(df["s"].fillna("<null>")))
    for d in dirs:
        assert d.startswith("s=") and "/" not in d
        assert os.path.isdir(out / d) and os.listdir(out / d) == ["part-00000.parquet"]
    assert "s=__HIVE_DEFAULT_PARTITION__" in dirs and "s=" in dirs and "s=..%2Fx" in dirs
    for root, _dirs, _files in os.walk(out):  # no file anywhere but one level down
        assert os.path.realpath(root).startswith(os.path.realpath(out))
    back = ds.dataset(str(out), format="parquet", partitioning="hive").to_table().to_pandas()
    assert len(back) == len(df)
    merged = df.merge(back, on="row", suffixes=("", "_back"))
    assert len(merged) == len(df)
    expect = merged["s"].astype(object).where(merged["s"].notna(), None)
    got = merged["s_back"].astype(object).where(merged["s_back"].notna(), None)
    # null, '', '../x' all distinct; a string spelled like the null marker gets its own
    # directory (s=%5F_HIVE...), but hive readers decode it and then read it as null
    expect = [None if v == "__HIVE_DEFAULT_PARTITION__" else v for v in expect]
    assert list(expect) == list(got)
    assert "s=%5F_HIVE_DEFAULT_PARTITION__" in dirs
    # the key column is in the directory name, not in the files
    assert "s" not in pq.read_schema(out / dirs[0] / "part-00000.parquet").names


def test_by_value_two_columns_and_int_keys(tmp_path):
    df = pd.DataFrame({"a": [1, 2, 1, None, 2], "b": ["x", "y", "x", "z", "../y"], "v": range(5)})
    df["a"] = df["a"].astype("Int64")
    p = tmp_path / "in.parquet"
    df.to_parquet(p)
    out = tmp_path / "out"
    r = cli("partition", p, "--on", "a,b", "--out", out, "--by-value", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert sorted(os.path.relpath(os.path.join(r_, f), out) for r_, _, fs in os.walk(out) for f in fs) == [
        "a=1/b=x/part-00000.csv", "a=2/b=..%2Fy/part-00000.csv", "a=2/b=y/part-00000.csv",
        "a=__HIVE_DEFAULT_PARTITION__/b=z/part-00000.csv",
    ]
    assert pacsv.read_csv(out / "a=1" / "b=x" / "part-00000.csv").column("v").to_pylist() == [0, 2]


def test_by_value_partition_larger_than_memory_bounds_open_files(tmp_path):
    # one hash partition far above the budget: written piece by piece, several files per value
    rng = np.random.default_rng(1)
    rows = 400_000
    df = pd.DataFrame({"k": rng.integers(0, 200, rows), "pad": rng.random((rows,)), "row": np.arange(rows)})
    p = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), p, row_group_size=20_000)
    out = tmp_path / "out"
    r = cli("partition", p, "--on", "k", "--out", out, "--by-value", "--memory-limit", "4MB")
    assert r.returncode == 0, r.stderr
    assert len(os.listdir(out)) == 200
    back = ds.dataset(str(out), format="parquet", partitioning="hive").to_table()
    assert sorted(back.column("row").to_pylist()) == list(range(rows))
    k5 = pa.concat_tables(read_file(str(out / "k=5" / f)) for f in sorted(os.listdir(out / "k=5")))
    assert k5.column("row").to_pylist() == df.loc[df.k == 5, "row"].tolist()  # order kept across files


def test_nulls_and_empty_strings_kept_in_hash_mode(tmp_path):
    df = pd.DataFrame({"k": ["a", None, "", "a", None], "v": range(5)})
    p = tmp_path / "in.parquet"
    df.to_parquet(p)
    out = tmp_path / "out"
    r = cli("partition", p, "--on", "k", "--out", out, "--npartitions", 3)
    assert r.returncode == 0, r.stderr
    back = ds.dataset(str(out)).to_table().to_pandas()
    assert sorted(back["v"]) == list(range(5))


def test_refuses_non_empty_out_and_overwrites_on_request(tmp_path):
    inputs = write_inputs(tmp_path, frame(1000))
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    r = cli("partition", *inputs, "--on", "k", "--out", out, "--npartitions", 2)
    assert_one_line_error(r, "not empty", "--exists overwrite")
    assert r.returncode == 1
    assert os.listdir(out) == ["precious.txt"]
    r = cli("partition", *inputs, "--on", "k", "--out", out, "--npartitions", 2, "--exists", "overwrite")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["part-00000.parquet", "part-00001.parquet"]
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]
    # an empty directory is fine without --exists
    (tmp_path / "empty").mkdir()
    assert cli("partition", *inputs, "--on", "k", "--out", tmp_path / "empty", "--npartitions", 2).returncode == 0


def test_refuses_out_that_holds_the_input(tmp_path):
    inputs = write_inputs(tmp_path, frame(100))
    r = cli("partition", *inputs, "--on", "k", "--out", tmp_path / "in", "--exists", "overwrite")
    assert_one_line_error(r, "contains the input")
    assert sorted(os.listdir(tmp_path / "in")) == ["f0.parquet", "f1.parquet"]


@pytest.mark.parametrize(
    "args, words, code",
    [
        (["--on", "nope"], ["key column 'nope'", "columns: k, s, x, row"], 1),
        (["--on", "k", "--format", "xml"], ["--format", "invalid choice"], 2),
        (["--on", "k", "--npartitions", "0"], ["--npartitions", "at least 1"], 2),
        (["--on", "k", "--npartitions", "2", "--by-value"], ["not allowed with"], 2),
        (["--on", "k", "--memory-limit", "lots"], ["--memory-limit", "cannot read 'lots'"], 2),
        (["--on", "k", "--exists", "maybe"], ["--exists"], 2),
        (["--on", ","], ["empty column name"], 2),
        (["--on", "k", "--keep-keys"], ["--keep-keys is for --by-value"], 1),
        (["--on", "k", "--sort-by", "x,nope"],
         ["--sort-by column 'nope' is not in the input", "columns: k, s, x, row"], 1),
        (["--on", "k", "--row-group-size", "0"], ["--row-group-size", "at least 1"], 2),
        (["--on", "k", "--max-rows-per-file", "many"], ["--max-rows-per-file", "not a whole number"], 2),
        (["--on", "k", "--format", "csv", "--row-group-size", "5"],
         ["--row-group-size: CSV files have no row groups"], 1),
        (["--on", "k", "--row-group-size", "100000000", "--memory-limit", "20MB"],
         ["--row-group-size 100,000,000", "at most"], 1),
        ([], ["--on"], 2),
    ],
)
def test_bad_options_are_one_line(tmp_path, args, words, code):
    inputs = write_inputs(tmp_path, frame(100), nfiles=1)
    r = cli("partition", *inputs, "--out", tmp_path / "out", *args)
    assert_one_line_error(r, *words)
    assert r.returncode == code
    assert not (tmp_path / "out").exists()


def test_unreadable_and_missing_inputs_are_one_line(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet at all" * 10)
    r = cli("partition", bad, "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "cannot read", "bad.parquet")
    r = cli("partition", tmp_path / "missing.parquet", "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "no such input file", "missing.parquet")
    (tmp_path / "notes.txt").write_text("x")
    r = cli("partition", tmp_path / "notes.txt", "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "cannot tell the format")
    r = cli("partition", tmp_path / "*.nothing", "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "no file matches")
    assert not (tmp_path / "out").exists()


def test_unhashable_key_is_one_line(tmp_path):
    p = tmp_path / "in.parquet"
    pq.write_table(pa.table({"k": [[1], [2]], "v": [1, 2]}), p)
    r = cli("partition", p, "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "'k'")
    assert not (tmp_path / "out").exists()


def test_help_documents_options_with_examples():
    r = cli("partition", "--help")
    assert r.returncode == 0
    for word in ["--on", "--out", "--npartitions", "--by-value", "--format", "--memory-limit", "--tmp",
                 "--exists", "--compression", "--progress", "examples:", "shuffle-kit partition events/",
                 "--max-rows-per-file", "--row-group-size", "--keep-keys", "--sort-by", "append", "--empty-files",
                 "--by-range"]:
        assert word in r.stdout, word
    r = cli("--help")
    assert r.returncode == 0 and "partition" in r.stdout and "demo" in r.stdout and "serve" in r.stdout


def test_demo_runs_and_keeps_what_it_shows(tmp_path):
    r = cli("demo", "--rows", 20_000, "--out", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    assert "demo OK" in r.stdout
    assert "country=..%2Fetc" in r.stdout
    # every path it prints is there after it ends, and it says where
    assert f"in {tmp_path / 'd'}/" in r.stdout
    assert sorted(os.listdir(tmp_path / "d")) == ["by_country", "by_user", "orders"]
    assert (tmp_path / "d" / "by_country" / "country=..%2Fetc").is_dir()
    # run again there: its own output is replaced, a user's directory is refused and left alone
    assert cli("demo", "--rows", 3_000, "--out", tmp_path / "d").returncode == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    r = cli("demo", "--rows", 3_000, "--out", tmp_path / "mine")
    assert_one_line_error(r, "--out", "holds other files")
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]
    # without --out: a new directory in the current one, each run its own
    work = tmp_path / "work"
    work.mkdir()
    for name in ("shuffle-kit-demo", "shuffle-kit-demo-2"):
        r = cli("demo", "--rows", 5_000, cwd=work)
        assert r.returncode == 0 and "demo OK" in r.stdout, r.stderr
        assert f"are in {work / name}/" in r.stdout
    assert sorted(os.listdir(work)) == ["shuffle-kit-demo", "shuffle-kit-demo-2"]
    assert sorted(os.listdir(work / "shuffle-kit-demo-2")) == ["by_country", "by_user", "orders"]


def test_progress_is_off_when_not_a_tty_and_on_when_asked(tmp_path):
    inputs = write_inputs(tmp_path, frame(1000))
    r = cli("partition", *inputs, "--on", "k", "--out", tmp_path / "a", "--npartitions", 2)
    assert r.returncode == 0 and r.stderr == ""
    r = cli("partition", *inputs, "--on", "k", "--out", tmp_path / "b", "--npartitions", 2, "--progress")
    assert r.returncode == 0 and "read" in r.stderr


def test_compression_options(tmp_path):
    inputs = write_inputs(tmp_path, frame(1000))
    for c in ["lz4", "zstd", "none"]:
        out = tmp_path / f"o-{c}"
        r = cli("partition", *inputs, "--on", "k", "--out", out, "--npartitions", 1, "--compression", c)
        assert r.returncode == 0, r.stderr
        meta = pq.read_metadata(out / "part-00000.parquet")
        got = meta.row_group(0).column(0).compression
        assert got == {"lz4": "LZ4", "zstd": "ZSTD", "none": "UNCOMPRESSED"}[c] or (c == "lz4" and "LZ4" in got)


@pytest.mark.parametrize("limit", PATHS)
def test_rows_in_differs_from_rows_out_fails_and_writes_nothing(tmp_path, monkeypatch, capsys, limit):
    from shuffle_kit import cli as cli_mod
    from shuffle_kit.partitioning import engine

    inputs = write_inputs(tmp_path, frame(1000))
    real_batches, real_write = engine.conformed_batches, engine._write

    def lossy_batches(pieces, schema, target):  # drop a row of every partition
        for b in real_batches(pieces, schema, target):
            yield b.slice(1)

    def lossy_write(writer, pieces, schema):
        return real_write(writer, pieces[:-1] + [pieces[-1].slice(1)], schema)

    monkeypatch.setattr(engine, "conformed_batches", lossy_batches)  # sorted runs
    monkeypatch.setattr(engine, "_write", lossy_write)  # open files
    rc = cli_mod.main(["partition", *inputs, "--on", "k", "--out", str(tmp_path / "out"), "--npartitions", "2",
                       "--memory-limit", limit])
    captured = capsys.readouterr()
    assert rc == 1
    assert "MISMATCH" in captured.out
    assert "rows in (1,000) != rows out (998)" in captured.err
    assert sorted(os.listdir(tmp_path)) == ["in"]


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    rows = 3_000_000
    t = pa.table({"k": rng.integers(0, 100_000, rows), "x": rng.random(rows), "y": rng.integers(0, 9, rows)})
    for i in range(3):
        pq.write_table(t.slice(i * rows // 3, rows // 3), d / f"p{i}.parquet", row_group_size=50_000)
    return d


@pytest.fixture(scope="module")
def long_input(tmp_path_factory, big_input):
    """Four copies of big_input: a job that runs for seconds, so an interrupt sent once it
    is under way always lands mid-job."""
    import shutil

    d = tmp_path_factory.mktemp("long")
    for copy in range(4):
        for f in sorted(big_input.iterdir()):
            shutil.copy(f, d / f"c{copy}-{f.name}")
    return d


def _interrupted(args: list, ready, sig: int = signal.SIGINT) -> tuple[int, str]:
    """``shuffle-kit partition *args`` interrupted mid-way: its exit status and stderr."""
    return interrupted(["partition", *args], ready, sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_interrupt_leaves_no_output_and_no_store(tmp_path, long_input, sig):
    spill = tmp_path / "spill"
    spill.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    # through sorted runs (8MB is too little for 64 open writers): interrupted once a run
    # has been written
    code, err = _interrupted(
        [long_input, "--on", "k", "--out", work / "out", "--npartitions", 64, "--memory-limit", "8MB", "--tmp", spill],
        lambda: has_data(spill, 1 << 20), sig,
    )
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert os.listdir(spill) == []  # the temporary store is gone
    assert os.listdir(work) == []  # no output, no half-written hidden directory


def test_interrupt_while_streaming_leaves_no_output(tmp_path, long_input):
    work = tmp_path / "work"
    work.mkdir()
    # open files: interrupted once row groups are landing in the hidden directory
    code, err = _interrupted(
        [long_input, "--on", "k", "--out", work / "out", "--npartitions", 8, "--memory-limit", "100MB"],
        lambda: any(has_data(work / n, 1 << 16) for n in os.listdir(work) if n.startswith(".out.partial-")),
    )
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert os.listdir(work) == []


@pytest.mark.slow
def test_overwrite_interrupted_keeps_old_output(tmp_path, long_input):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    spill = tmp_path / "spill"
    spill.mkdir()
    code, err = _interrupted(
        [long_input, "--on", "k", "--out", out, "--npartitions", 256, "--memory-limit", "8MB",
         "--exists", "overwrite", "--tmp", spill],
        # mid-way: the output is being staged and a run has been written
        lambda: any(n.startswith(".out.partial-") for n in os.listdir(tmp_path)) and has_data(spill, 1 << 20),
    )
    assert code == 130, err
    assert os.listdir(out) == ["old.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out", "spill"] and os.listdir(spill) == []


@pytest.fixture(scope="module")
def skewed_input(tmp_path_factory):
    """12M rows, 90% of them with one key: one partition twice the size of a 100 MB budget."""
    d = tmp_path_factory.mktemp("skewed")
    rng = np.random.default_rng(0)
    rows = 3_000_000
    for i in range(4):
        k = np.where(rng.random(rows) < 0.9, 7, rng.integers(0, 100_000, rows))
        pq.write_table(pa.table({"k": k, "x": rng.random(rows)}), d / f"p{i}.parquet", row_group_size=100_000)
    return d


@pytest.mark.parametrize("limit, parts, data", [
    (32 * 10**6, 16, "big_input"), (100 * 10**6, 8, "long_input"), (100 * 10**6, 64, "skewed_input"),
    (100 * 10**6, 10_000, "big_input"), (100 * 10**6, 1024, "skewed_input"),
])
def test_peak_memory_stays_under_the_limit_plus_overhead(tmp_path, request, limit, parts, data):
    from shuffle_kit.partitioning.job import OVERHEAD

    # 32 MB for 16 partitions: sorted runs (big_input is ~72 MB in memory); 100 MB for 8 and
    # for 64: open files (long_input is ~290 MB in memory; in skewed_input one partition is
    # ~190 MB); 100 MB for 10,000 and 1024: sorted runs, every file written whole, the
    # skewed one a bounded piece at a time
    r = cli("partition", request.getfixturevalue(data), "--on", "k", "--out", tmp_path / "out",
            "--npartitions", parts, "--memory-limit", str(limit))
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("peak memory"))
    value, unit = line.split()[2:4]
    peak = float(value) * {"MB": 1e6, "GB": 1e9}[unit]
    assert peak <= limit + OVERHEAD, line
    assert "rows out    %s" % ("3,000,000" if data == "big_input" else "12,000,000") in r.stdout


def test_out_inside_an_input_directory_is_refused(tmp_path):
    write_inputs(tmp_path, frame(100))
    for given in (tmp_path / "in", f"{tmp_path}/in/**/*.parquet"):
        r = cli("partition", given, "--on", "k", "--out", tmp_path / "in" / "by_k", "--npartitions", 2)
        assert_one_line_error(r, "inside the input directory", "by_k")
    assert sorted(os.listdir(tmp_path / "in")) == ["f0.parquet", "f1.parquet"]
    # beside it is fine, and so is a plain glob, which would not read a subdirectory back
    assert cli("partition", tmp_path / "in", "--on", "k", "--out", tmp_path / "by_k").returncode == 0
    r = cli("partition", f"{tmp_path}/in/*.parquet", "--on", "k", "--out", tmp_path / "in" / "by_k")
    assert r.returncode == 0, r.stderr


def test_the_same_file_given_twice_is_refused(tmp_path):
    inputs = write_inputs(tmp_path, frame(100))
    r = cli("partition", tmp_path / "in", inputs[0], "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "given twice", "f0.parquet")
    assert not (tmp_path / "out").exists()


def test_a_file_without_the_key_column_is_named(tmp_path):
    write_inputs(tmp_path, frame(100))
    pq.write_table(pa.table({"x": [1.5], "row": [7]}), tmp_path / "in" / "f2.parquet")
    r = cli("partition", tmp_path / "in", "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "'k'", "f2.parquet")
    assert not (tmp_path / "out").exists()


def test_by_value_refuses_more_directories_than_max_partitions(tmp_path):
    df = frame(3000)
    df["k"] = np.arange(len(df)) % 1500  # 1500 distinct values
    write_inputs(tmp_path, df)
    r = cli("partition", tmp_path / "in", "--on", "k", "--out", tmp_path / "out", "--by-value")
    assert_one_line_error(r, "'k'", "more than 1,024 distinct values", "--max-partitions")
    assert sorted(os.listdir(tmp_path)) == ["in"]  # nothing made, nothing left behind
    r = cli("partition", tmp_path / "in", "--on", "k", "--out", tmp_path / "out", "--by-value",
            "--max-partitions", 2000)
    assert r.returncode == 0, r.stderr
    assert len(os.listdir(tmp_path / "out")) == 1500


@pytest.mark.slow
def test_kill_9_leaves_nothing_that_the_next_run_does_not_remove(tmp_path, long_input):
    work, spill = tmp_path / "work", tmp_path / "spill"
    work.mkdir()
    spill.mkdir()
    args = [long_input, "--on", "k", "--out", work / "out", "--npartitions", 256, "--memory-limit", "8MB",
            "--tmp", spill]
    proc = subprocess.Popen([sys.executable, "-m", "shuffle_kit", "partition", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # under way: the output is being staged and a sorted run has been written
        assert wait_for(
            lambda: any(n.startswith(".out.partial-") for n in os.listdir(work)) and has_data(spill, 1 << 20)
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert os.listdir(work) and os.listdir(spill)  # what kill -9 left behind
    small = tmp_path / "small"
    small.mkdir()
    write_inputs(small, frame(100))
    r = cli("partition", small / "in", "--on", "k", "--out", work / "out", "--npartitions", 2, "--tmp", spill)
    assert r.returncode == 0, r.stderr
    assert os.listdir(work) == ["out"] and os.listdir(spill) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
def test_overwrite_puts_the_new_output_in_place(tmp_path, monkeypatch, exchange):
    from shuffle_kit.partitioning import job, publish_local

    inputs = write_inputs(tmp_path, frame(200))
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    if exchange:  # one system call: no moment without an output at --out
        real_rename = os.rename

        def no_rename(a, b):
            assert not str(b).startswith(str(out)), "moved the output in two steps"
            return real_rename(a, b)

        monkeypatch.setattr(os, "rename", no_rename)
    else:
        monkeypatch.setattr(publish_local, "exchange", lambda a, b: False)
    s = job.partition(inputs, "k", str(out), npartitions=3, exists="overwrite", progress=False)
    assert s.ok and sorted(os.listdir(out)) == [f"part-{i:05d}.parquet" for i in range(3)]
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_out_gets_the_mode_the_umask_gives(tmp_path, umask):
    inputs = write_inputs(tmp_path, frame(100))
    r = cli("partition", *inputs, "--on", "k", "--out", tmp_path / "out", "--by-value",
            preexec_fn=lambda: os.umask(umask))
    assert r.returncode == 0, r.stderr
    for d in [tmp_path / "out", *[p for p in (tmp_path / "out").iterdir() if p.is_dir()]]:
        assert d.stat().st_mode & 0o777 == 0o777 & ~umask, d


def test_decoding_errors_name_the_file_and_the_line(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "short.csv").write_text("k,x\n1,2\n3\n4,5\n")
    r = cli("partition", d / "short.csv", "--on", "k", "--out", tmp_path / "o1")
    assert_one_line_error(r, "short.csv, line 3", "Expected 2 columns")
    (d / "late.csv").write_text("k,x\n" + "".join(f"{i},{i}.5\n" for i in range(300_000)) + "7,abc\n")
    r = cli("partition", d / "late.csv", "--on", "k", "--out", tmp_path / "o2", "--memory-limit", "100MB")
    assert_one_line_error(r, "late.csv", "abc")
    t = pa.table({"k": np.arange(200_000), "x": np.random.default_rng(0).random(200_000)})
    pq.write_table(t, d / "damaged.parquet", compression="snappy")
    data = bytearray((d / "damaged.parquet").read_bytes())
    data[5000:9000] = bytes(range(256)) * 15 + bytes(160)  # inside the first data page
    (d / "damaged.parquet").write_bytes(data)
    r = cli("partition", d / "damaged.parquet", "--on", "k", "--out", tmp_path / "o3")
    assert_one_line_error(r, "damaged.parquet")
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_tsv_files_are_read_with_tabs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.tsv").write_text("k\tname\n1\tx, y\n2\tz\n1\tw\n")
    r = cli("partition", d / "a.tsv", "--on", "k", "--out", tmp_path / "out", "--npartitions", 2)
    assert r.returncode == 0, r.stderr
    back = pa.concat_tables([pq.read_table(tmp_path / "out" / f) for f in sorted(os.listdir(tmp_path / "out"))])
    assert sorted(zip(back.column("k").to_pylist(), back.column("name").to_pylist())) == [
        (1, "w"), (1, "x, y"), (2, "z")]


# -- -q, -v, --json and skew ----------------------------------------------------------------------


def skewed_frame(rows: int = 6000, heavy: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """``frame()`` with a share ``heavy`` of its rows on one key (k = 42)."""
    df = frame(rows, seed)
    df.loc[np.random.default_rng(seed).random(rows) < heavy, "k"] = 42
    return df


def _rows_per_file(out) -> dict[str, int]:
    return {f: read_file(str(out / f)).num_rows for f in sorted(os.listdir(out))}


@pytest.mark.parametrize("limit", PATHS)
@pytest.mark.parametrize("heavy", [0.0, 0.7])
def test_json_is_the_only_stdout_and_its_numbers_are_the_files_written(tmp_path, limit, heavy):
    inputs = write_inputs(tmp_path, skewed_frame(heavy=heavy), "csv")
    out = tmp_path / "out"
    r = cli("partition", *inputs, "--on", "k", "--out", out, "--npartitions", 9, "--format", "csv",
            "--memory-limit", limit, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)  # one JSON object, nothing else
    files = _rows_per_file(out)
    rows = list(files.values())
    assert summary["rows_in"] == summary["rows_out"] == sum(rows) == 6000 and summary["ok"]
    assert summary["files"] == summary["partitions"] == len(files) == 9 and summary["inputs"] == 2
    assert summary["bytes_out"] == sum(os.path.getsize(out / f) for f in files)
    assert summary["bytes_in"] == sum(os.path.getsize(p) for p in inputs)
    assert summary["out"] == str(out) and summary["seconds"] > 0 and summary["peak_rss"] > 0
    sizes = summary["sizes"]
    assert (sizes["min"], sizes["median"], sizes["max"]) == (min(rows), statistics.median(rows), max(rows))
    assert [(e["path"], e["rows"]) for e in sizes["largest"]] == sorted(files.items(), key=lambda kv: -kv[1])[:5]
    biggest = max(files, key=files.get)
    if heavy:  # one file holds most rows: named on stderr, with its partition
        assert r.stderr.startswith(f"shuffle-kit: warning: skew: {biggest} (partition {int(biggest[5:10])}) "
                                   f"holds {files[biggest]:,} rows"), r.stderr
        assert len(r.stderr.splitlines()) == 1
    else:
        assert r.stderr == ""


def test_skew_warning_names_the_file_and_a_uniform_input_has_none(tmp_path):
    inputs = write_inputs(tmp_path, skewed_frame(heavy=0.8))
    r = cli("partition", *inputs, "--on", "k", "--out", tmp_path / "skewed", "--npartitions", 16)
    files = _rows_per_file(tmp_path / "skewed")
    biggest = max(files, key=files.get)
    assert r.returncode == 0
    assert f"warning: skew: {biggest} (partition {int(biggest[5:10])}) holds {files[biggest]:,} rows" in r.stderr
    assert "skew:" not in r.stdout
    line = [x for x in r.stdout.splitlines() if x.startswith("rows/file")][0]
    assert f"max {files[biggest]:,} (largest: {biggest})" in line
    (tmp_path / "in").rename(tmp_path / "skewed-in")
    inputs = write_inputs(tmp_path, skewed_frame(heavy=0.0))
    r = cli("partition", *inputs, "--on", "k", "--out", tmp_path / "uniform", "--npartitions", 16)
    assert r.returncode == 0 and r.stderr == ""


def test_skew_warning_names_the_value_directory(tmp_path):
    df = skewed_frame(heavy=0.9).drop(columns=["s"])
    inputs = write_inputs(tmp_path, df)
    r = cli("partition", *inputs, "--on", "k", "--out", tmp_path / "out", "--by-value")
    assert r.returncode == 0
    rows = (df["k"] == 42).sum()
    assert r.stderr.startswith(f"shuffle-kit: warning: skew: k=42 holds {rows:,} rows"), r.stderr
    assert "(largest: k=42)" in r.stdout and "rows/value  min 1," in r.stdout
    r = cli("partition", *inputs, "--on", "k", "--out", tmp_path / "out2", "--by-value", "--json")
    sizes = json.loads(r.stdout)["sizes"]
    assert sizes["unit"] == "value" and sizes["count"] == df["k"].nunique()
    assert sizes["largest"][0] == {"key": [42], "rows": int(rows), "path": "k=42"}


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_nothing_on_success_and_errors_still(tmp_path, where):
    inputs = write_inputs(tmp_path, skewed_frame(heavy=0.8))  # skewed: no warning either
    args = ["partition", *inputs, "--on", "k", "--out", tmp_path / "out", "--npartitions", 4, "--memory-limit", "2MiB"]
    r = cli("-q", *args) if where == "before" else cli(*args, "-q")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert sum(_rows_per_file(tmp_path / "out").values()) == 6000
    r = cli(*args, "--quiet")  # --out is not empty now: the error is still one line, the status still 1
    assert r.returncode == 1 and r.stdout == ""
    assert_one_line_error(r, "is not empty")
    r = cli("-q", "partition", *inputs, "--on", "k", "--out", tmp_path / "o2", "--npartitions", 0)
    assert r.returncode == 2 and r.stdout == "" and "--npartitions" in r.stderr


def test_verbose_logs_to_stderr_and_not_stdout(tmp_path):
    inputs = write_inputs(tmp_path, frame(60_000))
    out = tmp_path / "out"
    r = cli("partition", *inputs, "--on", "k", "--out", out, "--npartitions", 3, "--memory-limit", "2MiB", "-v")
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()] == [
        "output", "rows", "rows", "partitions", "time", "peak", "rows/file"]
    log = r.stderr
    assert "INFO shuffle_kit.partitioning.job: inputs: 2 files, 60,000 rows" in log
    assert "INFO shuffle_kit.partitioning.engine: sorted runs in" in log  # the path and why
    assert "writers' buffers" in log
    assert "INFO shuffle_kit.partitioning.engine: spilling run 0:" in log
    assert f"INFO shuffle_kit.partitioning.job: published {out}: 60,000 rows in 3 files" in log
    assert "DEBUG" not in log
    r = cli("-v", "partition", *inputs, "--on", "k", "--out", tmp_path / "o2", "--npartitions", 3, "--json")
    assert r.returncode == 0 and r.stdout.startswith("{") and len(r.stdout.splitlines()) == 1
    assert "open files: every partition's file takes row groups" in r.stderr
    r = cli("-q", "partition", *inputs, "--on", "k", "--out", tmp_path / "o3", "-v")
    assert r.returncode == 2 and "exclude each other" in r.stderr


def test_quiet_demo_and_help(tmp_path):
    r = cli("demo", "--rows", 2000, "-q", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = cli("partition", "--help")
    for word in ["-q, --quiet", "-v, --verbose", "--json"]:
        assert word in r.stdout


@pytest.mark.parametrize("limit", PATHS)
def test_output_controls(tmp_path, limit):
    df = frame(4000)
    inputs = write_inputs(tmp_path, df)
    out = tmp_path / "out"
    r = cli("partition", *inputs, "--on", "k", "--out", out, "--npartitions", 3, "--max-rows-per-file", 700,
            "--row-group-size", 200, "--sort-by", "s,x", "--memory-limit", limit)
    assert r.returncode == 0, r.stderr
    rows = []
    for f in sorted(os.listdir(out)):
        assert f.startswith("part-0000") and f[len("part-00000-"):] in [f"{i:05d}.parquet" for i in range(6)], f
        meta = pq.read_metadata(out / f)
        assert meta.num_rows <= 700 and all(meta.row_group(i).num_rows == 200 for i in range(meta.num_row_groups - 1))
        t = pq.read_table(out / f).to_pandas()
        assert t["row"].tolist() == t.sort_values(["s", "x"], kind="stable")["row"].tolist()
        rows += t["row"].tolist()
    assert sorted(rows) == list(range(len(df)))
    # by value, keys kept, appended twice: the union, nothing replaced
    for i, half in enumerate(np.array_split(np.arange(len(df)), 2)):
        part = tmp_path / f"half{i}.parquet"
        pq.write_table(pa.Table.from_pandas(df.iloc[half], preserve_index=False), part)
        r = cli("partition", part, "--on", "k", "--out", tmp_path / "byk", "--by-value", "--keep-keys", "--exists",
                "append", "--memory-limit", limit)
        assert r.returncode == 0, r.stderr
    files = [os.path.join(r_, f) for r_, _, fs in os.walk(tmp_path / "byk") for f in fs]
    assert all(len(os.listdir(os.path.dirname(f))) <= 2 for f in files)
    for f in files:
        t = pq.read_table(f)
        assert {f"k={v}" for v in t.column("k").to_pylist()} == {os.path.basename(os.path.dirname(f))}
    back = pa.concat_tables([pq.read_table(f) for f in files])
    assert sorted(back.column("row").to_pylist()) == list(range(len(df)))
    # an append whose columns differ: one line naming the column, nothing changed
    before = sorted(files)
    pq.write_table(pa.Table.from_pandas(df.drop(columns=["x"]), preserve_index=False), tmp_path / "other.parquet")
    r = cli("partition", tmp_path / "other.parquet", "--on", "k", "--out", tmp_path / "byk", "--by-value",
            "--keep-keys", "--exists", "append")
    assert_one_line_error(r, "--exists append", "column 'x'")
    assert sorted(os.path.join(r_, f) for r_, _, fs in os.walk(tmp_path / "byk") for f in fs) == before


# -- errors that name what the user gave (issue 21, item 12) -----------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """Mount a real filesystem of its own at a directory: ``small_fs(name, "size=2m")`` (a
    tmpfs; needs root or CAP_SYS_ADMIN, else the test is skipped). Unmounted afterwards."""
    mounted = []

    def mount(name: str, options: str) -> str:
        where = tmp_path / name
        where.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(where)
        return str(where)

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _incompressible(tmp_path, rows: int = 400_000) -> str:
    """~6.4 MB of random numbers in memory: more than a 2 MiB filesystem holds, as output
    files or as sorted runs."""
    d = tmp_path / "in"
    d.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    pq.write_table(pa.table({"k": rng.integers(0, 1 << 40, rows), "x": rng.random(rows)}), d / "a.parquet",
                   row_group_size=20_000)
    return str(d)


def test_a_full_out_disk_names_out(tmp_path, small_fs):
    small = small_fs("small", "size=2m")
    r = cli("partition", _incompressible(tmp_path), "--on", "k", "--out", f"{small}/out", "--npartitions", 4,
            "--compression", "none")
    assert_one_line_error(r, "no space left", f"--out '{small}/out'", f"{small}/.out.partial-")
    assert r.returncode == 1 and "--tmp" not in r.stderr
    assert os.listdir(small) == []  # the staged files are gone: the space is free again


def test_a_full_tmp_disk_names_tmp(tmp_path, small_fs):
    small = small_fs("small", "size=2m")
    out = tmp_path / "out"
    # 64 partitions under 8MB go through sorted runs under --tmp: 6 MB of them
    r = cli("partition", _incompressible(tmp_path), "--on", "k", "--out", out, "--npartitions", 64,
            "--memory-limit", "8MB", "--tmp", small)
    assert_one_line_error(r, "no space left", f"--tmp '{small}'")
    assert "--out" not in r.stderr
    assert os.listdir(small) == [] and not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["in", "small"]


def test_a_parent_of_out_where_nothing_can_be_made_names_out_not_the_hidden_directory(tmp_path, small_fs):
    # a filesystem out of inodes: the permission check passes, creating the hidden directory fails
    full = small_fs("full", "size=1m,nr_inodes=1")
    r = cli("partition", _incompressible(tmp_path, 1000), "--on", "k", "--out", f"{full}/out")
    assert_one_line_error(r, f"'{full}'", f"the parent of --out '{full}/out'")
    assert ".partial" not in r.stderr


def test_a_parent_of_out_that_is_a_file_is_named_as_not_a_directory(tmp_path):
    (tmp_path / "afile").write_text("")
    r = cli("partition", _incompressible(tmp_path, 1000), "--on", "k", "--out", tmp_path / "afile" / "sub" / "out")
    assert_one_line_error(r, f"'{tmp_path / 'afile'}' is not a directory", "--out")
    assert "File exists" not in r.stderr and (tmp_path / "afile").read_text() == ""


@pytest.mark.parametrize("given, near", [("K", "'k'"), ("Dep_Time", "'dep_time'"), ("dep_tme", "'dep_time'")])
def test_a_misspelt_column_suggests_the_near_names(tmp_path, given, near):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"k": [1, 2], "x": [1.0, 2.0], "dep_time": [3, 4]}), d / "a.parquet")
    r = cli("partition", d, "--on", given, "--out", tmp_path / "out")
    assert_one_line_error(r, f"key column '{given}' is not in the input file", f"did you mean {near}?")
    r = cli("partition", d, "--on", "k", "--sort-by", given, "--out", tmp_path / "out")
    assert_one_line_error(r, f"--sort-by column '{given}'", f"did you mean {near}?")
    assert sorted(os.listdir(tmp_path)) == ["in"]


# -- a signal at any moment: one line, exit 130 (issue 21, item 13) -------------------------------


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler of its own for ``sig`` (``SigCgt`` in /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(mask >> (sig - 1) & 1)


def _commands() -> list[list[str]]:
    """The program as a user starts it: the console script (when installed beside this
    interpreter) and ``python -m shuffle_kit``."""
    script = os.path.join(os.path.dirname(sys.executable), "shuffle-kit")
    return [[sys.executable, "-m", "shuffle_kit"]] + ([[script]] if os.access(script, os.X_OK) else [])


def _loaded_arrow(pid: int) -> bool:
    """Whether process ``pid`` has loaded Arrow's library (pyarrow's import, the start of the
    program's heavy imports)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return "libarrow" in f.read()
    except OSError:
        return True


def _signal_at(command: list[str], work, long_input, sig: int, delay: float) -> tuple[int, str, bool]:
    """Start ``command partition`` on ``long_input``, send ``sig`` ``delay`` seconds after the
    program's own code runs (it then catches SIGTERM, which the interpreter alone does not):
    (exit status, stderr, whether Arrow was not loaded yet when the signal went)."""
    proc = subprocess.Popen(
        [*command, "partition", str(long_input), "--on", "k", "--out", str(work / "out"), "--npartitions", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        end = time.monotonic() + 120
        while not _catches(proc.pid, signal.SIGTERM) and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.001)
        time.sleep(delay)
        early = not _loaded_arrow(proc.pid)
        assert proc.poll() is None, "finished before the signal: make the input larger"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err, early


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads signal masks from /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_at_any_moment_is_one_line_and_exit_130(tmp_path, long_input, sig):
    # during imports (the earliest: as soon as the program catches signals, before pyarrow
    # loads), argument parsing, input discovery (mid-job: test_interrupt_* above, which wait
    # until the job is under way; a fixed later moment could follow the end of a fast job)
    moments = [(command, 0.0) for command in _commands()]
    moments += [(_commands()[0], delay) for delay in (0.01, 0.05, 0.15)]
    early = 0
    for i in range(len(moments) + 12):
        if i >= len(moments):  # more at once, until one lands while the modules load (a
            if early:          # loaded machine may delay the earliest past that), never all
                break
            moments.append((_commands()[i % len(_commands())], 0.0))
        command, delay = moments[i]
        work = tmp_path / f"work-{i}"
        work.mkdir()
        code, err, before_arrow = _signal_at(command, work, long_input, sig, delay)
        where = f"{command[-1]} after {delay} s"
        assert code == 130, (where, code, err)
        assert err.splitlines() == ["shuffle-kit: interrupted; no output was written"], (where, err)
        assert os.listdir(work) == [], where  # nothing staged, nothing spilled
        early += before_arrow
    assert early >= 1, "no signal landed before pyarrow loaded: start-up is not covered"


def test_a_signal_inside_an_import_lock_callback_comes_again_outside_it(tmp_path):
    """Python ignores an exception raised in a weakref callback, as importlib's that drops
    a module's lock (a signal landing there while modules load would be lost): the handler
    sends the signal again instead, and the program stops once outside the callback."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import gc, signal, sys, time\n"
        "import importlib._bootstrap as bootstrap\n"
        "from shuffle_kit import cli\n"
        "frames = []\n"
        "def tracer(frame, event, arg):\n"
        "    if event == 'call' and frame.f_code.co_name == 'cb':\n"
        "        frames.append(frame)\n"
        "lock = bootstrap._get_module_lock('shuffle_kit_probe')\n"
        "sys.settrace(tracer)\n"
        "del lock\n"
        "gc.collect()\n"
        "sys.settrace(None)\n"
        "print(len(frames) == 1 and cli._in_import_lock_callback(frames[0]),"
        " cli._in_import_lock_callback(sys._getframe()))\n"
        "signal.signal(signal.SIGINT, cli._interrupt)\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])  # (held until unblocked)\n"
        "try:\n"
        "    cli._interrupt(signal.SIGINT, frames[0])\n"
        "    print('deferred', cli._interrupted.is_set())\n"
        "    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])\n"
        "    end = time.monotonic() + 60  # (the signal comes again from another thread)\n"
        "    while time.monotonic() < end:\n"
        "        time.sleep(0.001)\n"
        "    print('not stopped')\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped', cli._interrupted.is_set())\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", "False", "deferred", "False", "stopped", "True"], done.stderr


def test_a_signal_inside_the_import_lock_callback_comes_again_outside_it():
    # Python ignores an exception raised in importlib's weakref callback (which drops a
    # module's lock): the handler must neither raise there nor handle the signal again
    # while still inside it, but see it again once the callback has returned
    program = textwrap.dedent("""
        import signal, sys, time
        from shuffle_kit import cli
        signal.signal(signal.SIGTERM, cli._interrupt)
        space = {}
        exec(compile("def cb(inner):\\n    return inner()", "<frozen importlib._bootstrap>", "exec"), space)
        space["cb"](lambda: cli._interrupt(signal.SIGTERM, sys._getframe()))
        print("returned from the callback", flush=True)
        try:
            end = time.monotonic() + 60
            while time.monotonic() < end:
                time.sleep(0.001)
        except KeyboardInterrupt:
            print("interrupted outside it", flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == ["returned from the callback", "interrupted outside it"], done.stderr
