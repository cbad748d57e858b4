"""stable_argsort(): NumPy's stable order (ties in input order), ascending or descending,
whichever way it gets there (packed with the row numbers, by dense ranks, or NumPy's)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shuffle_kit.kernels.stable_sort import SMALL, stable_argsort

DTYPES = st.sampled_from([np.int8, np.int32, np.int64, np.uint16, np.uint64, np.float32, np.float64, np.bool_])


def model(values: np.ndarray, descending: bool) -> np.ndarray:
    if not descending:
        return np.argsort(values, kind="stable")
    # ties in input order: rank by the negated order of distinct values, then stably
    _, ranks = np.unique(values, return_inverse=True)
    return np.argsort(-ranks.astype(np.int64), kind="stable")


@st.composite
def arrays(draw):
    dtype = draw(DTYPES)
    n = draw(st.sampled_from([0, 1, 7, SMALL - 1, SMALL, 3 * SMALL]))
    if np.dtype(dtype).kind == "f":
        elements = st.floats(allow_nan=False, width=np.dtype(dtype).itemsize * 8)
    else:
        elements = None
    # few distinct values (ties), or any (a range too wide to pack)
    few = draw(st.booleans())
    if few and n:
        pool = draw(hnp.arrays(dtype, draw(st.integers(1, 5)), elements=elements))
        return pool[draw(hnp.arrays(np.int64, n, elements=st.integers(0, len(pool) - 1)))]
    return draw(hnp.arrays(dtype, n, elements=elements))


@given(arrays(), st.booleans())
def test_stable_argsort_equals_numpys_stable_order(values, descending):
    got = stable_argsort(values, descending)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, model(values, descending))


def test_negative_zero_ties_with_zero_and_extremes_sort():
    values = np.tile(np.array([0.0, -0.0, -np.inf, np.inf, 5e-324, -1.5, 1e308]), SMALL)
    np.testing.assert_array_equal(stable_argsort(values), np.argsort(values, kind="stable"))
    wide = np.tile(np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0, -1]), SMALL)
    np.testing.assert_array_equal(stable_argsort(wide), np.argsort(wide, kind="stable"))


def test_spans_at_the_edge_of_sixteen_bits_sort_alike():
    """Values spanning fewer than 2**16 are sorted as 16-bit offsets; one more goes another way."""
    rng = np.random.default_rng(5)
    for span in (1 << 16) - 1, 1 << 16:
        values = rng.integers(0, span + 1, 3 * SMALL) - 2**40
        values[:2] = [-(2**40), span - 2**40]
        for descending in False, True:
            np.testing.assert_array_equal(stable_argsort(values, descending), model(values, descending))


@given(
    st.sampled_from([1, 5, (1 << 16) - 1, 1 << 16, 1 << 40, 1 << 63]),
    st.sampled_from([0, 7, SMALL, 3 * SMALL]),
    st.integers(0, 2**32),
)
def test_codes_with_their_count_sort_as_numpy(count, n, seed):
    """Codes below a given count (order_codes') skip finding their range, whichever way
    they then go (16-bit radix, packed, dense ranks), and may not reach the count."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, min(count, 1 << 62), n, dtype=np.uint64)
    np.testing.assert_array_equal(stable_argsort(codes, count=count), np.argsort(codes, kind="stable"))
