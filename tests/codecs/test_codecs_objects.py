"""Encode (partd-style user functions), Pickle, Python, Numpy, PandasColumns column reads,
the partd facade's helpers, and the fast frame conversion against the general one."""

from __future__ import annotations

import pickle
import zlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shuffle_kit import (
    CodecError,
    Dict,
    Encode,
    File,
    Numpy,
    PandasColumns,
    Pickle,
    Python,
    ZLib,
    frames,
)
from tests.helpers.frames import LIGHT, appends


def test_encode_with_user_functions_is_partd_style(tmp_path):
    e = Encode(zlib.compress, zlib.decompress, b"".join, File(tmp_path / "s"))
    e.append({"x": b"abc", "y": b""})
    e.append({"x": b"def"}, batch_id=b"1")
    e.append({"x": b"def"}, batch_id=b"1")
    assert e.get(["x", ["y", "never"]]) == [b"abcdef", [b"", b""]]
    # each object is its own record: decode sees exactly what encode made
    assert [zlib.decompress(r) for r in e.get_records(["x"])[0]] == [b"abc", b"def"]
    e.iset("i", b"v")
    assert e.pop("i") == b"v" and e.get("i") == b""


@pytest.mark.parametrize("codec", [Pickle, Python])
@given(appended=st.lists(st.dictionaries(st.sampled_from(["a", 1]), st.lists(
    st.one_of(st.integers(), st.text(max_size=3), st.none(), st.tuples(st.floats(allow_nan=False))),
    max_size=4), max_size=3), max_size=5))
def test_lists_equal_the_model(codec, appended):
    c = codec(Dict())
    for data in appended:
        c.append(data)
    for key in ["a", 1, "never"]:
        assert c.get(key) == [x for data in appended for x in data.get(key, [])]


def test_pickle_and_python_tags_differ():
    d = Dict()
    Pickle(d).append({"k": [1]})
    with pytest.raises(CodecError, match="written by Pickle, cannot be read by Python"):
        Python(d).get("k")


DTYPES = st.sampled_from([np.dtype(t) for t in ["<i8", ">i4", "u1", "<f4", "?", "M8[ms]", "<m8[s]", "c16"]]
                         + [np.dtype([("a", "<i4"), ("b", ">f8")])])


@st.composite
def array_pieces(draw):
    """Arrays of one dtype and trailing shape, of random lengths."""
    dtype = draw(DTYPES)
    trailing = draw(st.lists(st.integers(0, 3), max_size=2))
    lengths = draw(st.lists(st.integers(0, 4), min_size=1, max_size=4))
    return [draw(hnp.arrays(dtype, (n, *trailing))) for n in lengths]


@given(pieces=array_pieces())
def test_numpy_concatenates_exactly(pieces):
    n = Numpy(ZLib(Dict()))
    for p in pieces:
        n.append({"k": p})
    got = n.get("k")
    expected = np.concatenate(pieces)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()  # bit-exact, NaN payloads and byte order included
    assert got.flags.writeable


def test_numpy_refuses_another_dtype_or_shape_and_keeps_objects():
    n = Numpy(Dict())
    n.append({"k": np.zeros((2, 3), dtype="i4")})
    with pytest.raises(TypeError, match=r"int32 arrays of shape \(n, 3\); cannot append int64"):
        n.append({"k": np.zeros((1, 3), dtype="i8")})
    with pytest.raises(TypeError, match="shape"):
        n.append({"k": np.zeros((1, 2), dtype="i4")})
    n.delete("k")
    n.append({"k": np.array([1.5])})  # a deleted key takes a new dtype
    n.append({"o": np.array([{"a": 1}, None, "s"], dtype=object)})
    n.append({"o": np.array([(1, 2)] + [None], dtype=object)[:1]})
    assert n.get("o").tolist() == [{"a": 1}, None, "s", (1, 2)]
    assert n.get("never").shape == (0,)
    with pytest.raises(TypeError, match="at least one dimension"):
        n.append({"z": np.float64(1)})


def test_partd_facade_helpers():
    import shuffle_kit.partd as sp

    x = np.arange(5, dtype=">i2")
    assert sp.numpy.deserialize(sp.numpy.serialize(x), x.dtype).tolist() == x.tolist()
    o = np.array(["a", 1, None], dtype=object)
    both = sp.numpy.serialize(o) + sp.numpy.serialize(o[:1])
    assert sp.numpy.deserialize(both, "O").tolist() == ["a", 1, None, "a"]
    df = pd.DataFrame({"a": pd.Categorical(["x"]), 1: [pd.Timestamp(0, tz="UTC")]}, index=["i"])
    pd.testing.assert_frame_equal(sp.pandas.deserialize(sp.pandas.serialize(df)), df, check_exact=True)
    names = ["Encode", "Pickle", "Python", "Numpy", "PandasBlocks", "PandasColumns", "ZLib", "BZ2", "Snappy", "LZ4"]
    for name in names:
        assert getattr(sp, name).__module__.startswith("shuffle_kit.codecs"), name


def test_pandas_columns_reads_only_the_columns_asked_for():
    d = Dict()
    c = PandasColumns(d)
    c.append({"k": pd.DataFrame({"a": [1, 2], "b": ["x", "y"], 3: [0.5, 1.5]}, index=[10, 11])})
    c.append({"k": pd.DataFrame({"b": ["z"], "c": [True]}, index=[12])})
    got = c.get("k", columns=["b", 3])
    expected = pd.concat([pd.DataFrame({"a": [1, 2], "b": ["x", "y"], 3: [0.5, 1.5]}, index=[10, 11]),
                          pd.DataFrame({"b": ["z"], "c": [True]}, index=[12])])[["b", 3]]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # the column 'a' is its own key in the store: reading 'b' never touched it
    assert [k for k in d._data if b"column" in k and k.endswith(b'"a"')]
    with pytest.raises(KeyError):
        c.get("k", columns=["never"])
    c.delete("k")
    assert c.get("k").empty and not d._data


def test_fast_conversion_is_taken_for_common_frames():
    df = pd.DataFrame({"a": [1, 2], "s": ["x", None], "c": pd.Categorical(["u", "v"])}, index=[5, 6])
    assert frames._fast_plan(df) is not None
    assert frames._fast_plan(df.astype({"a": "Int64"})) is None  # extension dtypes: general path


@given(appended=appends(kinds=LIGHT, max_rows=5))
def test_fast_conversion_equals_general(appended):
    # the per-layout fast path must build the very table the general path builds
    for data in appended:
        for df in data.values():
            if frames._fast_plan(df) is not None:
                fast, general = frames.frame_to_table(df), frames._general_frame_to_table(df)
                assert fast.equals(general) and fast.schema.metadata == general.schema.metadata


def test_pickled_codecs_pickle():
    c = Numpy(Dict())
    c.append({"k": np.arange(3)})
    assert pickle.loads(pickle.dumps(c)).get("k").tolist() == [0, 1, 2]
