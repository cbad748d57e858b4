"""A held dimension's key lookup (``unique_lookup``) finds each probe's row exactly as a dict
of the dimension's values would, for every key type it takes, built once and probed by
many chunks: large integers that float64 cannot tell apart, 64-bit hash collisions (forced)
and nulls never give a wrong row."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shuffle_kit.kernels.join_indices as join_indices
from shuffle_kit.kernels.hash_index import HashIndex
from shuffle_kit.kernels.join_indices import KeyLookup, ValueLookup, unique_lookup
from shuffle_kit.kernels.rank_index import RankIndex

BIG = 2**60
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)  # (Arrow holds no lone surrogate)

TYPES: dict[str, tuple[pa.DataType, st.SearchStrategy]] = {
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "int64-near-2**60": (pa.int64(), st.integers(BIG - 40, BIG + 40)),  # (float64 tells few of these apart)
    "int64-dense": (pa.int64(), st.integers(-50, 50)),
    # (some tens of times the keys' number: found by rank; values past int64 go around)
    "int64-spread": (pa.int64(), st.integers(-1500, 1500)),
    "uint64-spread": (pa.uint64(), st.integers(2**63 - 3000, 2**63 + 50)),
    "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
    "int32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "string": (pa.string(), TEXT),
    "large_string": (pa.large_string(), TEXT),
    "string_view": (pa.string_view(), TEXT),
    "binary": (pa.binary(), st.binary(max_size=20)),
    "large_binary": (pa.large_binary(), st.binary(max_size=20)),
    "fixed_size_binary": (pa.binary(3), st.binary(min_size=3, max_size=3)),
    "date32": (pa.date32(), st.dates()),
    "timestamp-us-utc": (pa.timestamp("us", tz="UTC"),
                         st.datetimes(min_value=dt.datetime(1, 1, 1), timezones=st.just(dt.UTC))),
    # (seconds beyond nanoseconds' range: their hashes wrap)
    "timestamp-s": (pa.timestamp("s"), st.datetimes().map(lambda d: d.replace(microsecond=0))),
    "bool": (pa.bool_(), st.booleans()),
}


def chunked(values: list, type_: pa.DataType, cuts: list[int]) -> pa.ChunkedArray:
    """``values`` as a chunked array of ``type_``, cut at ``cuts``."""
    bounds = sorted({0, len(values), *(c for c in cuts if 0 < c < len(values))})
    chunks = [pa.array(values[a:b], type=type_) for a, b in zip(bounds, bounds[1:])]
    return pa.chunked_array(chunks, type=type_)


def model(keys: list, probe: list) -> tuple[list[int], list[int]]:
    """The positions of ``probe`` whose value is a key and their key's row, by a dict."""
    row_of = {k: i for i, k in enumerate(keys)}
    found = [(i, row_of[v]) for i, v in enumerate(probe) if v is not None and v in row_of]
    return [i for i, _ in found], [r for _, r in found]


@st.composite
def cases(draw):
    name = draw(st.sampled_from(sorted(TYPES)))
    type_, values = TYPES[name]
    keys = draw(st.lists(values, max_size=60, unique=True))
    others = draw(st.lists(values, max_size=20))  # (mostly absent from the keys)
    pool = keys + others
    probes = draw(st.lists(st.lists(st.one_of(st.none(), st.sampled_from(pool)) if pool else st.none(),
                                    max_size=40), min_size=1, max_size=3))
    cuts = draw(st.lists(st.integers(0, 60), max_size=3))
    return name, type_, keys, probes, cuts


def built_and_checked(keys, probes, type_, cuts):
    """The lookup of ``keys`` finds in every probe what the dict model finds."""
    lookup = unique_lookup(chunked(keys, type_, cuts))
    assert lookup is not None
    check(lookup, probes, keys, type_, cuts)


def check(lookup, probes, keys, type_, cuts):
    for probe in probes:  # (one lookup, many chunks: as the fact table streams through it)
        lpos, rpos = lookup.find(chunked(probe, type_, cuts))
        assert lpos.dtype == rpos.dtype == np.int64
        assert (lpos.tolist(), rpos.tolist()) == model(keys, probe)


@given(cases())
@settings(max_examples=150, deadline=None)
def test_a_lookup_finds_what_a_dict_of_the_keys_finds(case):
    name, type_, keys, probes, cuts = case
    built_and_checked(keys, probes, type_, cuts)


@given(cases())
@settings(max_examples=60, deadline=None)
def test_with_every_hash_equal_a_lookup_still_finds_exactly(case):
    """(Integers are hashed by a one-to-one mix of their bits: they cannot collide.)"""
    name, type_, keys, probes, cuts = case
    with pytest.MonkeyPatch.context() as patch:  # every value hashes alike: the build finds them equal
        patch.setattr(join_indices, "hash_array", lambda column: np.zeros(len(column), dtype=np.uint64))
        built_and_checked(keys, probes, type_, cuts)


