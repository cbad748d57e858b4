"""The range kernel against pandas' ``sort_values``: every key dtype with an order, nulls,
NaN, ties, several columns, either direction, NAs first or last."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuffle_kit.errors import ShuffleKitError, UnorderableKeyError
from shuffle_kit.frames import frame_to_table
from shuffle_kit.kernels.order_codes import array_order
from shuffle_kit.kernels.ranges import KeyOrder, Sampler, boundaries, range_ids
from tests.helpers.models import ORDERED_KINDS, ordered_column


@st.composite
def frames(draw):
    n = draw(st.integers(0, 60))
    ncols = draw(st.integers(1, 3))
    kinds = draw(st.lists(st.sampled_from(ORDERED_KINDS), min_size=ncols, max_size=ncols))
    codes = st.one_of(st.none(), st.integers(0, draw(st.sampled_from([1, 3, 10, 40]))))
    df = pd.DataFrame({f"k{i}": ordered_column(kind, draw(st.lists(codes, min_size=n, max_size=n)))
                       for i, kind in enumerate(kinds)})
    df["row"] = np.arange(n)
    ascending = draw(st.lists(st.booleans(), min_size=ncols, max_size=ncols))
    return df, [f"k{i}" for i in range(ncols)], ascending


def _keys(df: pd.DataFrame, on: list[str]) -> pa.Table:
    return frame_to_table(df[on].reset_index(drop=True))


@given(frames(), st.sampled_from(["last", "first"]), st.integers(1, 9))
def test_partitions_in_order_equal_pandas_sort_values(case, na_position, npartitions):
    df, on, ascending = case
    keys = _keys(df, on)
    order = KeyOrder.of(keys, on, ascending, na_position)
    bounds = boundaries(keys, npartitions, order)
    assert bounds.num_rows == (npartitions - 1 if len(df) else 0)
    ids = range_ids(keys, bounds, order)
    assert ((0 <= ids) & (ids < npartitions)).all()
    # the partitions in order, each sorted stably, are pandas' stable sort
    expect = df.sort_values(on, ascending=ascending, na_position=na_position, kind="stable")["row"].tolist()
    got = []
    for p in range(npartitions):
        rows = np.flatnonzero(ids == p)
        got += rows[order.sort_indices(keys.take(pa.array(rows)))].tolist()
    assert got == expect
    # equal keys (NA equal to NA) share a partition; ids never decrease along the order
    along = ids[expect]
    assert (np.diff(along.astype(np.int64)) >= 0).all()
    same = df[on].astype(object).where(df[on].notna(), None).apply(tuple, axis=1)
    for _, group in pd.Series(ids).groupby(same.map(repr).to_numpy()):
        assert group.nunique() == 1


@given(frames(), st.integers(2, 9))
def test_boundaries_from_the_whole_input_balance_the_partitions(case, npartitions):
    df, on, ascending = case
    keys = _keys(df, on)
    order = KeyOrder.of(keys, on, ascending)
    ids = range_ids(keys, boundaries(keys, npartitions, order), order)
    if df[on].duplicated().any() or not len(df):
        return  # ties may make a partition larger; the equal-keys property covers them
    sizes = np.bincount(ids, minlength=npartitions)
    assert sizes.max() - sizes.min() <= 1  # distinct keys: exact quantiles


@given(frames(), st.sampled_from(["last", "first"]), st.integers(1, 6))
def test_left_closed_ids_count_the_boundaries_at_or_before_each_key(case, na_position, npartitions):
    df, on, ascending = case
    keys = _keys(df, on)
    order = KeyOrder.of(keys, on, ascending, na_position)
    bounds = boundaries(keys, npartitions, order)  # keys of the input: many rows equal one
    right, left = range_ids(keys, bounds, order), range_ids(keys, bounds, order, closed="left")
    # the model: a key's rank among the keys and boundaries, compared one boundary at a time
    both = pa.concat_tables([keys, bounds.select(on)])
    ranked = np.asarray(order.sort_indices(both))
    position = np.empty(len(ranked), dtype=np.int64)
    position[ranked] = np.arange(len(ranked))
    for row in range(len(df)):
        key = keys.slice(row, 1)
        equal = [b for b in range(bounds.num_rows)
                 if order.columns(key).equals(order.columns(bounds.select(on).slice(b, 1)))]
        before = sum(1 for b in range(bounds.num_rows)
                     if position[len(df) + b] < position[row] and b not in equal)
        assert right[row] == before
        assert left[row] == before + len(equal)


@given(frames(), st.sampled_from(["last", "first"]), st.integers(1, 6), st.sampled_from(["right", "left"]))
def test_ids_from_codes_are_those_of_arrows_sort(case, na_position, npartitions, closed):
    # keys with integer codes (few distinct strings, several columns) count the bounds
    # below each key's code; without codes, the keys are sorted with the bounds by Arrow
    df, on, ascending = case
    keys = _keys(df, on)
    order = KeyOrder.of(keys, on, ascending, na_position)
    bounds = boundaries(keys, npartitions, order)
    coded = range_ids(keys, bounds, order, closed=closed)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(KeyOrder, "codes", lambda self, comparable: None)
        sorted_ = range_ids(keys, bounds, order, closed=closed)
    assert coded.dtype == sorted_.dtype and coded.tolist() == sorted_.tolist()


@pytest.mark.parametrize("type_", [pa.int8(), pa.uint8(), pa.int16(), pa.int64(), pa.uint64()], ids=str)
@given(data=st.data(), ascending=st.booleans(), closed=st.sampled_from(["right", "left"]))
def test_integer_keys_at_the_ends_of_their_type_count_the_boundaries_before_them(type_, data, ascending, closed):
    # keys spanning fewer values than there are of them (found through a table of the
    # span), at the ends of narrow and unsigned types, where offsets could wrap
    info = np.iinfo(type_.to_pandas_dtype())
    width = data.draw(st.sampled_from([0, 5, 200, 300]))  # spans wider than int8's half
    low = data.draw(st.sampled_from([int(info.min), -100, 0, int(info.max) - width]))
    low = max(int(info.min), low)
    high = min(int(info.max), low + width)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    # more rows than values spanned, mostly: then the table is used
    values = [low + int(v) for v in rng.integers(0, high - low + 1, data.draw(st.integers(1, 700)))]
    keys = pa.table({"k": pa.array(values, type_)})
    # up to past FEW_BOUNDS: one comparison pass per bound, or a search (a table of the span)
    bounds = sorted(data.draw(st.lists(st.sampled_from(values), max_size=40)), reverse=not ascending)
    ids = range_ids(keys, pa.table({"k": pa.array(bounds, type_)}), KeyOrder.of(keys, ["k"], ascending), closed)
    # the model: boundaries strictly before each key in the order (or also equal to it: closed left)
    before = (lambda b, v: b < v) if ascending else (lambda b, v: b > v)
    want = [sum(1 for b in bounds if before(b, v) or (closed == "left" and b == v)) for v in values]
    assert ids.tolist() == want


ARROW_TYPES = [pa.date32(), pa.time64("us"), pa.decimal128(12, 3), pa.large_string(), pa.binary(), pa.float16(),
               pa.dictionary(pa.int32(), pa.string()), pa.timestamp("s", "UTC"), pa.int8()]


@pytest.mark.parametrize("type_", ARROW_TYPES, ids=str)
@given(codes=st.lists(st.one_of(st.none(), st.integers(0, 20)), max_size=50), ascending=st.booleans(),
       na_position=st.sampled_from(["last", "first"]), npartitions=st.integers(1, 6))
def test_arrow_key_types_in_order(type_, codes, ascending, na_position, npartitions):
    # typed Arrow columns as a Parquet file gives them: the order of their Python values
    def value(c):
        import datetime as dt
        import decimal

        if pa.types.is_date(type_):
            return dt.date(2024, 1, 1) + dt.timedelta(days=c)
        if pa.types.is_time(type_):
            return dt.time(c, c)
        if pa.types.is_decimal(type_):
            return decimal.Decimal(c - 10) / 8
        if pa.types.is_timestamp(type_):
            return dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=c)
        if pa.types.is_binary(type_):
            return bytes([c % 5]) * (c // 5)
        if pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_dictionary(type_):
            return "ab"[c % 2] * (c // 2)
        return c - 10 if pa.types.is_integer(type_) else (c - 10) / 4

    values = [None if c is None else value(c) for c in codes]
    arr = pa.array(values, type_.value_type if pa.types.is_dictionary(type_) else type_)
    keys = pa.table({"k": arr.dictionary_encode() if pa.types.is_dictionary(type_) else arr})
    order = KeyOrder.of(keys, ["k"], ascending, na_position)
    ids = range_ids(keys, boundaries(keys, npartitions, order), order)
    model = pd.DataFrame({"k": pd.Series(values, dtype=object), "row": range(len(values))})
    model["k"] = model["k"].map(lambda v: None if v is None else (float(v) if isinstance(v, float) else v))
    ranked = model.dropna().sort_values("k", ascending=ascending, kind="stable")["row"].tolist()
    nulls = model[model["k"].isna()]["row"].tolist()
    expect = ranked + nulls if na_position == "last" else nulls + ranked
    got = []
    for p in range(npartitions):
        rows = np.flatnonzero(ids == p)
        got += rows[order.sort_indices(keys.take(pa.array(rows)))].tolist()
    assert got == expect


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=400), st.integers(1, 50),
       st.lists(st.integers(1, 100), min_size=1, max_size=10))
def test_a_sample_is_the_same_for_any_chunking(values, size, cuts):
    table = pa.table({"k": values, "row": list(range(len(values)))})
    whole = Sampler.of([table], size)
    chunks, at = [], 0
    for c in cuts * (len(values) // max(sum(cuts), 1) + 1):
        chunks.append(table.slice(at, c))
        at += c
    chunked = Sampler.of(chunks, size)
    assert sorted(chunked["row"].to_pylist()) == sorted(whole["row"].to_pylist())
    assert whole.num_rows == min(size, len(values))


def test_a_small_input_is_sampled_whole_and_a_large_one_uniformly():
    table = pa.table({"k": np.arange(100_000)})
    assert Sampler.of([table.slice(0, 500)], 1000).num_rows == 500
    sample = Sampler.of([table.slice(i, 7_000) for i in range(0, 100_000, 7_000)], 1000)
    assert sample.num_rows == 1000
    # uniform: each tenth of the input holds about a tenth of the sample
    assert np.histogram(sample["k"].to_numpy(), bins=10, range=(0, 100_000))[0].min() > 60


def test_skewed_keys_keep_equal_keys_together_and_the_rest_apart():
    keys = pa.table({"k": [7] * 900 + list(range(100))})
    order = KeyOrder.of(keys, ["k"])
    ids = range_ids(keys, boundaries(keys, 8, order), order)
    assert len(set(ids[:900].tolist())) == 1  # the heavy key: one partition, never split
    assert len(set(ids.tolist())) >= 3  # the others still spread


@pytest.mark.parametrize("values, what", [
    (pd.Series([[1], [2]]), "Python objects"),
    (pd.Series([1, "a"], dtype=object), "Python objects"),
    (pd.Series([pd.Timestamp(0).date()], dtype=object), "Python objects"),
    (pd.Series([{"a": 1}, {"a": 2}]), "Python objects"),
])
def test_keys_without_an_order_are_refused_naming_the_column(values, what):
    keys = frame_to_table(pd.DataFrame({"key": values}))
    with pytest.raises(UnorderableKeyError, match=f"key column 'key' holds {what}.*(no order|cannot order)"):
        KeyOrder.of(keys, ["key"])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"ascending": [True, False]}, TypeError, "one bool per key column"),
    ({"ascending": "yes"}, TypeError, "one bool per key column"),
    ({"na_position": "middle"}, ValueError, "na_position must be 'last' or 'first'"),
])
def test_bad_order_arguments_are_one_line(kwargs, error, message):
    with pytest.raises((error, ShuffleKitError), match=message) as caught:
        KeyOrder.of(pa.table({"k": [1]}), ["k"], **kwargs)
    assert isinstance(caught.value, error) and isinstance(caught.value, ShuffleKitError)


@pytest.mark.parametrize(
    "type_", [pa.list_(pa.int64()), pa.struct([("a", pa.int64())]), pa.map_(pa.string(), pa.int8())], ids=str
)
def test_arrow_keys_without_an_order_are_refused_naming_the_column_and_type(type_):
    keys = pa.table({"key": pa.array([None], type_)})
    with pytest.raises(UnorderableKeyError, match=f"key column 'key' holds {type_}, which has no order"):
        KeyOrder.of(keys, ["key"])


@given(st.lists(st.one_of(st.none(), st.text("ab\u00e9", max_size=3)), max_size=120), st.booleans(), st.booleans())
def test_a_key_without_codes_sorted_in_ranges_on_threads_has_one_order(values, ascending, nulls_last):
    keys = pa.array(values, pa.string())
    na = "last" if nulls_last else "first"
    want = pd.Series(values, dtype=object).sort_values(ascending=ascending, na_position=na, kind="stable")
    for threads in (1, 2, 5):  # from one row on, every number of threads splits the keys
        got = array_order(keys, ascending, nulls_last, threads=threads, parallel_rows=1)
        assert got.tolist() == want.index.tolist()


texts = st.lists(st.one_of(st.none(), st.text(alphabet="ab\x00é", max_size=12).map(lambda t: "abcdefg" + t
                                                                                      if len(t) % 3 else t)),
                 min_size=1, max_size=80)


@given(texts, st.booleans(), st.sampled_from(["last", "first"]), st.integers(2, 9),
       st.sampled_from(["right", "left"]), st.sampled_from([pa.string(), pa.large_binary()]))
@settings(max_examples=200)
def test_ids_from_string_prefixes_count_the_bounds_before_each_key(values, ascending, na_position, npartitions,
                                                                   closed, type_):
    # mostly distinct strings have no codes: their first 8 bytes as integers decide every
    # key no bound shares them with (long common starts, empty strings, NUL bytes, UTF-8);
    # the model compares the bytes of each key with each bound
    encoded = [None if v is None else v.encode() for v in values]
    keys = pa.table({"k": pa.array(encoded if type_ == pa.large_binary() else values, type_)})
    order = KeyOrder.of(keys, ["k"], [ascending], na_position)
    found = boundaries(keys, npartitions, order)
    bounds = found.filter(pc.is_valid(found.column("k")))  # (bounds holding a null are sorted with the keys)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(KeyOrder, "codes", lambda self, comparable: None)
        got = range_ids(keys, bounds, order, closed=closed)
    marks = [b if isinstance(b, bytes) else b.encode() for b in bounds.column("k").to_pylist()]
    for key, ident in zip(encoded, got.tolist()):
        if key is None:
            assert ident == (len(marks) if na_position == "last" else 0)
            continue
        before = [b < key if ascending else b > key for b in marks]
        equal = [b == key for b in marks]
        assert ident == sum(before) + (sum(equal) if closed == "left" else 0)


@given(st.lists(st.binary(max_size=12), min_size=2, max_size=40))
def test_string_prefixes_order_strings_where_they_differ(values):
    from shuffle_kit.kernels.string_prefixes import prefixes

    got = prefixes(pa.array(values, pa.binary()))
    for a, pa_, b, pb in ((a, x, b, y) for a, x in zip(values, got) for b, y in zip(values, got)):
        if pa_ < pb:
            assert a < b
        if a <= b:
            assert pa_ <= pb


@pytest.mark.parametrize("closed", ["right", "left"])
def test_keys_past_one_block_of_comparisons_count_the_bounds_before_them(closed):
    # more keys than one block of comparisons, with a short last block
    from shuffle_kit.kernels.ranges import COMPARED_ROWS

    rng = np.random.default_rng(3)
    values = rng.integers(-50, 50, 2 * COMPARED_ROWS + 7)
    keys = pa.table({"k": values})
    bounds = np.array([-30, -2, 0, 0, 17, 40])
    ids = range_ids(keys, pa.table({"k": bounds}), KeyOrder.of(keys, ["k"]), closed)
    side = "right" if closed == "left" else "left"
    assert ids.tolist() == np.searchsorted(bounds, values, side=side).tolist()


@pytest.mark.parametrize("type_", [pa.int8(), pa.uint8(), pa.int16(), pa.int32(), pa.int64(), pa.uint64()], ids=str)
@given(data=st.data(), ascending=st.booleans())
def test_integer_keys_of_a_small_span_sort_as_pandas_at_the_ends_of_their_type(type_, data, ascending):
    # sorted by 16-bit codes made chunk by chunk: near the ends of a type, the
    # differences must not wrap; spans just under and over 2**16
    info = np.iinfo(type_.to_pandas_dtype())
    width = data.draw(st.sampled_from([0, 3, 255, 300, (1 << 16) - 1, 1 << 16]))
    width = min(width, int(info.max) - int(info.min))
    low = data.draw(st.sampled_from([int(info.min), 0, int(info.max) - width]))
    low = max(int(info.min), min(low, int(info.max) - width))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    n = data.draw(st.sampled_from([1, 40, 3000]))
    values = [low + int(v) for v in rng.integers(0, width + 1, n)]
    values[0], values[-1] = low, low + width
    column = pa.array(values, type_)
    cut = data.draw(st.integers(0, n))
    keys = pa.table({"k": pa.chunked_array([column.slice(0, cut), column.slice(cut)], type_)})
    got = KeyOrder.of(keys, ["k"], ascending).sort_indices(keys)
    want = pd.Series(values, dtype=object).sort_values(ascending=ascending, kind="stable").index
    assert got.tolist() == want.tolist()
