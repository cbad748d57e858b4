"""Shared test helpers."""

from __future__ import annotations

import datetime
import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import strategies as st

from shuffle_kit.codecs import ArrowIPC

FRAME_CODECS = [ArrowIPC]


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

