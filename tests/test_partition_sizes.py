"""shuffle_kit.partition_sizes: the statistics of rows per partition against a plain model (sorted
lists, ``statistics.median``), their JSON, and the HTML that both reprs show."""

from __future__ import annotations

import json
import re
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.partition_sizes import SKEW_FACTOR, PartitionSizes, chart

counts = st.lists(st.integers(0, 10**9), min_size=1, max_size=300)


@given(counts, st.integers(1, 10))
def test_statistics_match_the_model(rows, k):
    s = PartitionSizes.of(rows)
    assert (s.min, s.median, s.max, s.total) == (min(rows), statistics.median(rows), max(rows), sum(rows))
    # largest first; equal sizes: the earlier partition first
    want = sorted(range(len(rows)), key=lambda i: (-rows[i], i))[:k]
    assert [(p.key, p.rows) for p in s.largest(k)] == [(i, rows[i]) for i in want]
    bound = SKEW_FACTOR * max(statistics.median(rows), 1)
    over = sorted((i for i in range(len(rows)) if rows[i] > bound), key=lambda i: (-rows[i], i))
    assert [p.key for p in s.skewed()] == over
    assert (s.warning() is None) == (not over)
    if over:
        assert f"partition {over[0]} holds {rows[over[0]]:,} rows" in s.warning()


@given(counts)
def test_json_and_html_carry_the_same_figures(rows):
    s = PartitionSizes.of(rows, paths=[f"part-{i:05d}.csv" for i in range(len(rows))], unit="file")
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    assert (d["min"], d["median"], d["max"], d["count"]) == (min(rows), statistics.median(rows), max(rows), len(rows))
    assert d["largest"][0] == {"key": s.largest(1)[0].key, "rows": max(rows), "path": s.largest(1)[0].path}
    page = s.html()
    assert s.describe() in page and f"min {min(rows):,}" in page and f"max {max(rows):,}" in page
    assert page.count("<rect") == min(len(rows), 120) or max(rows) == 0
    assert ("Skew" in page) == bool(s.skewed())


def test_keys_and_paths_are_escaped_and_json_safe():
    keys = [("<b>",), (float("nan"),), (None,)]
    paths = ["k=%3Cb%3E", "k=nan", "k=__HIVE_DEFAULT_PARTITION__"]
    s = PartitionSizes.of([1, 50, 2], keys=keys, paths=paths, unit="value")
    page = s.html() + chart(np.array([1]), 1.0, "<script>")
    assert "<script>" not in page and "<b>" not in page
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))  # a NaN key is given as its path
    assert d["largest"][0] == {"key": "k=nan", "rows": 50, "path": "k=nan"}
    assert d["largest"][1:] == [{"key": [None], "rows": 2, "path": "k=__HIVE_DEFAULT_PARTITION__"},
                                {"key": ["<b>"], "rows": 1, "path": "k=%3Cb%3E"}]
    assert s.warning().startswith("skew: k=nan holds 50 rows, 25× the median of 2 rows per value")


def test_empty_and_all_zero():
    for s in (PartitionSizes.of([]), PartitionSizes.of([0, 0, 0])):
        assert (s.min, s.median, s.max) == (0, 0, 0) and s.warning() is None
        assert "<svg" in s.html() and "<rect" not in s.html()


def test_a_huge_partition_among_thousands_is_drawn():
    rows = np.full(10_000, 100)
    rows[7777] = 10**6
    svg = chart(rows, 100.0, "t")
    heights = [float(h) for h in re.findall(r"height='([0-9.]+)'/>", svg)]
    assert len(heights) == 120 and heights[0] == 40.0 and max(heights[1:]) < 1.01


def test_lengths_must_agree():
    with pytest.raises(ValueError, match="2 paths for 3 partitions"):
        PartitionSizes.of([1, 2, 3], paths=["a", "b"])
