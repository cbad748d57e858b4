"""The block nested-loop join against the whole join (pandas' merge of the two sides): every
``how``, either side blocked, blocks and streamed pieces of every size, step limits down to a
single row, keys with nulls and duplicates on both sides, both null rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from shuffle_kit.kernels.block_join import blocks, join_blocks
from shuffle_kit.kernels.joins import Join
from tests.shuffling.test_merge import canonical

HOWS = ["inner", "left", "right", "outer"]


def cut(frame: pd.DataFrame, sizes: list[int]) -> list[pd.DataFrame]:
    """``frame`` in consecutive pieces of ``sizes`` rows (the rest as one more)."""
    out, start = [], 0
    for size in sizes:
        out.append(frame.iloc[start:start + size])
        start += size
    return [*out, frame.iloc[start:]]


@st.composite
def side(draw, name: str) -> pd.DataFrame:
    n = draw(st.integers(0, 25))
    keys = draw(st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=n, max_size=n))
    return pd.DataFrame({"k": pd.array(keys, dtype="float64"), name: np.arange(n) + (100 if name == "b" else 0)})


@settings(max_examples=80, deadline=None)
@given(side("a"), side("b"), st.sampled_from(HOWS), st.sampled_from(["left", "right"]), st.booleans(),
       st.integers(1, 30), st.integers(1, 40), st.lists(st.integers(0, 9), max_size=4),
       st.lists(st.integers(0, 9), max_size=4))
def test_join_blocks_equals_the_whole_join(left, right, how, blocked, nulls_equal, block_rows, out_rows,
                                           bsizes, ssizes):
    join = Join(["k"], ["k"], how, ("_x", "_y"), on=True, nulls_equal=nulls_equal)
    whole = join.join(left, right)
    big, small = (left, right) if blocked == "left" else (right, left)
    passes = []

    def stream() -> list[pd.DataFrame]:
        passes.append(1)
        return cut(small, ssizes)

    frames = list(join_blocks(join, cut(big, bsizes), block_rows, stream, blocked, (left[:0], right[:0]),
                              out_rows))
    assert all(len(f) for f in frames)
    # a step's joined rows are at most out_rows (frames of unmatched rows are cut otherwise)
    assert all(len(f) <= out_rows for f in frames if f["a"].notna().all() and f["b"].notna().all())
    got = pd.concat(frames, ignore_index=True) if frames else whole.iloc[:0]
    assert len(got) == len(whole)
    assert list(got.columns) == list(whole.columns)
    pd.testing.assert_frame_equal(canonical(got.astype(whole.dtypes.to_dict())), canonical(whole))
    # the streamed side is read once per block (once when there is no block but it is kept)
    nblocks = len(list(blocks(cut(big, bsizes), block_rows, out_rows, ["k"])))
    assert len(passes) == nblocks or (not len(big) and len(passes) <= 1)


def test_a_step_joins_at_most_out_rows_of_a_hot_key():
    left = pd.DataFrame({"k": [7] * 12, "a": range(12)})
    right = pd.DataFrame({"k": [7] * 9 + [1], "b": range(10)})
    for how in HOWS:
        join = Join(["k"], ["k"], how, ("_x", "_y"), on=True)
        frames = list(join_blocks(join, [left], 3, lambda: [right], "left", (left[:0], right[:0]), out_rows=6))
        assert max(len(f) for f in frames) <= 6
        assert sum(len(f) for f in frames) == len(join.join(left, right))


def test_blocks_regroup_pieces():
    frame = pd.DataFrame({"x": range(10)})
    got = list(blocks(cut(frame, [0, 3, 3]), 4, 4, ["x"]))
    assert [b["x"].tolist() for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # at most per_key rows of a key in a block, across pieces; nulls are one key
    keys = pd.DataFrame({"k": [1, 1, None, 2, 1, None, None, 1, 1]})
    got = list(blocks(cut(keys, [2, 1, 4]), 5, 2, ["k"]))
    assert [b["k"].fillna(0).astype(int).tolist() for b in got] == [[1, 1, 0, 2], [1, 0, 0, 1], [1]]
    assert list(blocks([frame.iloc[:0]], 4, 1, ["x"])) == []


def test_hot_keys_names_every_key_above_the_threshold_most_rows_first():
    from shuffle_kit.kernels.key_counts import KeyCounts, hot_keys

    left, right = KeyCounts(), KeyCounts()
    pieces = [pd.DataFrame({"k": [7.0] * 5 + [8.0] * 3 + [np.nan] * 4 + [1.0]}), pd.DataFrame({"k": [8.0] * 3})]
    assert sum(len(p) for p in left.tally(pieces, ["k"])) == 16
    list(right.tally([pd.DataFrame({"j": [8, 8, 2]})], ["j"]))
    got = hot_keys(left, right, widths=(1.0, 10.0), threshold=3.5)
    assert [(k, r, o) for k, r, o in got if not np.isnan(k[0])] == [((8.0,), 6, 2), ((7.0,), 5, 0)]
    assert len(got) == 3 and np.isnan(got[2][0][0]) and got[2][1:] == (4, 0)
    # the key with the most rows whatever the threshold; none without rows
    assert hot_keys(right, left, widths=(1.0, 1.0), threshold=100) == [((8,), 2, 6)]
    assert hot_keys(KeyCounts(), left, widths=(1.0, 1.0), threshold=0) == []
