"""take(): Arrow's take, whichever column kind (strings and binary gathered as views),
for sliced, chunked and null-holding columns."""

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.kernels.take import SMALL, take

TYPES = [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]
WORDS = ["", "a", "twelve bytes", "thirteen byte", "a longer string than any view holds", "é✓"]


@st.composite
def cases(draw):
    n = draw(st.sampled_from([1, 50, SMALL + 3]))
    picks = draw(st.lists(st.integers(-1, len(WORDS) - 1), min_size=n, max_size=n))
    words = [None if i < 0 else WORDS[i] for i in picks]
    kind = draw(st.sampled_from(TYPES))
    values = [None if w is None else (w.encode() if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) else w)
              for w in words]
    table = pa.table({"s": pa.array(values, kind), "i": pa.array(range(n), pa.int64())})
    cut = draw(st.integers(0, n))
    if draw(st.booleans()):  # several chunks
        table = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    start = draw(st.integers(0, n - 1))
    table = table.slice(start)  # a slice that starts inside its buffers
    size = draw(st.sampled_from([1, table.num_rows, SMALL + 7]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return table, rng.integers(0, table.num_rows, size)


@given(cases())
def test_take_equals_arrows_take(case):
    table, indices = case
    got = take(table, indices)
    assert got.schema == table.schema
    assert got.equals(table.take(pa.array(indices)))


def test_schema_metadata_is_kept():
    table = pa.table({"s": ["x"] * SMALL}).replace_schema_metadata({"k": "v"})
    assert take(table, np.arange(SMALL)[::-1]).schema.metadata == {b"k": b"v"}
