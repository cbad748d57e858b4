"""``shuffle-kit join``, run as a real subprocess: results equal pandas' merge, one-line
errors, interrupts and ``kill -9`` leave nothing behind, output into an S3-compatible
server on loopback."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.helpers.cli import assert_one_line_error, cli, has_data, interrupted, start, wait_for
from tests.partitioning import test_object_stores
from tests.partitioning.test_join import assert_same_rows, write

s3, bucket = test_object_stores.s3, test_object_stores.bucket  # the S3 server's fixtures


@pytest.fixture
def sides(tmp_path):
    rng = np.random.default_rng(0)
    lf = pd.DataFrame({"k": rng.integers(0, 400, 6000), "s": rng.choice(["a", "b", None], 6000),
                       "x": rng.random(6000)})
    rf = pd.DataFrame({"id": np.arange(500), "k": rng.integers(0, 300, 500), "s": rng.choice(["p", "q"], 500)})
    return write(tmp_path / "left", lf, nfiles=3), write(tmp_path / "right", rf)


def model(left: str, right: str, **kwargs) -> pd.DataFrame:
    return pd.merge(pd.read_parquet(left), pd.read_parquet(right), **kwargs)


@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
def test_join_equals_pandas_merge_and_prints_its_summary(tmp_path, sides, how):
    left, right = sides
    r = cli("join", f"{left}/*.parquet", "--with", right, "--on", "k", "--how", how, "--out", tmp_path / "out",
            "--npartitions", 8)
    assert r.returncode == 0, r.stderr
    expected = model(left, right, on="k", how=how)
    assert f"rows out    {len(expected):,} ({how} join)" in r.stdout
    assert "6,000 left + 500 right (from 5 files" in r.stdout and "pairs       8" in r.stdout
    assert_same_rows(pd.read_parquet(tmp_path / "out"), expected)


def test_left_on_right_on_suffixes_and_json(tmp_path, sides):
    left, right = sides
    r = cli("join", left, "--with", right, "--left-on", "k", "--right-on", "id", "--how", "outer",
            "--suffixes", "_l,_r", "--out", tmp_path / "out", "--npartitions", 5, "--json", "--threads", 1)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)  # the only thing on stdout
    expected = model(left, right, left_on="k", right_on="id", how="outer", suffixes=("_l", "_r"))
    assert summary["ok"] and summary["rows_out"] == len(expected) and summary["how"] == "outer"
    assert (summary["left_rows"], summary["right_rows"], summary["partitions"]) == (6000, 500, 5)
    assert summary["files"] == len(os.listdir(tmp_path / "out"))
    assert_same_rows(pd.read_parquet(tmp_path / "out"), expected)


def test_sql_nulls_and_the_keys_both_sides_have(tmp_path):
    left = write(tmp_path / "l", pd.DataFrame({"k": [1.0, None, 3.0], "a": [1, 2, 3]}))
    right = write(tmp_path / "r", pd.DataFrame({"k": [None, 3.0], "b": [7, 8]}))
    r = cli("join", left, "--with", right, "--out", tmp_path / "pandas", "-q")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    assert_same_rows(pd.read_parquet(tmp_path / "pandas"), model(left, right))  # NaN meets NaN
    r = cli("join", left, "--with", right, "--sql-nulls", "--out", tmp_path / "sql", "-q")
    assert r.returncode == 0, r.stderr
    assert pd.read_parquet(tmp_path / "sql")[["k", "a", "b"]].values.tolist() == [[3.0, 3, 8]]


@pytest.mark.parametrize("args, words, code", [
    (["--on", "k"], ["--with"], 2),
    (["--with", "R", "--on", "k", "--how", "cross"], ["--how", "cross"], 2),
    (["--with", "R", "--on", "k", "--suffixes", "_x"], ["--suffixes"], 2),
    (["--with", "R", "--on", "nope"], ["nope", "f0.parquet"], 1),
    (["--with", "R", "--on", "k", "--left-on", "k", "--right-on", "k"], ["--on", "--left-on"], 1),
    (["--with", "R", "--left-on", "k"], ["--right-on"], 1),
    (["--with", "R", "--left-on", "x", "--right-on", "s"], ["'x'", "'s'"], 1),
    (["--with", "R", "--on", "k", "--memory-limit", "lots"], ["--memory-limit"], 2),
    (["--with", "R", "--on", "k", "--sort-by", "k"], ["--sort-by"], 2),
])
def test_bad_arguments_are_one_line(tmp_path, sides, args, words, code):
    left, right = sides
    r = cli("join", left, *[right if a == "R" else a for a in args], "--out", tmp_path / "out")
    assert_one_line_error(r, *words)
    assert r.returncode == code
    assert not os.path.exists(tmp_path / "out")


def test_a_missing_input_and_a_non_empty_out_are_one_line(tmp_path, sides):
    left, right = sides
    r = cli("join", left, "--with", tmp_path / "absent.parquet", "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "absent.parquet")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.parquet").write_bytes(b"")
    r = cli("join", left, "--with", right, "--on", "k", "--out", tmp_path / "full")
    assert_one_line_error(r, "--out", "not empty", "--exists")
    r = cli("join", left, "--with", right, "--on", "k", "--out", tmp_path / "full", "--exists", "overwrite")
    assert r.returncode == 0, r.stderr
    assert "x.parquet" not in os.listdir(tmp_path / "full")


@pytest.fixture(scope="module")
def long_sides(tmp_path_factory):
    """Sides large enough that a join under 8MB runs for seconds."""
    d = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(1)
    n = 3_000_000
    left = write(d / "left", pd.DataFrame({"k": rng.integers(0, 100_000, n), "x": rng.random(n)}), nfiles=3)
    right = write(d / "right", pd.DataFrame({"k": np.arange(100_000), "y": rng.random(100_000)}))
    return left, right


def _args(left: str, right: str, out, spill) -> list:
    return ["join", left, "--with", right, "--on", "k", "--out", out, "--npartitions", 64, "--memory-limit", "8MB",
            "--tmp", spill]


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_an_interrupt_leaves_no_output_and_no_temporary_files(tmp_path, long_sides, sig):
    work, spill = tmp_path / "work", tmp_path / "spill"
    work.mkdir()
    spill.mkdir()
    code, err = interrupted(_args(*long_sides, work / "out", spill), lambda: has_data(spill, 1 << 20), sig)
    assert code == 130, err
    assert "interrupted" in err and len(err.strip().splitlines()) == 1, err
    assert os.listdir(work) == [] and os.listdir(spill) == []


@pytest.mark.slow
def test_kill_9_leaves_nothing_that_the_next_run_does_not_remove(tmp_path, long_sides, sides):
    work, spill = tmp_path / "work", tmp_path / "spill"
    work.mkdir()
    spill.mkdir()
    proc = start(*_args(*long_sides, work / "out", spill))
    try:
        assert wait_for(lambda: any(n.startswith(".out.partial-") for n in os.listdir(work))
                        and has_data(spill, 1 << 20))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert os.listdir(work) and os.listdir(spill)  # what kill -9 left behind
    left, right = sides
    r = cli("join", left, "--with", right, "--on", "k", "--out", work / "out", "--tmp", spill, "-q")
    assert r.returncode == 0, r.stderr
    assert os.listdir(work) == ["out"] and os.listdir(spill) == []


def test_output_into_an_object_store(tmp_path, sides, s3, bucket):
    _, fs = s3
    left, right = sides
    r = cli("join", left, "--with", right, "--on", "k", "--how", "left", "--out", f"s3://{bucket}/joined",
            "--npartitions", 4, "--tmp", tmp_path)
    assert r.returncode == 0, r.stderr
    names = sorted(i.base_name for i in fs.get_file_info(pq.ParquetDataset(f"{bucket}/joined", filesystem=fs).files
                                                          ) if i.base_name.startswith("part-"))
    assert names == [f"part-{i:05d}.parquet" for i in range(4)]
    got = pq.read_table(f"{bucket}/joined", filesystem=fs).to_pandas()
    assert_same_rows(got, model(left, right, on="k", how="left"))
    # an object store's output is refused when not empty, replaced with --exists overwrite
    r = cli("join", left, "--with", right, "--on", "k", "--out", f"s3://{bucket}/joined", "--tmp", tmp_path)
    assert_one_line_error(r, "--out")
    r = cli("join", left, "--with", right, "--on", "k", "--out", f"s3://{bucket}/joined", "--tmp", tmp_path,
            "--exists", "overwrite", "--npartitions", 2)
    assert r.returncode == 0, r.stderr
    assert_same_rows(pq.read_table(f"{bucket}/joined", filesystem=fs).to_pandas(), model(left, right, on="k"))
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []



def test_a_hot_key_is_named_in_the_json_and_warned_of_and_nothing_is_written_outside_tmp(tmp_path):
    rng = np.random.default_rng(5)
    n = 300_000  # one key with ~90% of the left's rows: more than a pair's share of 8MB
    lf = pd.DataFrame({"k": np.where(rng.random(n) < 0.9, 7, rng.integers(0, 1000, n)), "x": rng.random(n)})
    left = write(tmp_path / "l", lf, nfiles=4)
    right = write(tmp_path / "r", pd.DataFrame({"k": np.r_[np.arange(1000), [7]], "y": np.arange(1001)}))
    elsewhere, mine = tmp_path / "elsewhere", tmp_path / "mine"
    elsewhere.mkdir(), mine.mkdir()
    r = cli("join", left, "--with", right, "--on", "k", "--out", tmp_path / "out", "--memory-limit", "8MB",
            "--npartitions", 4, "--tmp", mine, "--json", env={**os.environ, "TMPDIR": str(elsewhere)})
    assert r.returncode == 0, r.stderr
    hot = int((lf["k"] == 7).sum())
    summary = json.loads(r.stdout)
    assert summary["hot_keys"] == [{"pair": summary["hot_keys"][0]["pair"], "columns": ["k"], "key": [7],
                                    "left_rows": hot, "right_rows": 2}]
    assert f"shuffle-kit: warning: skew: key k=7 holds {hot:,} left rows and 2 right rows" in r.stderr
    assert_same_rows(pd.read_parquet(tmp_path / "out"), model(left, right, on="k"))
    assert os.listdir(elsewhere) == [] and os.listdir(mine) == []

@pytest.mark.slow
@pytest.mark.parametrize("limit", ["64MB", "256MB"])
def test_peak_memory_stays_under_the_limit_plus_overhead_with_a_hot_key(tmp_path, limit):
    from shuffle_kit.byte_sizes import check_memory_limit
    from shuffle_kit.partitioning.job import OVERHEAD

    rng = np.random.default_rng(4)
    n = 4_000_000  # one key holds 60% of the left's rows: its pair far exceeds a pair's share
    keys = np.where(rng.random(n) < 0.6, 12345, rng.integers(0, 200_000, n))
    left = write(tmp_path / "l", pd.DataFrame({"k": keys, "x": rng.random(n), "s": rng.choice(["ab", "cd"], n)}),
                 nfiles=4)
    right = write(tmp_path / "r", pd.DataFrame({"k": np.arange(200_000), "y": rng.random(200_000)}))
    r = cli("join", left, "--with", right, "--on", "k", "--how", "left", "--out", tmp_path / "out",
            "--memory-limit", limit, "--npartitions", 16, "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["rows_out"] == n
    assert summary["peak_rss"] <= check_memory_limit(limit) + OVERHEAD, summary["peak_rss"] / 2**20
