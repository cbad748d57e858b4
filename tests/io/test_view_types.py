"""Inputs with Arrow view columns (``string_view``, ``binary_view``) shuffle, sort, join and
partition as their large types do: Arrow's take, sort and distinct count have no kernels
for views, so every reader widens them."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shuffle_kit
from shuffle_kit import partition, shuffle
from shuffle_kit.io.view_types import widened_table, widened_type

TEXT = st.one_of(st.none(), st.text(max_size=20))
BYTES = st.one_of(st.none(), st.binary(max_size=20))
ROWS = st.lists(st.tuples(st.integers(-3, 3), TEXT, BYTES), min_size=1, max_size=60)


def view_table(rows: list[tuple]) -> pa.Table:
    keys, texts, blobs = zip(*rows)
    return pa.table({
        "k": pa.array(keys, pa.int64()),
        "s": pa.array(texts, pa.string_view()),
        "b": pa.array(blobs, pa.binary_view()),
        "nested": pa.array([{"t": t, "l": [t, t]} for t in texts],
                           pa.struct([("t", pa.string_view()), ("l", pa.list_(pa.string_view()))])),
        "d": pa.array(texts, pa.string_view()).dictionary_encode(),
    })


def has_views(t: pa.DataType) -> bool:
    return str(t).find("_view") >= 0


@given(rows=ROWS)
def test_a_widened_table_holds_the_same_values_in_no_view_type(rows):
    table = view_table(rows)
    wide = widened_table(table)
    assert wide.to_pylist() == table.to_pylist()
    assert not any(has_views(t) for t in wide.schema.types)
    assert wide.schema.field("s").type == pa.large_string() and wide.schema.field("b").type == pa.large_binary()


def test_types_without_views_are_kept_and_list_views_are_left_as_they_are():
    for t in (pa.int64(), pa.string(), pa.list_(pa.large_string()), pa.dictionary(pa.int8(), pa.string()),
              pa.list_view(pa.int64()), pa.map_(pa.string(), pa.int8())):
        assert widened_type(t) == t
    assert widened_type(pa.map_(pa.string_view(), pa.binary_view())) == pa.map_(pa.large_string(), pa.large_binary())
    assert widened_type(pa.list_(pa.string_view(), 3)) == pa.list_(pa.large_string(), 3)


@settings(max_examples=25)
@given(rows=ROWS, on=st.sampled_from(["k", "s", "b", ["s", "k"]]), n=st.integers(1, 4),
       partitioner=st.sampled_from(["hash", "range"]))
def test_shuffle_of_view_columns_equals_shuffle_of_their_large_types(rows, on, n, partitioner):
    table = view_table(rows)
    if partitioner == "range" and "b" in on:
        on = "s"
    with shuffle(table, on, n, partitioner=partitioner, progress=False) as ours, \
            shuffle(widened_table(table), on, n, partitioner=partitioner, progress=False) as model:
        assert [t.to_pylist() for t in ours.iter_arrow()] == [t.to_pylist() for t in model.iter_arrow()]
        assert ours.to_arrow().schema == model.to_arrow().schema


@settings(max_examples=15)
@given(rows=ROWS)
def test_sort_values_and_merge_of_view_columns_equal_those_of_their_large_types(rows):
    table = view_table(rows).drop_columns(["nested"])
    wide = widened_table(table)
    with shuffle_kit.sort_values(table, ["s", "k"], progress=False) as ours, \
            shuffle_kit.sort_values(wide, ["s", "k"], progress=False) as model:
        assert ours.to_arrow().equals(model.to_arrow())
    ours = shuffle_kit.merge(table, table.select(["s", "k"]), on="s", how="outer").to_pandas()
    model = shuffle_kit.merge(wide, wide.select(["s", "k"]), on="s", how="outer").to_pandas()
    columns = list(model.columns)
    assert ours.sort_values(columns, ignore_index=True).equals(model.sort_values(columns, ignore_index=True))


def _files(out) -> dict[str, pa.Table]:
    found = {}
    for root, _, names in os.walk(out):
        for name in names:
            path = os.path.join(root, name)
            found[os.path.relpath(path, out)] = ds.dataset(path, format=name.rsplit(".", 1)[-1]).to_table()
    return found


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
@pytest.mark.parametrize("how", [{"npartitions": 3}, {"npartitions": 3, "by_range": True}, {"by_value": True}])
def test_files_holding_view_columns_partition_as_their_large_types_do(tmp_path, fmt, how):
    table = view_table([(i % 5, f"word {i % 7}" if i % 11 else None, bytes([i % 3]) * (i % 17)) for i in range(3000)])
    # (hive directories by value hold flat columns; Parquet cannot write a dictionary of views)
    table = table.drop_columns(["nested", "d"])
    for name, data in (("views", table), ("large", widened_table(table))):
        path = tmp_path / f"{name}.{fmt}"
        pq.write_table(data, path) if fmt == "parquet" else feather.write_feather(data, path)
        partition(str(path), "s", str(tmp_path / f"out-{name}"), progress=False, **how)
    ours, model = _files(tmp_path / "out-views"), _files(tmp_path / "out-large")
    assert sorted(ours) == sorted(model) and ours
    for name in model:
        assert ours[name].equals(model[name]), name


@settings(max_examples=10)
@given(rows=ROWS, n=st.integers(1, 4))
def test_polars_arrow_of_the_newest_compat_level_shuffles_as_the_polars_frame(rows, n):
    pl = pytest.importorskip("polars")
    frame = pl.from_arrow(widened_table(view_table(rows).select(["k", "s", "b"])))
    newest = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    assert newest.schema.field("s").type == pa.string_view()  # (what this test is about)
    with shuffle(newest, "s", n, progress=False) as ours, shuffle(frame, "s", n, progress=False) as model:
        assert [ours.partition(i, as_polars=True).equals(model.partition(i, as_polars=True)) for i in range(n)] \
            == [True] * n
