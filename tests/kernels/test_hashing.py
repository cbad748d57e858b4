"""The documented partition hash: pinned values, dtype coverage, a reference model."""

import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.kernels.dask_assignment import dask_partition_ids
from shuffle_kit.kernels.hashing import (
    MIX_BLOCK,
    NULL_HASH,
    UnhashableKeyError,
    check_hashable,
    hash_array,
    hash_columns,
    ids_of_hashes,
    partition_ids,
)

M = (1 << 64) - 1


# -- a pure-Python model of the documented hash ---------------------------------------------
def mix(x):
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M
    x ^= x >> 33
    return x


def ref_bytes(b):
    h = mix(len(b) ^ 0x73747267)
    for k in range(0, len(b), 8):
        w = int.from_bytes(b[k : k + 8].ljust(8, b"\0"), "little")
        h = mix(h ^ w)
    return h


def ref_number(v):
    if v != v:
        return int(NULL_HASH)
    bits = struct.unpack("<Q", struct.pack("<d", float(v) + 0.0))[0]
    return mix(bits ^ 0x6E756D62)


def test_pinned_values():
    # changing these changes every user's partitions: bump HASH_VERSION and say so
    assert hex(int(NULL_HASH)) == "0x5fe540fb58480581"
    assert [hex(int(h)) for h in hash_array(pa.array([0, 1, -1]))] == [
        "0xc198c70a3bffba22", "0xb5886ced61d2a3b3", "0xf9568b5113da6f12",
    ]
    assert [hex(int(h)) for h in hash_array(pa.array(["", "a", "user_12345"]))] == [
        "0x28aebcd214b6e58a", "0xab408cb7c4eda03d", "0xcb4aad94e4ebfb7c",
    ]


@given(st.lists(st.one_of(st.none(), st.text(max_size=70)), max_size=40), st.integers(0, 5))
def test_strings_match_reference(values, cut):
    arr = pa.array(values, type=pa.large_string())
    expect = [int(NULL_HASH) if v is None else ref_bytes(v.encode("utf-8")) for v in values]
    assert hash_array(arr).tolist() == expect
    # sliced arrays (non-zero offsets) and other string types agree
    assert hash_array(arr.slice(cut)).tolist() == expect[cut:]
    assert hash_array(pa.array(values, type=pa.string())).tolist() == expect
    assert hash_array(pa.array(values, type=pa.string_view())).tolist() == expect


@given(st.integers(0, 30), st.lists(st.binary(min_size=30, max_size=30), max_size=40), st.integers(0, 5),
       st.sampled_from([pa.string(), pa.large_string(), pa.binary(), pa.large_binary(), pa.string_view()]))
def test_strings_of_one_width_match_reference(width, raw, cut, type_):
    # values all of one width are hashed from strided words (no gather by row): the same hashes
    values = [b[:width].hex()[:width].encode() for b in raw]
    arr = pa.array(values if pa.types.is_binary(type_) or pa.types.is_large_binary(type_)
                   else [v.decode() for v in values], type=type_)
    expect = [ref_bytes(v) for v in values]
    assert hash_array(arr).tolist() == expect
    assert hash_array(arr.slice(cut)).tolist() == expect[cut:]
    with_null = pa.concat_arrays([arr, pa.array([None], type=type_)])  # (a null: of another width)
    assert hash_array(with_null).tolist() == [*expect, int(NULL_HASH)]


@given(st.integers(1, 30), st.lists(st.tuples(st.binary(min_size=30, max_size=30), st.booleans()), min_size=1,
                                     max_size=40), st.sampled_from([pa.binary(), pa.large_binary()]))
def test_nulls_that_keep_their_width_hash_as_nulls(width, raw, type_):
    # a null whose slot still spans the width (as from_buffers may give): every slot of one
    # length, so the strided words hash it, and it is still the null's hash
    values = [b[:width] for b, _ in raw]
    whole = pa.array(values, type=type_)
    valid = pa.array([ok for _, ok in raw]).buffers()[1]
    arr = pa.Array.from_buffers(type_, len(values), [valid, *whole.buffers()[1:]])
    expect = [ref_bytes(v) if ok else int(NULL_HASH) for v, (_, ok) in zip(values, raw)]
    assert hash_array(arr).tolist() == expect
    assert hash_array(pa.chunked_array([arr.slice(0, 1), arr.slice(1)])).tolist() == expect