@given(cases())
@settings(max_examples=60, deadline=None)
def test_a_probe_whose_hashes_all_collide_with_a_key_finds_only_equal_values(case):
    """The keys are hashed as they are; every probe hashes as the first key: each probe row
    finds that key's row, which only an equal value may keep."""
    name, type_, keys, probes, cuts = case
    lookup = unique_lookup(chunked(keys, type_, cuts))
    if not isinstance(lookup, ValueLookup) or lookup.index is None or not keys:
        return
    first = join_indices.hash_array(pa.array(keys[:1], type=type_))[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(join_indices, "hash_array", lambda column: np.full(len(column), first, dtype=np.uint64))
        for probe in probes:
            lpos, rpos = lookup.find(chunked(probe, type_, cuts))
            expected = [i for i, v in enumerate(probe) if v is not None and v == keys[0]]
            assert (lpos.tolist(), rpos.tolist()) == (expected, [0] * len(expected))


@given(st.data())
@settings(max_examples=40, deadline=None)
def test_repeated_or_null_keys_have_no_lookup(data):
    name = data.draw(st.sampled_from(sorted(TYPES)))
    type_, values = TYPES[name]
    keys = data.draw(st.lists(values, min_size=1, max_size=30))
    if data.draw(st.booleans()):
        keys.insert(data.draw(st.integers(0, len(keys))), keys[0])
    else:
        keys.insert(data.draw(st.integers(0, len(keys))), None)
    assert unique_lookup(pa.chunked_array([pa.array(keys, type=type_)])) is None


def test_integers_float64_cannot_tell_apart_are_told_apart():
    keys = [BIG, BIG + 1, -(2**63), 2**63 - 1, -1]
    lookup = unique_lookup(pa.array(keys))
    assert isinstance(lookup, KeyLookup) and lookup.table is None  # (sparse: hashed)
    lpos, rpos = lookup.find(pa.array([BIG + 1, BIG + 2, None, 2**63 - 1, BIG, -(2**63) + 1]))
    assert (lpos.tolist(), rpos.tolist()) == ([0, 3, 4], [1, 3, 0])


def test_uint64_past_int64_is_not_found_as_the_negative_int64_of_its_bits():
    unsigned = unique_lookup(pa.array([2**64 - 1, 5, 2**40], type=pa.uint64()))
    assert [p.tolist() for p in unsigned.find(pa.array([-1, 5, 2**40], type=pa.int64()))] == [[1, 2], [1, 2]]
    signed = unique_lookup(pa.array([-1, 5, 2**40], type=pa.int64()))
    assert [p.tolist() for p in signed.find(pa.array([2**64 - 1, 5], type=pa.uint64()))] == [[1], [1]]


def test_a_string_lookup_probes_a_large_string_chunk():
    lookup = unique_lookup(pa.array(["é", "", "x" * 30]))
    lpos, rpos = lookup.find(pa.array(["x" * 30, "", "é", "e"], type=pa.large_string()))
    assert (lpos.tolist(), rpos.tolist()) == ([0, 1, 2], [2, 1, 0])


@given(st.lists(st.integers(0, 2**64 - 1), unique=True, max_size=300), st.lists(st.integers(0, 2**64 - 1),
                                                                                 max_size=100))
@settings(max_examples=100, deadline=None)
def test_a_hash_index_finds_the_row_of_each_hash(keys, others):
    hashes = np.array(keys, dtype=np.uint64)
    index = HashIndex(hashes)
    assert index.distinct
    probe = np.array(keys[::2] + others + [0, 2**64 - 1], dtype=np.uint64)  # (2**64 - 1: an empty slot's hash)
    row_of = {k: i for i, k in enumerate(keys)}
    assert index.find(probe).tolist() == [row_of.get(int(h), -1) for h in probe]
    if keys:
        assert not HashIndex(np.append(hashes, hashes[-1])).distinct


@given(st.lists(st.sampled_from([0, 1, 2**63, 2**64 - 2, 2**64 - 1]), unique=True),
       st.lists(st.integers(0, 2**64 - 1), unique=True, max_size=50))
def test_the_smallest_and_largest_hashes_are_found(ends, keys):
    # the largest hash is an empty slot's: a key of that hash is still found, and a probe
    # of it finds nothing where no key has it
    keys = list(dict.fromkeys(ends + keys))
    index = HashIndex(np.array(keys, dtype=np.uint64))
    probe = np.array([0, 1, 2**63, 2**64 - 2, 2**64 - 1, *keys], dtype=np.uint64)
    row_of = {k: i for i, k in enumerate(keys)}
    assert index.find(probe).tolist() == [row_of.get(int(h), -1) for h in probe]


@given(st.lists(st.integers(0, 5000), unique=True, min_size=1, max_size=300), st.lists(st.integers(0, 5000),
                                                                                      max_size=100))
@settings(max_examples=100, deadline=None)
def test_a_rank_index_finds_the_row_of_each_value(keys, others):
    span = max(keys + others) + 1 + len(others)  # (a span past the largest value: its last word partly used)
    index = RankIndex(np.array(keys, dtype=np.int64), span)
    assert index.distinct
    probe = np.array(keys[::-2] + others + [0, span - 1], dtype=np.int64)
    row_of = {k: i for i, k in enumerate(keys)}
    assert index.find(probe).tolist() == [row_of.get(int(v), -1) for v in probe]
    assert index.find(np.array(keys, dtype=np.int64)).tolist() == list(range(len(keys)))
    assert not RankIndex(np.array([*keys, keys[len(keys) // 2]], dtype=np.int64), span).distinct


def test_keys_spread_over_tens_of_times_their_number_are_found_by_rank():
    keys = np.random.default_rng(3).permutation(30_000)[:1000] * 2 - 5000  # (one hash partition's share)
    lookup = unique_lookup(pa.array(keys))
    assert isinstance(lookup, KeyLookup) and lookup.ranks is not None
    probe = pa.array([*keys[::-3].tolist(), None, int(keys.max()) + 1, int(keys.min()) - 1, 2**62])
    row_of = {int(k): i for i, k in enumerate(keys)}
    assert [p.tolist() for p in lookup.find(probe)] == model_of(row_of, probe.to_pylist())


def model_of(row_of: dict, probe: list) -> list[list[int]]:
    found = [(i, row_of[v]) for i, v in enumerate(probe) if v is not None and v in row_of]
    return [[i for i, _ in found], [r for _, r in found]]
