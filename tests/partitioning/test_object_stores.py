"""Partitioning from and into an S3-compatible object store: a real server (moto's
standalone server, in its own process on loopback, started here), reached through pyarrow's
own S3 client configured by the standard AWS environment variables."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from shuffle_kit import Layout, merge, partition, shuffle
from shuffle_kit.partitioning.job import JobError
from tests.helpers.cli import assert_one_line_error, cli

pytest.importorskip("moto")


@pytest.fixture(scope="module")
def s3():
    """(endpoint, filesystem) of a fresh S3 server, with the AWS variables set for this
    process and its children."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the S3 test server did not start")
            time.sleep(0.05)
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    fs = pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True, allow_bucket_deletion=True)
    try:
        yield endpoint, fs
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


ENV = ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_EC2_METADATA_DISABLED"]


@pytest.fixture
def bucket(s3, request):
    _, fs = s3
    name = "sk-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    fs.create_dir(name)
    yield name
    fs.delete_dir(name)


def table(n: int = 4000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "k": rng.integers(0, 50, n),
        "s": rng.choice(["a", "b c", "ü"], n),
        "x": rng.random(n),
        "row": np.arange(n),
    })


def upload(fs, local: Path, prefix: str) -> None:
    pafs.copy_files(str(local), prefix, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def objects(fs, prefix: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path[len(prefix) + 1:] for i in infos if i.type == pafs.FileType.File)


def files_of(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("by_value", [False, True])
def test_the_same_job_from_and_to_s3_writes_the_same_files_as_the_local_job(s3, bucket, tmp_path, by_value):
    _, fs = s3
    src = tmp_path / "in"
    src.mkdir()
    t = table()
    for i in range(3):
        pq.write_table(t.slice(i * 1500, 1500), src / f"f{i}.parquet")
    upload(fs, src, f"{bucket}/in")
    how = {"by_value": True} if by_value else {"npartitions": 7}
    local = partition(str(src), "k", str(tmp_path / "local"), progress=False, **how)
    remote = partition(f"s3://{bucket}/in", "k", f"s3://{bucket}/out", progress=False, **how)
    assert remote.rows_in == remote.rows_out == local.rows_out == t.num_rows
    assert remote.out == f"s3://{bucket}/out"
    expected = files_of(tmp_path / "local")
    assert objects(fs, f"{bucket}/out") == sorted([*expected, "_SUCCESS"])  # and no _temporary/ left
    for name, data in expected.items():
        with fs.open_input_stream(f"{bucket}/out/{name}") as f:
            assert f.read() == data, name
    # reading it back through pyarrow's dataset skips the marker
    back = ds.dataset(f"{bucket}/out", filesystem=fs, format="parquet", partitioning="hive").to_table()
    assert back.num_rows == t.num_rows


def test_command_line_from_s3_to_s3_and_the_existing_output_rules(s3, bucket, tmp_path):
    _, fs = s3
    pq.write_table(table(), tmp_path / "in.parquet")
    upload(fs, tmp_path, f"{bucket}/in")
    args = ["partition", f"s3://{bucket}/in/in.parquet", "--on", "k", "--out", f"s3://{bucket}/out",
            "--npartitions", "3"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    first = objects(fs, f"{bucket}/out")
    assert first == ["_SUCCESS", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    r = cli(*args)
    assert_one_line_error(r, f"s3://{bucket}/out", "not empty", "--exists overwrite")
    # overwrite with fewer partitions: the old files are gone; the new ones never took an
    # old one's name (the job's token is in them), so the old output stood until the end
    r = cli(*args[:-1], "2", "--exists", "overwrite")
    assert r.returncode == 0, r.stderr
    got = objects(fs, f"{bucket}/out")
    assert len(got) == 3 and got[0] == "_SUCCESS", got
    assert all(re.fullmatch(rf"part-0000{i}-\d{{14}}-[0-9a-f]{{12}}\.parquet", got[1 + i]) for i in range(2)), got
    with fs.open_input_stream(f"{bucket}/out/_SUCCESS") as f:  # names the files
        assert json.loads(f.read()) == {"files": got[1:]}
    got = ds.dataset(f"{bucket}/out", filesystem=fs, format="parquet").to_table()
    assert sorted(got["row"].to_pylist()) == list(range(table().num_rows))


def test_what_a_killed_upload_left_is_removed_by_the_next_job(s3, bucket, tmp_path):
    _, fs = s3
    pq.write_table(table(100), tmp_path / "in.parquet")
    with fs.open_output_stream(f"{bucket}/out/_temporary/.out.partial-dead/part-00000.parquet") as f:
        f.write(b"half a file")
    # (an output holding only a dead job's staging area counts as empty)
    partition(str(tmp_path / "in.parquet"), "k", f"s3://{bucket}/out", npartitions=2, progress=False)
    assert objects(fs, f"{bucket}/out") == ["_SUCCESS", "part-00000.parquet", "part-00001.parquet"]


@pytest.mark.parametrize("given, out, words", [
    ("s3://{b}/in/", "s3://{b}/in/sub", "inside the input directory"),
    ("s3://{b}/in", "s3://{b}//in/./sub/", "inside the input directory"),
    ("s3://{b}/in/**/*.parquet", "s3://{b}/in/deeper/by_k", "inside the input directory"),
    ("s3://{b}/in/", "s3://{b}/in", "contains the input file"),
])
def test_out_inside_an_s3_input_prefix_is_refused(s3, bucket, tmp_path, given, out, words):
    _, fs = s3
    (tmp_path / "in").mkdir()
    pq.write_table(table(100), tmp_path / "in" / "f.parquet")
    upload(fs, tmp_path / "in", f"{bucket}/in")
    given, out = given.format(b=bucket), out.format(b=bucket)
    r = cli("partition", given, "--on", "k", "--out", out, "--npartitions", 2, "--exists", "overwrite")
    assert_one_line_error(r, words, repr(out))
    assert objects(fs, bucket) == ["in/f.parquet"]
    # beside it is fine, and so is a glob that reads no subdirectory
    assert cli("partition", given, "--on", "k", "--out", f"s3://{bucket}/by_k").returncode == 0
    r = cli("partition", f"s3://{bucket}/in/*.parquet", "--on", "k", "--out", f"s3://{bucket}/in/by_k")
    assert r.returncode == 0, r.stderr


def test_out_inside_an_input_directory_given_as_a_file_url_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    pq.write_table(table(100), tmp_path / "in" / "f.parquet")
    for given, out in [(f"file://{tmp_path}/in", tmp_path / "in" / "sub"), (str(tmp_path / "in"), tmp_path / "in")]:
        r = cli("partition", given, "--on", "k", "--out", out)
        assert_one_line_error(r, "input", repr(str(out)))
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["f.parquet"]


def test_a_failed_job_publishes_nothing_to_s3(s3, bucket, tmp_path):
    _, fs = s3
    pq.write_table(pa.table({"k": [1, 2]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"other": [1, 2]}), tmp_path / "b.parquet")
    with pytest.raises(JobError, match="'k' is not in the input file .*b.parquet"):
        partition([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], "k", f"s3://{bucket}/out", progress=False)
    assert objects(fs, f"{bucket}/out") == []


def test_s3_errors_are_one_line_naming_the_url(s3, tmp_path):
    pq.write_table(table(10), tmp_path / "in.parquet")
    r = cli("partition", "s3://no-such-bucket-sk/in/", "--on", "k", "--out", tmp_path / "out")
    assert_one_line_error(r, "s3://no-such-bucket-sk/in/")
    r = cli("partition", tmp_path / "in.parquet", "--on", "k", "--out", "s3://no-such-bucket-sk/out")
    assert_one_line_error(r, "s3://no-such-bucket-sk/out")
    assert not (tmp_path / "out").exists()


def test_shuffle_reads_an_s3_dataset(s3, bucket, tmp_path):
    _, fs = s3
    src = tmp_path / "in"
    ds.write_dataset(table(600), src, format="parquet", partitioning=["s"], partitioning_flavor="hive")
    upload(fs, src, f"{bucket}/in")
    parts = list(shuffle(f"s3://{bucket}/in", "k", 3))
    got = pa.concat_tables([pa.Table.from_pandas(p, preserve_index=False) for p in parts])
    assert sorted(got["row"].to_pylist()) == list(range(600))
    assert set(got["s"].to_pylist()) == {"a", "b c", "ü"}


def test_merge_takes_a_hash_partitioned_s3_output_as_it_is(s3, bucket, tmp_path):
    _, fs = s3
    t = table(600)
    pq.write_table(t, tmp_path / "in.parquet")
    partition(str(tmp_path / "in.parquet"), "k", f"s3://{bucket}/out", npartitions=3, progress=False)
    right = pd.DataFrame({"k": np.arange(0, 60, 2), "name": [f"n{i}" for i in range(30)]})
    with merge(f"s3://{bucket}/out", right, on="k", how="left", progress=False) as joined:
        assert joined.reused == (True, False) and joined.npartitions == 3  # (the _SUCCESS marker aside)
        got = joined.to_pandas()
    expected = pd.merge(t.to_pandas(), right, on="k", how="left")
    assert sorted(got["row"]) == sorted(expected["row"]) and len(got) == len(expected)
    assert got.sort_values("row")["name"].fillna("").tolist() == expected.sort_values("row")["name"].fillna("").tolist()


# -- killed while publishing (kill -9 of a real process at each step) ---------------------------

KILLED_PUBLISH = """
import os, signal, sys
import shuffle_kit as sk
from shuffle_kit.partitioning import publish_objects
step, count = sys.argv[1], int(sys.argv[2])
seen, real = [0], publish_objects.reached
def reached(s):
    real(s)
    if s == step:
        seen[0] += 1
        if seen[0] == count:
            os.kill(os.getpid(), signal.SIGKILL)
publish_objects.reached = reached
sk.partition(sys.argv[3], "k", sys.argv[4], npartitions=2, exists="overwrite", tmp=sys.argv[5], progress=False)
"""

OLD_FILES = 4  # the old output's files; the new one has 2
STEPS = [("staged", 1), ("journal", 1), ("unmarked", 1), ("copied", 1), ("copied", 2), ("committed", 1),
         ("deleted", 1), ("deleted", OLD_FILES), ("marked", 1)]


def everything(fs, prefix: str) -> list[str]:
    """Every object and directory marker below ``prefix``."""
    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path[len(prefix) + 1:] for i in infos)


def contents(fs, prefix: str, names: list[str]) -> dict[str, bytes]:
    got = {}
    for name in names:
        with fs.open_input_stream(f"{prefix}/{name}") as f:
            got[name] = f.read()
    return got


@pytest.mark.parametrize("step, count", STEPS, ids=[f"{s}-{n}" for s, n in STEPS])
def test_an_overwrite_killed_at_any_step_leaves_the_old_output_or_the_new_and_the_next_job_cleans_up(
        s3, bucket, tmp_path, step, count):
    _, fs = s3
    old_t, new_t = table(3000, seed=0), table(500, seed=1)
    new_t = new_t.set_column(3, "row", pa.array(np.arange(500) + 10**6))
    pq.write_table(old_t, tmp_path / "old.parquet")
    pq.write_table(new_t, tmp_path / "new.parquet")
    out, spill = f"s3://{bucket}/out", tmp_path / "spill"
    spill.mkdir()
    partition(str(tmp_path / "old.parquet"), "k", out, npartitions=OLD_FILES, progress=False)
    old_names = objects(fs, f"{bucket}/out")
    assert len(old_names) == OLD_FILES + 1
    old = contents(fs, f"{bucket}/out", old_names)
    killed = subprocess.run([sys.executable, "-c", KILLED_PUBLISH, step, str(count), str(tmp_path / "new.parquet"),
                             out, str(spill)], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    left = [n for n in objects(fs, f"{bucket}/out") if not n.startswith("_temporary/")]
    data = sorted(n for n in left if n != "_SUCCESS")
    new_names = [n for n in data if n not in old]
    committed = step in ("committed", "deleted", "marked")
    if not committed:  # every old file as it was; some new ones beside them (a lister sees both)
        assert contents(fs, f"{bucket}/out", [n for n in old_names if n != "_SUCCESS"]) == {
            n: d for n, d in old.items() if n != "_SUCCESS"}
        assert ("_SUCCESS" in left) == (step in ("staged", "journal"))
        # (copies run side by side: one more may have finished before the kill)
        assert len(new_names) == 0 if step in ("staged", "journal", "unmarked") else count <= len(new_names) <= 2
    else:  # the new files complete; some old ones beside them until the marker
        assert len(new_names) == 2
        got = ds.dataset([f"{bucket}/out/{n}" for n in new_names], filesystem=fs, format="parquet").to_table()
        assert sorted(got["row"].to_pylist()) == new_t["row"].to_pylist()
        assert ("_SUCCESS" in left) == (step == "marked")
    assert os.listdir(spill)  # the dead job's local staging
    # the next job on --out is refused (not empty), but first finishes or takes back the dead one's work
    r = cli("partition", tmp_path / "new.parquet", "--on", "k", "--out", out, "--tmp", spill)
    assert_one_line_error(r, out, "not empty")
    assert os.listdir(spill) == []
    after = everything(fs, f"{bucket}/out")
    assert not [n for n in after if n.startswith("_temporary")], after
    back = ds.dataset(f"{bucket}/out", filesystem=fs, format="parquet").to_table()
    if committed:
        assert sorted(after) == sorted(["_SUCCESS", *new_names])
        assert sorted(back["row"].to_pylist()) == new_t["row"].to_pylist()
        with fs.open_input_stream(f"{bucket}/out/_SUCCESS") as f:
            assert json.loads(f.read()) == {"files": new_names}
    else:  # exactly the old output, marker and all
        assert after == old_names
        assert contents(fs, f"{bucket}/out", old_names) == old
        assert sorted(back["row"].to_pylist()) == old_t["row"].to_pylist()


def test_a_refused_job_leaves_nothing_behind(s3, bucket, tmp_path):
    _, fs = s3
    pq.write_table(table(100), tmp_path / "in.parquet")
    partition(str(tmp_path / "in.parquet"), "k", f"s3://{bucket}/out", npartitions=2, progress=False)
    before = everything(fs, f"{bucket}/out")
    r = cli("partition", tmp_path / "in.parquet", "--on", "k", "--out", f"s3://{bucket}/out")
    assert_one_line_error(r, "not empty")
    assert everything(fs, f"{bucket}/out") == before  # (no empty _temporary/ marker either)
    r = cli("partition", tmp_path / "in.parquet", "--on", "k", "--out", f"s3://{bucket}/out", "--exists", "overwrite",
            "--tmp", tmp_path / "nowhere")
    assert_one_line_error(r, "--tmp")
    assert everything(fs, f"{bucket}/out") == before
    partition(str(tmp_path / "in.parquet"), "k", f"s3://{bucket}/out", npartitions=3, exists="overwrite",
              progress=False)
    assert not [n for n in everything(fs, f"{bucket}/out") if n.startswith("_temporary")]


def _lease(fs, prefix: str, job: str, host: str, lock: str) -> None:
    with fs.open_output_stream(f"{prefix}/_temporary/{job}/_lease") as f:
        f.write(json.dumps({"host": host, "pid": 1, "lock": lock}).encode())
    with fs.open_output_stream(f"{prefix}/_temporary/{job}/part-00000.parquet") as f:
        f.write(b"uploading")


def test_a_live_jobs_staging_is_left_alone_and_a_dead_ones_removed(s3, bucket, tmp_path, monkeypatch):
    import socket

    from shuffle_kit import lifecycle
    from shuffle_kit.partitioning import publish_objects

    _, fs = s3
    pq.write_table(table(100), tmp_path / "in.parquet")
    prefix = f"{bucket}/out"
    alive = lifecycle.make(".alive-", str(tmp_path))  # its lock is held, by this process
    here = socket.gethostname()
    _lease(fs, prefix, "alive-here", here, lifecycle.lock_file(alive))
    _lease(fs, prefix, "dead-here", here, str(tmp_path / "gone.lock"))  # a lock file nobody holds
    (tmp_path / "gone.lock").touch()
    _lease(fs, prefix, "elsewhere", "another-host", "/x.lock")  # its lease is fresh
    partition(str(tmp_path / "in.parquet"), "k", f"s3://{prefix}", npartitions=2, progress=False)
    jobs = sorted({n.split("/")[1] for n in objects(fs, prefix) if n.startswith("_temporary/")})
    assert jobs == ["alive-here", "elsewhere"]
    # a lease the server has not seen rewritten for longer than LEASE_SECONDS is a dead job's
    monkeypatch.setattr(publish_objects, "LEASE_SECONDS", 1.0)
    time.sleep(2.5)
    partition(str(tmp_path / "in.parquet"), "k", f"s3://{prefix}", npartitions=2, exists="overwrite", progress=False)
    jobs = sorted({n.split("/")[1] for n in objects(fs, prefix) if n.startswith("_temporary/")})
    assert jobs == ["alive-here"]
    lifecycle.remove(alive)
    partition(str(tmp_path / "in.parquet"), "k", f"s3://{prefix}", npartitions=2, exists="overwrite", progress=False)
    assert not [n for n in everything(fs, prefix) if n.startswith("_temporary")]


def test_an_overwrite_that_fails_while_copying_takes_its_copies_back(s3, bucket, tmp_path, monkeypatch):
    from shuffle_kit.partitioning import publish_objects

    _, fs = s3
    pq.write_table(table(1000), tmp_path / "old.parquet")
    pq.write_table(table(300, seed=1), tmp_path / "new.parquet")
    partition(str(tmp_path / "old.parquet"), "k", f"s3://{bucket}/out", npartitions=3, progress=False)
    before = everything(fs, f"{bucket}/out")
    old = contents(fs, f"{bucket}/out", objects(fs, f"{bucket}/out"))

    def fail(step):
        if step == "copied":
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish_objects, "reached", fail)
    with pytest.raises(JobError, match=f"cannot publish to 's3://{bucket}/out': .*No space left"):
        partition(str(tmp_path / "new.parquet"), "k", f"s3://{bucket}/out", npartitions=2, exists="overwrite",
                  progress=False)
    assert everything(fs, f"{bucket}/out") == before
    assert contents(fs, f"{bucket}/out", objects(fs, f"{bucket}/out")) == old


def test_empty_partitions_upload_no_object_unless_asked(s3, bucket, tmp_path):
    from shuffle_kit import Layout
    from shuffle_kit.kernels.hashing import partition_ids

    _, fs = s3
    t = table()  # 50 keys into 200 partitions: most get no row
    pq.write_table(t, tmp_path / "in.parquet")
    n = 200
    full = sorted(set(partition_ids(t, ["k"], n).tolist()))
    for empty_files, have in ((False, full), (True, list(range(n)))):
        out = f"{bucket}/out-{empty_files}"
        s = partition(str(tmp_path / "in.parquet"), "k", f"s3://{out}", npartitions=n, progress=False,
                      layout=Layout(empty_files=empty_files))
        assert (s.partitions, s.files) == (n, len(have)) and s.ok
        assert objects(fs, out) == sorted([f"part-{p:05d}.parquet" for p in have] + ["_SUCCESS"])
        back = ds.dataset(out, filesystem=fs, format="parquet").to_table()
        assert sorted(back.column("row").to_pylist()) == list(range(t.num_rows))


def test_by_range_from_s3_to_s3_writes_the_local_job_files_in_key_order(s3, bucket, tmp_path):
    _, fs = s3
    src = tmp_path / "in"
    src.mkdir()
    t = table()
    for i in range(2):
        pq.write_table(t.slice(i * 2000, 2000), src / f"f{i}.parquet")
    upload(fs, src, f"{bucket}/in")
    layout = Layout(sort_by="k")
    local = partition(str(src), "k", str(tmp_path / "local"), npartitions=4, by_range=True, progress=False,
                      layout=layout)
    remote = partition(f"s3://{bucket}/in", "k", f"s3://{bucket}/out", npartitions=4, by_range=True,
                       progress=False, layout=layout)
    assert remote.rows_out == local.rows_out == t.num_rows
    expected = files_of(tmp_path / "local")
    assert objects(fs, f"{bucket}/out") == sorted([*expected, "_SUCCESS"])
    ranges = []
    for name, data in expected.items():
        with fs.open_input_stream(f"{bucket}/out/{name}") as f:
            assert f.read() == data, name
        stats = pq.read_metadata(tmp_path / "local" / name).row_group(0).column(0).statistics
        ranges.append((stats.min, stats.max))
    assert all(hi < lo for (_, hi), (lo, _) in zip(ranges, ranges[1:])), ranges
    back = ds.dataset(f"{bucket}/out", filesystem=fs, format="parquet").to_table()
    assert back.column("k").to_pylist() == sorted(t.column("k").to_pylist())