@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=300), st.integers(1, 300), st.integers(1, 64))
def test_ids_of_hashes_are_partition_ids(values, n, block):
    t = pa.table({"k": pa.array(values, type=pa.string())})
    hashes = hash_columns([t["k"]])
    before = hashes.copy()
    assert ids_of_hashes(hashes, n, block=block).tolist() == partition_ids(t, ["k"], n, block=block).tolist()
    assert ids_of_hashes(hashes, n).dtype == partition_ids(t, ["k"], n).dtype
    assert hashes.tolist() == before.tolist()  # (the caller's hashes are left as they were)


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats()), max_size=40))
def test_numbers_match_reference(values):
    arr = pa.array([float(v) if v is not None else None for v in values], type=pa.float64())
    expect = [int(NULL_HASH) if v is None else ref_number(v) for v in values]
    assert hash_array(arr).tolist() == expect


def _same(*arrays):
    hs = [hash_array(a).tolist() for a in arrays]
    assert all(h == hs[0] for h in hs), hs


def test_values_hash_alike_across_dtypes():
    _same(*(pa.array(pd.Series([1, 2, None], dtype=d)) for d in ["Int8", "Int64", "UInt16", "Float32", "float64"]))
    _same(pa.array([True, False]), pa.array([1, 0]), pa.array([1.0, -0.0]))
    strs = ["x", None, "yy"]
    dtypes = ["str", "string[python]", "string[pyarrow]", object]
    _same(*(pa.array(pd.Series(strs, dtype=d), from_pandas=True) for d in dtypes))
    _same(pa.array(pd.Categorical(strs)), pa.array(strs))
    _same(pa.array(pd.Categorical([3, None, 3])), pa.array([3.0, None, 3.0]))


def test_datetimes_by_instant():
    t = pd.Series(pd.to_datetime(["2024-03-01 12:00", None]).tz_localize("UTC"))
    _same(
        pa.array(t), pa.array(t.dt.tz_convert("Asia/Tokyo")), pa.array(t.astype("datetime64[s, UTC]")),
        pa.array(t.dt.tz_convert("America/New_York").astype("datetime64[ms, America/New_York]")),
    )
    assert hash_array(pa.array(t))[1] == NULL_HASH
    td = pd.Series(pd.to_timedelta([1, None], unit="s"))
    _same(pa.array(td), pa.array(td.astype("timedelta64[ms]")))


def test_nulls_of_every_kind_share_one_hash():
    for arr in [
        pa.array([None, float("nan")], from_pandas=False), pa.array(pd.Series([pd.NA], dtype="Int64")),
        pa.array(pd.Series([None], dtype="str")), pa.array(pd.Categorical([None, "a"])),
        pa.array([None], type=pa.null()), pa.array(pd.Series([pd.NaT], dtype="datetime64[ns]")),
    ]:
        assert hash_array(arr)[0] == NULL_HASH, arr.type


def test_structs_periods_intervals_decimals():
    df = pd.DataFrame({
        "p": pd.period_range("2000", periods=3, freq="D"),
        "i": pd.interval_range(0, 3),
        "d": pd.Series([1, 2, 1], dtype=pd.ArrowDtype(pa.decimal128(10, 2))),
    })
    t = pa.Table.from_pandas(df)
    for name in ["p", "i", "d"]:
        h = hash_array(t.column(name))
        assert len(set(h.tolist())) == len(set(df[name].astype(str)))


def test_unhashable_types_raise():
    with pytest.raises(UnhashableKeyError, match="'L'"):
        check_hashable(pa.list_(pa.int64()), "L")
    with pytest.raises(UnhashableKeyError):
        hash_array(pa.array([[1], [2]]))
    check_hashable(pa.dictionary(pa.int8(), pa.string()), "ok")


