"""``merge`` of the partition job's output: a directory hash-partitioned on a side's join
keys is recognised by the records in its files and taken partition by partition without a
shuffle; anything not exactly that (other keys, count or partitioner, a file without a
record, runs of two counts in one directory, files by value, CSV) is shuffled as any input,
and every join equals ``pandas.merge`` up to row order."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit import JobError, Layout
from shuffle_kit.io.partitioned import PartitionedFiles, recognise
from shuffle_kit.kernels.hashing import HASH_VERSION
from tests.shuffling.test_merge import HOWS, assert_same_join, pandas_or_error, sides


def partitioned(path, df: pd.DataFrame, on, n: int, **kwargs) -> str:
    """``df`` written to Parquet and partitioned by the partition job into ``path``."""
    os.makedirs(f"{path}.in", exist_ok=True)
    df.to_parquet(f"{path}.in/data.parquet", index=False)
    sk.partition(f"{path}.in/data.parquet", on, str(path), npartitions=n, progress=False, **kwargs)
    return str(path)


def frames(seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    left = pd.DataFrame({"k": rng.integers(0, 40, 300), "j": rng.integers(0, 3, 300), "a": np.arange(300)})
    right = pd.DataFrame({"k": rng.integers(0, 50, 200), "j": rng.integers(0, 3, 200), "b": np.arange(200)})
    return left, right


@given(sides(), st.sampled_from(HOWS), st.integers(1, 5), st.sampled_from(["left", "right", "both"]),
       st.booleans())
@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_merge_of_partitioned_directories_equals_pandas(tmp_path_factory, case, how, n, given_as, empty_files):
    left, right, on = case
    tmp = tmp_path_factory.mktemp("sides")
    # the model: pandas' merge of what pandas reads of the files
    layout = Layout(empty_files=empty_files)
    lin: object = left
    rin: object = right
    if given_as in ("left", "both") and len(left):
        lin = partitioned(tmp / "left", left, on, n, layout=layout)
        left = pd.read_parquet(lin)
    if given_as in ("right", "both") and len(right):
        rin = partitioned(tmp / "right", right, on, n, layout=layout)
        right = pd.read_parquet(rin)
    expected = pandas_or_error(left, right, on=on, how=how)
    if expected is None:
        return  # (keys pandas does not join: test_merge covers the error)
    try:
        joined = sk.merge(lin, rin, on=on, how=how, progress=False)
    except JobError as e:
        # pandas cannot merge empty frames of several keys, one of them a string column read
        # from Parquet (zero Arrow chunks): the files shuffled as any input fail the same way
        assert "empty vector" in str(e)
        with pytest.raises(JobError, match="empty vector"):
            sk.merge(lin, rin, on=on, how=how, npartitions=n + 1, progress=False)
        return
    with joined:
        assert joined.reused == (isinstance(lin, str), isinstance(rin, str))
        if any(joined.reused):
            assert joined.npartitions == n
        got = joined.to_pandas()
    assert_same_join(got, expected)


@pytest.mark.parametrize("how", HOWS)
def test_a_recognised_side_is_read_file_by_file_without_a_shuffle(tmp_path, how):
    left, right = frames()
    lpath = partitioned(tmp_path / "left", left, "k", 4)
    rpath = partitioned(tmp_path / "right", right, "k", 4, format="arrow")
    for rin, reused in ((right, (True, False)), (rpath, (True, True))):
        with sk.merge(lpath, rin, on="k", how=how, progress=False, tmp=str(tmp_path / "spill")) as joined:
            assert joined.reused == reused
            # partition i of the side is file part-0000i itself: its rows, nothing shuffled
            assert isinstance(joined.left, PartitionedFiles)
            assert joined.left.sizes == [pq.read_metadata(f"{lpath}/part-{i:05d}.parquet").num_rows
                                         for i in range(4)]
            assert ("left reused" in repr(joined)) and (("right reused" in repr(joined)) == reused[1])
            assert_same_join(joined.to_pandas(), pd.merge(left, right, on="k", how=how))
        assert not os.path.exists(tmp_path / "spill") or not os.listdir(tmp_path / "spill")
    assert sorted(os.listdir(lpath)) == [f"part-{i:05d}.parquet" for i in range(4)]  # the user's files stay


def test_two_recognised_sides_of_other_counts_shuffle_only_the_right(tmp_path):
    left, right = frames()
    lpath = partitioned(tmp_path / "left", left, "k", 4)
    rpath = partitioned(tmp_path / "right", right, "k", 3)
    with sk.merge(lpath, rpath, on="k", progress=False) as joined:
        assert joined.reused == (True, False) and joined.npartitions == 4
        assert_same_join(joined.to_pandas(), pd.merge(left, right, on="k"))
    with sk.merge(lpath, rpath, on="k", npartitions=3, progress=False) as joined:
        assert joined.reused == (False, True)
        assert_same_join(joined.to_pandas(), pd.merge(left, right, on="k"))


def without_record(path: str) -> None:
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({k: v for k, v in table.schema.metadata.items()
                                                   if not k.startswith(b"shuffle_kit.partitioning")}), path)


@pytest.mark.parametrize("how", HOWS)
def test_what_is_not_exactly_co_partitioned_is_shuffled_again(tmp_path, how):
    left, right = frames()
    def out(name: str, on="k", n: int = 4, **kwargs) -> str:
        return partitioned(tmp_path / name, left, on, n, **kwargs)

    def appended(name: str, n: int, again: int) -> str:  # two runs in one directory
        path = out(name, n=n)
        sk.partition(f"{path}.in/data.parquet", "k", path, npartitions=again, exists="append", progress=False)
        return path

    def missing_record(name: str) -> str:
        path = out(name)
        without_record(f"{path}/part-00002.parquet")
        return path

    def renamed(name: str) -> str:  # a file named for another partition than its record's
        path = out(name)
        os.rename(f"{path}/part-00003.parquet", f"{path}/part-00007.parquet")
        return path

    def with_csv(name: str) -> str:
        path = out(name)
        left.iloc[:0].to_csv(f"{path}/part-00009.csv", index=False)
        return path

    cases = [  # (left input, merge's arguments, whether the left is reused)
        (out("same"), {}, True),
        (out("other_count"), {"npartitions": 5}, False),
        (out("other_keys", on="j"), {}, False),
        (out("key_order", on=["j", "k"]), {"on": ["k", "j"]}, False),
        (out("both_keys", on=["j", "k"]), {"on": ["j", "k"]}, True),
        (out("range", by_range=True), {}, False),
        (out("by_value", by_value=True), {}, False),
        (out("csv", format="csv"), {}, False),
        (out("arrow", format="arrow"), {}, True),
        (out("series", layout=Layout(max_rows_per_file=20)), {}, True),
        (appended("append_same", 4, 4), {}, True),
        (appended("append_other", 4, 3), {}, False),
        (missing_record("missing"), {}, False),
        (renamed("renamed"), {}, False),
        (with_csv("with_csv"), {}, False),
    ]
    for lin, kwargs, reused in cases:
        on = kwargs.pop("on", "k")
        name = os.path.basename(lin)
        model = pd.read_parquet(lin) if name.startswith("append") else left  # (appended: every row twice)
        with sk.merge(lin, right, on=on, how=how, progress=False, **kwargs) as joined:
            assert joined.reused == (reused, False), lin
            got = joined.to_pandas()
        expected = pd.merge(model, right, on=on, how=how)
        assert len(got) == len(expected)
        if name not in ("csv", "by_value"):  # (CSV and directory names type columns their own way)
            assert_same_join(got, expected)


def test_keys_of_other_but_joinable_dtypes_on_the_two_sides(tmp_path):
    rng = np.random.default_rng(3)
    left = pd.DataFrame({"k": rng.integers(0, 30, 200), "a": np.arange(200)})  # int64
    codes = rng.integers(0, 40, 150)
    right = pd.DataFrame({"key": pd.array(np.where(codes % 7 == 0, None, codes), dtype="Int64"),
                          "b": np.arange(150)})
    floats = right.assign(key=right["key"].astype("float64"))
    lpath = partitioned(tmp_path / "left", left, "k", 4)
    rpath = partitioned(tmp_path / "right", right, "key", 4)
    fpath = partitioned(tmp_path / "floats", floats, "key", 4)
    for how in HOWS:
        for rin, model in ((rpath, right), (right, right), (fpath, floats), (floats, floats)):
            with sk.merge(lpath, rin, left_on="k", right_on="key", how=how, progress=False) as joined:
                assert joined.reused == (True, isinstance(rin, str))
                got = joined.to_pandas()
            assert_same_join(got, pd.merge(left, model, left_on="k", right_on="key", how=how))


def test_a_side_given_as_files_or_a_glob_of_the_output(tmp_path):
    left, right = frames()
    lpath = partitioned(tmp_path / "left", left, "k", 4)
    some = [f"{lpath}/part-00001.parquet", f"{lpath}/part-00003.parquet"]  # two partitions: their rows only
    model = pd.concat([pd.read_parquet(p) for p in some], ignore_index=True)
    for lin, rows in ((some, model), (f"{lpath}/part-*.parquet", left)):
        with sk.merge(lin, right, on="k", how="outer", progress=False) as joined:
            assert joined.reused == (True, False)
            assert_same_join(joined.to_pandas(), pd.merge(rows, right, on="k", how="outer"))


@pytest.mark.parametrize("how", ["inner", "left"])
def test_skewed_pairs_of_a_recognised_side_split_again(tmp_path, how):
    # as test_merge's skewed pairs: the recognised side's pieces are shuffled again with
    # another seed, and a single hot key joined in chunks
    rng = np.random.default_rng(0)
    n = 150_000
    keys = np.where(rng.random(n) < 0.45, 7, rng.integers(0, 40_000, n)).astype(float)
    left = pd.DataFrame({"k": keys, "a": np.arange(n)})
    right = pd.DataFrame({"k": np.r_[[7.0, 7.0], np.arange(0, 60_000, 3.0)], "b": np.arange(20_002)})
    lpath = partitioned(tmp_path / "left", left, "k", 2)
    with sk.merge(lpath, right, on="k", how=how, memory_limit="1MiB", chunk_bytes="64KiB", progress=False) as joined:
        assert joined.reused == (True, False)
        got = joined.to_pandas()
        assert [hot.key for hot in joined.skew] == [(7.0,)]
    assert_same_join(got, pd.merge(left, right, on="k", how=how))


def test_recognise_names_what_it_takes(tmp_path):
    left, _ = frames()
    path = partitioned(tmp_path / "left", left, ["j", "k"], 3)
    parts = recognise(path, ["j", "k"], hash_version=HASH_VERSION)
    assert parts is not None and parts.npartitions == 3 and parts.on == ("j", "k")
    assert sum(parts.sizes) == len(left) and len(parts.files) == 3
    assert recognise(path, ["j", "k"], hash_version=HASH_VERSION + 1) is None  # another hash
    assert recognise(path, ["k", "j"], hash_version=HASH_VERSION) is None
    assert recognise(left, ["j", "k"], hash_version=HASH_VERSION) is None  # data, not files
    assert recognise(str(tmp_path / "nowhere"), ["j", "k"], hash_version=HASH_VERSION) is None
    shutil.copy(f"{path}/part-00000.parquet", f"{path}/part-00003.parquet")  # a copy named for another partition
    assert recognise(path, ["j", "k"], hash_version=HASH_VERSION) is None


def test_the_bytes_of_arrow_partitions_are_their_rows_in_memory(tmp_path):
    # compressed Arrow files: the size on disk is far below what the rows take in memory
    df = pd.DataFrame({"k": np.arange(20_000) % 50, "s": ["the same words"] * 20_000})
    path = partitioned(tmp_path / "out", df, "k", 2, format="arrow")
    parts = recognise(path, ["k"], hash_version=HASH_VERSION)
    assert parts is not None
    for i in range(2):
        with pa.OSFile(f"{path}/part-{i:05d}.arrow", "rb") as f:
            rows = pa.ipc.open_file(f).read_all()
        assert parts.nbytes[i] == rows.nbytes > 2 * os.path.getsize(f"{path}/part-{i:05d}.arrow")


def test_rows_copied_with_a_record_into_files_of_the_jobs_names_are_never_joined_as_partitions(tmp_path):
    left, right = frames()
    lpath = partitioned(tmp_path / "left", left, "k", 4)
    # pyarrow reads the dataset with the first file's metadata (its record) and writes it
    # into one file: a Parquet record names the rows of its own file, so this is no partition
    whole = pq.read_table(lpath)
    os.makedirs(tmp_path / "copy")
    pq.write_table(whole, tmp_path / "copy" / "part-00000.parquet")
    with sk.merge(str(tmp_path / "copy"), right, on="k", progress=False) as joined:
        assert joined.reused == (False, False)
        assert_same_join(joined.to_pandas(), pd.merge(left, right, on="k"))
    # an Arrow file records no rows (its schema is written first): the rows read are
    # checked to be of the partition the record names, and a file that is not is named
    apath = partitioned(tmp_path / "arrow", left, "k", 4, format="arrow")
    with pa.OSFile(f"{apath}/part-00000.arrow", "rb") as f:
        schema = pa.ipc.open_file(f).schema
    os.makedirs(tmp_path / "arrow_copy")
    with pa.OSFile(str(tmp_path / "arrow_copy" / "part-00000.arrow"), "wb") as f, pa.ipc.new_file(f, schema) as w:
        w.write_table(pa.Table.from_pandas(left, preserve_index=False).replace_schema_metadata(schema.metadata))
    with pytest.raises(JobError, match=r"part-00000.arrow holds rows of hash partition \d of 4 on k, not only of "
                                       r"partition 0 as its record \(shuffle_kit.partitioning\) says"):
        with sk.merge(str(tmp_path / "arrow_copy"), right, on="k", progress=False) as joined:
            joined.to_pandas()
