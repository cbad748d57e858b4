"""Frame codecs against the model ``pandas.concat`` of each key's pieces.

The strategies here (``frames``, ``appends``) are shared by the other test_codecs_* files.
"""

from __future__ import annotations

import decimal
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuffle_kit import LZ4, Buffer, CodecError, Dict, File, PandasBlocks
from shuffle_kit.codecs import ArrowIPC
from shuffle_kit.codecs import TableBuffer as TableBufferCodec
from tests.helpers.frames import (
    COLUMNS,
    FRAME_CODECS,
    LIGHT,
    appends,
    check,
    frames,
)

try:  # the other frame codecs join this file's tests as they land
    from shuffle_kit.codecs import PandasBlocks, PandasColumns

    FRAME_CODECS += [PandasBlocks, PandasColumns]
except ImportError:
    pass


def TableBuffer(store):  # noqa: N802 (named like the codec, for the test ids)
    """A TableBuffer that keeps a few small appends in memory and spills the rest, so
    reads mix spilled and in-memory pieces."""
    from shuffle_kit.codecs import TableBuffer as Codec

    return Codec(store, memory_limit=300)


FRAME_CODECS.append(TableBuffer)

# -- values for one column of n rows ---------------------------------------------------------


# -- indexes -------------------------------------------------------------------------------


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", FRAME_CODECS, ids=lambda c: c.__name__)
@given(appended=appends())
def test_every_dtype_over_dict(codec, appended):
    check(codec(Dict()), appended)


def _stores(tmp_path):
    return {
        "dict": lambda: Dict(),
        "file": lambda: File(tmp_path / f"s{np.random.randint(1 << 30)}"),
        "buffer": lambda: Buffer(Dict(), File(tmp_path / f"b{np.random.randint(1 << 30)}"), available_memory=300),
    }


@pytest.mark.parametrize("store", ["file", "buffer"])
@pytest.mark.parametrize("codec", FRAME_CODECS, ids=lambda c: c.__name__)
@settings(max_examples=15)
@given(appended=appends(kinds=LIGHT))
def test_stores(codec, store, appended, tmp_path_factory):
    s = _stores(tmp_path_factory.mktemp("s"))[store]()
    with codec(s) as c:
        check(c, appended)