def test_multi_column_and_partition_ids():
    t = pa.table({"a": [1, 1, 2, 1], "b": ["x", "y", "x", "x"]})
    h = hash_columns([t["a"], t["b"]])
    assert h[0] == h[3] and len(set(h.tolist())) == 3
    ids = partition_ids(t, ["a", "b"], 1000, block=2)  # blocks smaller than the table
    assert ids.dtype == np.uint16
    assert ids.tolist() == (h % np.uint64(1000)).astype(np.uint16).tolist()
    assert partition_ids(t.slice(0, 0), ["a"], 3).tolist() == []


@pytest.mark.parametrize("n", [1, 2, 7, 64, 256, 1000, 1024, 65536])
def test_partition_ids_are_the_hash_modulo_n(n):
    # powers of two take a mask instead of a division: the same ids
    t = pa.table({"a": np.arange(5000) * 7919, "b": [f"s{i % 97}" for i in range(5000)]})
    h = hash_columns([t["a"], t["b"]])
    assert partition_ids(t, ["a", "b"], n, block=1024).tolist() == (h % np.uint64(n)).tolist()


def test_long_and_skewed_strings():
    values = ["a" * 1000, "", "b", "a" * 1000, "c" * 17, None] * 3
    h = hash_array(pa.array(values))
    assert h.tolist() == [int(NULL_HASH) if v is None else ref_bytes(v.encode()) for v in values]


def test_dask_partition_ids_match_dask():
    from dask.dataframe.shuffle import partitioning_index

    df = pd.DataFrame({"a": [1, 2, 3, 4, None], "b": list("vwxyz")})
    for cols in (["a"], ["b"], ["a", "b"]):
        keys = df[cols].astype({"a": "float64"}) if "a" in cols else df[cols]
        assert dask_partition_ids(df[cols], 7).tolist() == partitioning_index(keys, 7).tolist()


SCRIPT = textwrap.dedent(
    """
    import pandas as pd, numpy as np, shuffle_kit
    from shuffle_kit.kernels.hashing import partition_ids
    import pyarrow as pa
    df = pd.DataFrame({
        'i': np.arange(200) % 17, 's': [f'key{i % 23}' for i in range(200)],
        'o': pd.Series([('x' * (i % 5)) if i % 7 else None for i in range(200)], dtype=object),
        'c': pd.Categorical([f'c{i % 3}' for i in range(200)]),
        't': pd.date_range('2020', periods=200, freq='h', tz='Europe/Paris'),
        'f': np.where(np.arange(200) % 9 == 0, np.nan, np.arange(200) / 3),
    })
    res = shuffle_kit.shuffle(df, ['s', 'o', 'c', 't', 'f', 'i'], 13, progress=False)
    print([p.index.tolist() for p in res], [sorted(p['i'].tolist()) for p in res])
    """
)


def test_independent_of_pythonhashseed():
    outs = []
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
        outs.append(run.stdout)
    assert outs[0] == outs[1] and len(outs[0]) > 100


@given(st.integers(0, 2**32 - 1), st.sampled_from([8, 10, 16, 21]), st.integers(0, 3))
def test_long_arrays_hash_as_the_reference_across_blocks(seed, width, cut):
    # past MIX_BLOCK values the hash is computed block by block: every value, those at a
    # block's edges too, still hashes as the reference says
    rng = np.random.default_rng(seed)
    n = 2 * MIX_BLOCK + 7
    numbers = rng.integers(-(2**53), 2**53, n)
    codes = [b"k%0*d" % (width - 1, v) for v in rng.integers(0, 10 ** min(18, width - 1), n)]
    for arr, ref in ((pa.array(numbers), ref_number), (pa.array(codes, pa.binary()), ref_bytes),
                     (pa.array([c.decode() for c in codes], pa.large_string()), lambda s: ref_bytes(s.encode()))):
        got = hash_array(arr.slice(cut))
        values = arr.slice(cut).to_pylist()
        edges = [0, 1, MIX_BLOCK - cut - 1, MIX_BLOCK - cut, MIX_BLOCK - cut + 1, 2 * MIX_BLOCK - cut, len(values) - 1]
        assert [int(got[i]) for i in edges] == [ref(values[i]) for i in edges]
        pieces = [hash_array(arr.slice(cut + at, 1000)) for at in range(0, n - cut, 1000)]
        assert np.array_equal(got, np.concatenate(pieces))  # (short arrays: one block each)
