"""A DataFrame that fits the memory limit is shuffled whole in memory
(:mod:`shuffle_kit.shuffling.hashed_frame`): the same partitions, rows, order, index and
dtypes as the store path gives the same frame, for any number of threads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.frames import tables_to_frame
from shuffle_kit.shuffling.frame_slices import FrameSlices
from tests.helpers.memory import WATCH_PEAK_RSS, assert_frame_held_within


@st.composite
def frames(draw):
    n = draw(st.integers(0, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    words = np.array(["a", "bb", "ccc", "", "dd"], dtype=object)
    s = words[rng.integers(0, len(words), n)]
    s[rng.random(n) < 0.2] = None
    f = rng.integers(0, 4, n).astype("float64")
    f[rng.random(n) < 0.2] = np.nan
    df = pd.DataFrame({
        "k": rng.integers(0, 6, n),
        "s": pd.Series(s, dtype=draw(st.sampled_from(["str", "object", "string"]))),
        "f": f,
        "c": pd.Categorical.from_codes(rng.integers(-1, 3, n), ["x", "y", "z"]),
        "i": pd.array(rng.integers(0, 9, n), dtype="Int32"),
        "o": pd.Series([(j % 3, "t") for j in range(n)], dtype=object),
    })
    index = draw(st.sampled_from(["range", "named range", "labels", "key level", "two levels"]))
    if index == "named range":
        df.index = pd.RangeIndex(n, name="r")
    elif index == "labels":
        df.index = pd.Index([f"row{j}" for j in rng.permutation(n)], name=None)
    elif index == "key level":
        df = df.set_index("k", drop=True)
    elif index == "two levels":
        df = df.set_index(["k", "s"], drop=False)
        df.index.names = ["kk", "ss"]
    return df


def _on(df, draw):
    names = [c for c in ["k", "s", "f", "c", "i"] if c in df.columns or c in df.index.names]
    return draw(st.sampled_from([names[0], names[:2], "s" if "s" in df.columns else names[0]]))


def _parts(res, as_arrow=False):
    return [res.partition(i, as_arrow=as_arrow) for i in range(len(res))]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_frame_shuffled_in_memory_equals_the_store_paths_partitions(data):
    df = data.draw(frames())
    on = _on(df, data.draw)
    n = data.draw(st.integers(1, 7))
    kwargs = dict(
        partitioner=data.draw(st.sampled_from(["hash", "dask"])), dropna=data.draw(st.booleans()),
        keep_index=data.draw(st.sampled_from([None, True, False])), progress=False,
    )
    with sk.shuffle(iter([df]), on, n, **kwargs) as stored:
        want = list(stored)
        want_arrow = _parts(stored, as_arrow=True)
    for threads in (1, 2, 5):
        with sk.shuffle(df, on, n, threads=threads, **kwargs) as res:
            assert isinstance(res, FrameSlices)
            got = list(res)
            assert len(got) == len(want) == n
            for g, w in zip(got, want):
                pd.testing.assert_frame_equal(g, w, check_index_type=True, check_column_type=True)
            # as Arrow, the same rows; the types of object columns are each slice's own
            # (None alone is null-typed, mixed values pickled), as the store path's are
            # its first chunk's: the same frames once read back
            for g, w in zip(_parts(res, as_arrow=True), want_arrow):
                assert g.column_names == w.column_names and g.num_rows == w.num_rows
                if not w.num_rows:
                    continue
                pd.testing.assert_frame_equal(tables_to_frame([g]), tables_to_frame([w]), check_dtype=False)
            assert res.sizes == stored.sizes


def test_a_frame_in_memory_reads_as_a_shuffle_result_does(tmp_path):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"k": rng.integers(0, 20, 500), "x": rng.random(500)})
    with sk.shuffle(df, "k", 6, progress=False) as res:
        assert isinstance(res, FrameSlices) and "memory" in repr(res)
        parts = list(res)
        assert [len(p) for p in parts] == res.sizes and sum(res.sizes) == len(df) and sum(res.nbytes) > 0
        for got, want in zip(res.read(range(6)), parts, strict=True):
            pd.testing.assert_frame_equal(got, want)
        for i, part in enumerate(parts):
            pieces = list(res.pieces(i))
            assert len(pieces) == (1 if len(part) else 0)
            if pieces:
                pd.testing.assert_frame_equal(pieces[0], part)
        assert dict(res.nonempty()).keys() == {i for i, p in enumerate(parts) if len(p)}
        whole = res.to_pandas()
        pd.testing.assert_frame_equal(whole, pd.concat(parts, ignore_index=True))
        assert res.to_arrow().num_rows == len(df)
        assert res.to_polars().height == len(df)
        assert [t.num_rows for t in res.iter_arrow()] == res.sizes
        assert res.partition(-1, as_polars=True).height == res.sizes[-1]
        paths = res.write_parquet(tmp_path / "out")
        assert len(paths) == 6
        assert "Partitions" in res._repr_html_()
    with pytest.raises(sk.errors.JobError):
        res.partition(0)


def test_an_empty_partition_and_an_empty_frame_keep_the_columns_and_dtypes():
    df = pd.DataFrame({"k": [1], "s": pd.Series(["a"], dtype="str"), "c": pd.Categorical(["u"])})
    with sk.shuffle(df, "k", 3, progress=False) as res:
        empty = [p for p in res if len(p) == 0][0]
        assert list(empty.dtypes) == list(df.dtypes) and isinstance(empty.index, pd.RangeIndex)
        assert res.partition(0, as_arrow=True).schema.names == ["k", "s", "c"]
    with sk.shuffle(df.iloc[:0], "k", 2, progress=False) as res:
        assert res.sizes == [0, 0] and list(res[0].dtypes) == list(df.dtypes)


def test_a_frame_over_the_memory_limit_goes_through_the_store():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"k": rng.integers(0, 100, 200_000), "x": rng.random(200_000)})  # 3.2 MB
    with sk.shuffle(df, "k", 4, memory_limit="1MiB", progress=False) as stored:
        assert not isinstance(stored, FrameSlices) and stored.codec is not None
        want = list(stored)
    with sk.shuffle(df, "k", 4, progress=False) as res:
        assert isinstance(res, FrameSlices)
        for g, w in zip(res, want):
            pd.testing.assert_frame_equal(g, w)


def test_a_given_store_or_another_partitioner_goes_through_the_store():
    df = pd.DataFrame({"k": range(10)})
    with sk.shuffle(df, "k", 2, store=sk.Dict(), progress=False) as res:
        assert not isinstance(res, FrameSlices)
    with sk.shuffle(df, "k", 2, partitioner=lambda t, f, n: np.zeros(t.num_rows, int), progress=False) as res:
        assert not isinstance(res, FrameSlices) and res.sizes == [10, 0]
    with sk.shuffle(df, "k", 2, partitioner="range", progress=False) as res:
        assert not isinstance(res, FrameSlices)


def test_bad_arguments_are_refused_before_the_in_memory_path():
    df = pd.DataFrame({"k": [1, 2]})
    with pytest.raises(sk.errors.ShuffleKitError, match="nope"):
        sk.shuffle(df, "nope", 2, progress=False)
    with pytest.raises(sk.errors.ShuffleKitError, match="npartitions"):
        sk.shuffle(df, "k", 0, progress=False)
    with pytest.raises(sk.errors.ShuffleKitError):
        sk.shuffle(pd.DataFrame({"k": [[1], [2]]}), "k", 2, progress=False)


FRAME_RSS_SCRIPT = """
import json, sys
import numpy as np, pandas as pd
import shuffle_kit
n = int(sys.argv[1])
rng = np.random.default_rng(0)
df = pd.DataFrame({"key": rng.integers(0, 10**5, n), "x": rng.random(n),
                   "s": pd.Series(np.array([f"w{i:08d}" for i in range(1000)])[rng.integers(0, 1000, n)], dtype="str")})
nbytes = int(df.memory_usage(deep=True).sum())
""" + WATCH_PEAK_RSS + """
with shuffle_kit.shuffle(df, sys.argv[2], 64, memory_limit=sys.argv[3], progress=False) as res:
    whole = type(res).__name__ == "FrameSlices"
    rows = sum(len(p) for p in res)
stop_watching()
print(json.dumps({"base": base, "peak": peak[0], "nbytes": nbytes, "whole": whole, "rows": rows}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("key", ["key", "s"])
def test_a_frame_shuffled_in_memory_holds_its_copy_keys_and_order_within_the_limit(key):
    # what fits() counts: the shuffled copy, a copy of the keys and 24 bytes per row
    assert_frame_held_within(FRAME_RSS_SCRIPT, key, 24, "shuffled on")
