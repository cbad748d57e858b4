"""Partitioning from and into an S3-compatible object store: a real server (moto's
standalone server, in its own process on loopback, started here), reached through pyarrow's
own S3 client configured by the standard AWS environment variables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from shuffle_kit import partition, shuffle
from shuffle_kit.partitioning.job import JobError

from .test_cli import assert_one_line_error, cli

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
    # overwrite with fewer partitions: the old files beyond them are gone
    r = cli(*args[:-1], "2", "--exists", "overwrite")
    assert r.returncode == 0, r.stderr
    assert objects(fs, f"{bucket}/out") == ["_SUCCESS", "part-00000.parquet", "part-00001.parquet"]
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


def test_empty_partitions_upload_no_object_unless_asked(s3, bucket, tmp_path):
    from shuffle_kit import Layout
    from shuffle_kit.shuffling.hashing import partition_ids

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