def _one_of_each(n=4):
    """One hand-made column per dtype of the issue's list, so a failure names the dtype."""
    return pd.DataFrame({
        **{d: np.arange(n, dtype=d) for d in ["int8", "uint16", "int64", "uint64", "float16", "float32"]},
        "bool": [True, False] * (n // 2),
        "str": pd.Series(["a", None, "c", "d"], dtype="str"),
        "spy": pd.Series(["a", None, "c", "d"], dtype="string[python]"),
        "spa": pd.Series(["a", None, "c", "d"], dtype="string[pyarrow]"),
        "obj": pd.Series([1, "a", (1, 2), None], dtype=object),
        "objstr": pd.Series(["a", None, "b", "c"], dtype=object),
        "bytes": pd.Series([b"a", b"", None, b"x"], dtype=object),
        "cat": pd.Categorical(["a", "b", "a", None], categories=["b", "a", "z"], ordered=True),
        "catint": pd.Categorical([1, 2, 1, None]),
        **{f"M8[{u}]": pd.date_range("2000", periods=n).as_unit(u) for u in ["s", "ms", "us", "ns"]},
        "tz": pd.date_range("2000", periods=n, tz="Europe/Paris"),
        "td": pd.to_timedelta(np.arange(n), unit="s"),
        "per": pd.period_range("2000", periods=n, freq="M"),
        "iv": pd.interval_range(0, n),
        "ivf": pd.IntervalIndex.from_breaks(np.arange(n + 1.0), closed="left"),
        "Int64": pd.Series([1, None, 3, 4], dtype="Int64"),
        "boolean": pd.Series([True, None, False, True], dtype="boolean"),
        "Float64": pd.Series([1.5, None, 3, 4], dtype="Float64"),
        "list": pd.Series([[1], [2, 3], None, []], dtype=pd.ArrowDtype(pa.list_(pa.int64()))),
        "struct": pd.Series([{"a": 1}, {"a": 2}, None, {"a": 3}],
                            dtype=pd.ArrowDtype(pa.struct([("a", pa.int64())]))),
        "dec": pd.Series([decimal.Decimal("1.1"), None, decimal.Decimal(-2), decimal.Decimal(0)],
                         dtype=pd.ArrowDtype(pa.decimal128(5, 2))),
        "a_str": pd.Series(["x", None, "y", "z"], dtype=pd.ArrowDtype(pa.string())),
        "sparse": pd.arrays.SparseArray([0, 0, 1, 2]),
        "sparsef": pd.arrays.SparseArray([0.0, np.nan, 1, 2]),
    }, index=pd.MultiIndex.from_arrays([list("abcd"), pd.DatetimeIndex(["2000", "1999", "2000", "2001"], tz="UTC")],
                                       names=["s", 7]))


@pytest.mark.parametrize("codec", FRAME_CODECS, ids=lambda c: c.__name__)
def test_every_dtype_in_one_frame(codec):
    df = _one_of_each()
    c = codec(Dict())
    c.append({"k": df.iloc[:1]})
    c.append({"k": df.iloc[1:]})
    got = c.get("k")
    for kind in df.columns:
        pd.testing.assert_series_equal(got[kind], df[kind], check_exact=True, obj=kind)
    pd.testing.assert_frame_equal(got, df, check_exact=True)


def test_arrow_tables_and_as_arrow():
    c = ArrowIPC(Dict())
    t = pa.table({"a": [1, 2], "b": ["x", "y"]})
    c.append({"k": t})
    c.append({"k": t.to_batches()[0]})
    got = c.get("k", as_arrow=True)
    assert got.equals(pa.concat_tables([t, t]))
    assert c.get("k")["a"].tolist() == [1, 2, 1, 2]
    assert c.get("never", as_arrow=True).num_rows == 0
    assert c.get("never").empty


def test_as_arrow_is_zero_copy():
    store = Dict()
    c = ArrowIPC(store)
    c.append({"k": pd.DataFrame({"a": np.arange(1000)})})
    (record,), = store.get_records(["k"])
    table = c.get("k", as_arrow=True)
    address = table.column("a").chunk(0).buffers()[1].address
    start = np.frombuffer(record, dtype=np.uint8).ctypes.data
    assert start <= address < start + len(record)


def test_unstorable_column_named_at_append():
    c = ArrowIPC(Dict())
    df = pd.DataFrame({"ok": [1], "bad": pd.Series(pd.arrays.SparseArray([pd.Timestamp(0)]))})
    with pytest.raises(TypeError, match="bad"):
        c.append({"k": df})
    assert c.get("k").empty


@pytest.mark.parametrize("codec", FRAME_CODECS, ids=lambda c: c.__name__)
def test_wrong_codec_is_clear(codec):
    store = Dict()
    store.append({"k": b"raw bytes"})
    with pytest.raises(CodecError, match="untagged"):
        codec(store).get("k")
    from shuffle_kit.codecs import Pickle

    Pickle(store).append({"p": [1]})
    with pytest.raises(CodecError, match="written by Pickle"):
        codec(store).get("p")


@pytest.mark.parametrize("codec", FRAME_CODECS, ids=lambda c: c.__name__)
def test_corrupt_record_is_clear(codec):
    from shuffle_kit import CorruptionError

    store = Dict()
    codec(store).append({"k": pd.DataFrame({"a": np.arange(100), "b": ["x"] * 100})})
    # keep each record's tag, so the codec gets as far as decoding the damaged body
    for kb, records in store._data.items():
        store._data[kb] = [bytes(r[:8]) + bytes(255 - b for b in bytes(r[8:])) for r in records]
    with pytest.raises(CorruptionError):
        codec(store).get("k")


@pytest.mark.parametrize("codec", FRAME_CODECS, ids=lambda c: c.__name__)
def test_pickles_and_passes_through(codec, tmp_path):
    c = codec(File(tmp_path / "s"))
    df = pd.DataFrame({"a": [1, 2]})
    c.append({"k": df}, batch_id=b"once")
    c.append({"k": df}, batch_id=b"once")  # a retried append is ignored
    c2 = pickle.loads(pickle.dumps(c))
    pd.testing.assert_frame_equal(c2.get("k"), df)
    with c.lock:
        assert len(c.get(["k"], lock=False)[0]) == 2
    popped = c.pop("k")
    assert len(popped) == 2 and c.get("k").empty
    c.drop()
    c.close()


@pytest.mark.parametrize("kind", sorted(COLUMNS))
@pytest.mark.parametrize("codec", FRAME_CODECS, ids=lambda c: c.__name__)
@settings(max_examples=6)
@given(data=st.data())
def test_each_dtype(codec, kind, data):
    # frames of mostly this one dtype, so every dtype gets its own share of examples
    appended = data.draw(appends(kinds=(kind, kind, kind, "int64"), max_rows=5))
    check(codec(Dict()), appended)


@pytest.mark.parametrize("codec", [c for c in FRAME_CODECS if c.__name__ != "PandasColumns"], ids=lambda c: c.__name__)
def test_duplicate_labels_and_zero_columns(codec):
    df = pd.DataFrame([[1, "a", 2.5]], columns=["x", "x", 0])
    c = codec(Dict())
    c.append({"k": df, "z": pd.DataFrame(index=pd.Index([3, 1], name="i"))})
    c.append({"k": df})
    pd.testing.assert_frame_equal(c.get("k"), pd.concat([df, df]), check_exact=True)
    pd.testing.assert_frame_equal(c.get("z"), pd.DataFrame(index=pd.Index([3, 1], name="i")))


@pytest.mark.parametrize("make", [
    lambda d: ArrowIPC(File(d)),
    lambda d: ArrowIPC(LZ4(File(d))),
    lambda d: TableBufferCodec(File(d), memory_limit=6000),  # the oldest appends spilled, the last held
    lambda d: PandasBlocks(Dict()),
])
def test_iter_pieces_reads_a_key_piece_by_piece(make, tmp_path):
    codec = make(str(tmp_path / "s"))
    frames = [pd.DataFrame({"a": np.arange(i * 100, i * 100 + 100), "b": [f"s{i}"] * 100}) for i in range(12)]
    for i, df in enumerate(frames):
        codec.append({"k": df, "other": df.head(i)})
    want = codec.get_pieces(["k"])[0]
    got = list(codec.iter_pieces("k", max_bytes=2000))
    assert len(got) == len(want) == 12
    for g, w, df in zip(got, want, frames):
        g = g.to_pandas() if isinstance(g, pa.Table) else g
        w = w.to_pandas() if isinstance(w, pa.Table) else w
        pd.testing.assert_frame_equal(g.reset_index(drop=True), w.reset_index(drop=True))
        assert g["a"].tolist() == df["a"].tolist()
    assert list(codec.iter_pieces("never")) == []
    if isinstance(codec, TableBufferCodec):
        assert 0 < codec.memory_usage < sum(df.memory_usage().sum() for df in frames)


def test_every_dtype_converts_alike_without_pyarrows_threads():
    """tables_to_frame(threads=False) (pyarrow's pool left alone, as dask tasks do) gives
    the frame the threaded conversion gives, every dtype and index level included."""
    from shuffle_kit.frames import frame_to_table, tables_to_frame

    df = _one_of_each()
    tables = [frame_to_table(df.iloc[:1]), frame_to_table(df.iloc[1:])]
    pd.testing.assert_frame_equal(tables_to_frame(tables, threads=False), df, check_exact=True)
    pd.testing.assert_frame_equal(tables_to_frame(tables, threads=False), tables_to_frame(tables), check_exact=True)


@settings(max_examples=40)
@given(df=frames(), data=st.data())
def test_an_owned_table_converts_alike_into_writable_columns(df, data):
    """tables_to_frame(owned=True) of a table a take made (as a dask sort's read task
    does): the frame of the copying conversion, its number columns over the table's
    buffers and writable in place."""
    from shuffle_kit.frames import frame_to_table, tables_to_frame
    from shuffle_kit.kernels.take import take

    rows = np.array(data.draw(st.permutations(range(len(df)))), dtype=np.int64)
    table = take(frame_to_table(df), rows)
    want = tables_to_frame([table])
    got = tables_to_frame([table], owned=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    for j in range(got.shape[1]):
        column = got.iloc[:, j]
        if len(got) and isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf":
            got.iloc[0, j] = column.iloc[-1]
            assert got.iloc[0, j] == column.iloc[-1] or column.dtype.kind == "f"


def test_an_owned_table_hands_its_numbers_over_without_a_copy():
    from shuffle_kit.frames import frame_to_table, tables_to_frame
    from shuffle_kit.kernels.take import take

    n = 10_000
    df = pd.DataFrame({"i": np.arange(n), "x": np.arange(n) / 2, "s": pd.Series(["a", "b"] * (n // 2), dtype="str")})
    table = take(frame_to_table(df), np.arange(n)[::-1].copy())
    got = tables_to_frame([table], owned=True)
    for name in ("i", "x"):
        arrow = np.frombuffer(table.column(name).chunk(0).buffers()[1], dtype=got[name].dtype)
        assert np.shares_memory(got[name].to_numpy(), arrow)
    got.loc[0, "i"] = -1
    assert got["i"].iloc[0] == -1
    pd.testing.assert_frame_equal(got.iloc[1:], df.iloc[::-1].reset_index(drop=True).iloc[1:])
