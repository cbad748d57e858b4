"""Frame codecs against the model ``pandas.concat`` of each key's pieces.

The strategies here (``frames``, ``appends``) are shared by the other test_codecs_* files.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
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

FRAME_CODECS = [ArrowIPC]
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
text = st.text(alphabet="ab\u00e9\u4e2d ", max_size=4)


def maybe(s):
    return st.one_of(st.none(), s)


def _ints(dtype):
    info = np.iinfo(dtype)
    return lambda n: st.lists(st.integers(info.min, info.max), min_size=n, max_size=n).map(
        lambda v: pd.Series(v, dtype=dtype)
    )


def _floats(dtype):
    w = np.dtype(dtype).itemsize * 8
    return lambda n: st.lists(st.floats(width=w, allow_nan=True), min_size=n, max_size=n).map(
        lambda v: pd.Series(v, dtype=dtype)
    )


def _listed(elements, make):
    return lambda n: st.lists(elements, min_size=n, max_size=n).map(make)


def _categorical(n):
    return st.tuples(
        st.lists(maybe(st.sampled_from("pqrs")), min_size=n, max_size=n),
        st.permutations("pqrst"),
        st.booleans(),
    ).map(lambda a: pd.Series(pd.Categorical(a[0], categories=a[1], ordered=a[2])))


def _datetimes(unit, tz=None):
    def make(v):
        s = pd.Series(pd.to_datetime(v, unit="s").as_unit(unit))
        return s.dt.tz_localize(tz) if tz else s

    return _listed(maybe(st.integers(-(2**31), 2**31)), make)


_ARROW_TYPES = {
    "list": (pa.list_(pa.int64()), maybe(st.lists(st.integers(-5, 5), max_size=3))),
    "struct": (pa.struct([("a", pa.int64()), ("b", pa.string())]),
               maybe(st.fixed_dictionaries({"a": maybe(st.integers(-5, 5)), "b": maybe(text)}))),
    "decimal": (pa.decimal128(7, 2), maybe(st.decimals(-1000, 1000, places=2, allow_nan=False))),
    "date": (pa.date32(), maybe(st.dates(datetime.date(1900, 1, 1), datetime.date(2100, 1, 1)))),
    "string": (pa.string(), maybe(text)),
}


def _arrow(name):
    typ, elements = _ARROW_TYPES[name]
    return _listed(elements, lambda v: pd.Series(pa.array(v, type=typ), dtype=pd.ArrowDtype(typ)))


COLUMNS = {
    **{d: _ints(d) for d in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]},
    **{d: _floats(d) for d in ["float16", "float32", "float64"]},
    "bool": _listed(st.booleans(), lambda v: pd.Series(v, dtype=bool)),
    "str": _listed(maybe(text), lambda v: pd.Series(v, dtype="str")),
    "string[python]": _listed(maybe(text), lambda v: pd.Series(v, dtype="string[python]")),
    "string[pyarrow]": _listed(maybe(text), lambda v: pd.Series(v, dtype="string[pyarrow]")),
    "object": _listed(
        st.one_of(st.none(), st.integers(), text, st.tuples(st.integers(), text), st.just(float("nan"))),
        lambda v: pd.Series(v + [None], dtype=object).iloc[:-1],
    ),
    "object_str": _listed(maybe(text), lambda v: pd.Series(v + [None], dtype=object).iloc[:-1]),
    "bytes": _listed(maybe(st.binary(max_size=4)), lambda v: pd.Series(v + [None], dtype=object).iloc[:-1]),
    "category": _categorical,
    **{f"M8[{u}]": _datetimes(u) for u in ["s", "ms", "us", "ns"]},
    "datetime_tz": _datetimes("us", "Europe/Paris"),
    "datetime_utc": _datetimes("ns", "UTC"),
    "timedelta": _listed(maybe(st.integers(-(10**9), 10**9)),
                         lambda v: pd.Series(pd.to_timedelta(v, unit="ms"))),
    "timedelta_s": _listed(st.integers(-(10**6), 10**6),
                           lambda v: pd.Series(pd.to_timedelta(v, unit="s").as_unit("s"))),
    "period": _listed(st.integers(0, 500), lambda v: pd.Series(pd.PeriodIndex.from_ordinals(v, freq="M"))),
    "interval": _listed(st.integers(-50, 50),
                        lambda v: pd.Series(pd.arrays.IntervalArray.from_arrays(v, [x + 1 for x in v]))),
    "interval_float_left": _listed(st.floats(-1e3, 1e3), lambda v: pd.Series(
        pd.arrays.IntervalArray.from_arrays(v, [x + 0.5 for x in v], closed="left"))),
    "Int64": _listed(maybe(st.integers(-(2**63), 2**63 - 1)), lambda v: pd.Series(v, dtype="Int64")),
    "UInt8": _listed(maybe(st.integers(0, 255)), lambda v: pd.Series(v, dtype="UInt8")),
    "boolean": _listed(maybe(st.booleans()), lambda v: pd.Series(v, dtype="boolean")),
    "Float64": _listed(maybe(st.floats(allow_nan=False)), lambda v: pd.Series(v, dtype="Float64")),
    **{f"arrow_{k}": _arrow(k) for k in _ARROW_TYPES},
    "sparse_int": _listed(st.sampled_from([0, 0, 0, 1, 7]),
                          lambda v: pd.Series(pd.arrays.SparseArray(v, fill_value=0, dtype="Sparse[int64, 0]"))),
    "sparse_float": _listed(st.sampled_from([np.nan, np.nan, 1.5, 0.0]),
                            lambda v: pd.Series(pd.arrays.SparseArray(v))),
}
LIGHT = ["int64", "float64", "str", "category", "M8[ns]", "Int64", "object"]

# -- indexes -------------------------------------------------------------------------------


def _index(n):
    return st.one_of(
        st.tuples(st.integers(-5, 5), st.integers(1, 3)).map(
            lambda a: pd.RangeIndex(a[0], a[0] + n * a[1], a[1])),
        st.lists(st.integers(-3, 3), min_size=n, max_size=n).map(lambda v: pd.Index(v, name="idx")),
        st.lists(maybe(text), min_size=n, max_size=n).map(lambda v: pd.Index(v, dtype="str", name=("a", 1))),
        st.tuples(st.lists(st.sampled_from("xy"), min_size=n, max_size=n),
                  st.lists(st.integers(0, 3), min_size=n, max_size=n)).map(
            lambda a: pd.MultiIndex.from_arrays([a[0], a[1]], names=["l0", None])),
        st.lists(st.integers(0, 10**6), min_size=n, max_size=n).map(
            lambda v: pd.DatetimeIndex(pd.to_datetime(v, unit="s")).tz_localize("Asia/Tokyo")),
        st.lists(st.sampled_from("uvw"), min_size=n, max_size=n).map(
            lambda v: pd.CategoricalIndex(v, categories=["w", "v", "u"], name="c")),
        st.just(pd.date_range("2000", periods=n, freq="D")),
    )


LABELS = st.sampled_from(["str", "int", "mixed", "range"])


def _labels(kind, names):
    if kind == "int":
        return pd.Index([i * 10 for i in range(len(names))])
    if kind == "mixed":
        pool = [0, "a", 1.5, ("t", 1), b"b", None, True]
        return pd.Index([pool[i % len(pool)] if i < len(pool) else f"x{i}" for i in range(len(names))], dtype=object)
    if kind == "range":
        return pd.RangeIndex(len(names))
    return pd.Index(names, dtype="str")


@st.composite
def frames(draw, kinds=tuple(COLUMNS), max_rows=6, max_cols=4, labels=True):
    """A DataFrame whose columns have dtypes from ``kinds``."""
    n = draw(st.integers(0, max_rows))
    names = draw(st.lists(st.sampled_from(list("abcdefg")), max_size=max_cols, unique=True))
    cols = {name: draw(COLUMNS[draw(st.sampled_from(kinds))](n)).reset_index(drop=True) for name in names}
    df = pd.DataFrame(cols, index=pd.RangeIndex(n))
    if not names:
        df = pd.DataFrame(index=pd.RangeIndex(n))
    df.index = draw(_index(n))
    if labels:
        df.columns = _labels(draw(LABELS), names)
    return df


def _drift(draw, df, kinds):
    """A variant of ``df``: a column dropped or added, ints widened to float, new categories."""
    df = df.copy()
    change = draw(st.sampled_from(["none", "drop", "add", "float", "categories"]))
    if change == "drop" and df.shape[1]:
        df = df.drop(columns=df.columns[draw(st.integers(0, df.shape[1] - 1))])
    elif change == "add":
        df["new"] = draw(COLUMNS[draw(st.sampled_from(kinds))](len(df))).set_axis(df.index)
    elif change == "float":
        for c in df.columns:
            if df[c].dtype == "int64":
                df[c] = df[c].astype("float64")
    elif change == "categories":
        for c in df.columns:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].cat.set_categories(draw(st.permutations("pqrsz")))
    return df


@st.composite
def appends(draw, kinds=tuple(COLUMNS), max_rows=6, keys=("k0", "k1", 2)):
    """A list of appends, each a dict {key: frame}: pieces of a frame (and of drifted
    variants of it), in random order, to random keys."""
    base = draw(frames(kinds, max_rows=max_rows, labels=False))
    if base.shape[1] and draw(st.booleans()):
        variants = [base, _drift(draw, base, kinds)]
        base_labels = None
    else:  # no drift: label types other than str are safe to concat
        variants = [base]
        base_labels = _labels(draw(LABELS), list(base.columns))
        base = base.set_axis(base_labels, axis=1)
        variants = [base]
    pieces = []
    for df in variants:
        cuts = sorted(draw(st.lists(st.integers(0, len(df)), max_size=3)))
        bounds = [0, *cuts, len(df)]
        pieces += [df.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    order = draw(st.permutations(range(len(pieces))))
    out = []
    for i in order:
        key = draw(st.sampled_from(keys))
        if out and draw(st.booleans()) and key not in out[-1]:
            out[-1][key] = pieces[i]
        else:
            out.append({key: pieces[i]})
    return out


def model(appended, key):
    """pandas.concat of the key's pieces; categoricals keep the union of their categories."""
    pieces = [a[key] for a in appended if key in a]
    if not pieces:
        return pd.DataFrame()
    if len(pieces) == 1:
        return pieces[0]
    labels = {}
    for p in pieces:
        for label, dt in p.dtypes.items():
            labels.setdefault(label, []).append(dt)
    fixed = [p.copy(deep=False) for p in pieces]
    for label, dts in labels.items():
        if all(isinstance(d, pd.CategoricalDtype) for d in dts) and len(set(dts)) > 1:
            cats = []
            for d in dts:
                cats += [c for c in d.categories if c not in cats]
            ordered = all(d.ordered for d in dts)
            for p in fixed:
                if label in p.columns:
                    p[label] = p[label].cat.set_categories(cats, ordered=ordered)
    return pd.concat(fixed)


def check(codec, appended, keys=("k0", "k1", 2, "never")):
    for data in appended:
        codec.append(data)
    for key in keys:
        pd.testing.assert_frame_equal(codec.get(key), model(appended, key), check_exact=True)


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
