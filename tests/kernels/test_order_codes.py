"""column_codes(): unsigned codes that order a key column as its values do."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.kernels.order_codes import column_codes


@pytest.mark.parametrize("type_", [pa.int8(), pa.int16(), pa.int32(), pa.int64()], ids=str)
@given(data=st.data(), ascending=st.booleans())
def test_signed_integers_at_the_ends_of_their_type_get_codes_in_their_order(type_, data, ascending):
    # the codes are the values less the least one, wrapping through uint64
    info = np.iinfo(type_.to_pandas_dtype())
    ends = st.sampled_from([int(info.min), int(info.min) + 1, -1, 0, 1, int(info.max) - 1, int(info.max)])
    values = data.draw(st.lists(st.one_of(ends, st.integers(int(info.min), int(info.max))), min_size=1, max_size=50))
    codes, count = column_codes(pa.array(values, type_), ascending, nulls_last=True)
    assert count == max(values) - min(values) + 1
    assert codes.dtype == np.uint64 and int(codes.max()) < count
    direction = 1 if ascending else -1
    for a, b in zip(values, values[1:]):
        assert np.sign(int(codes[values.index(a)]) - int(codes[values.index(b)])) == np.sign(direction * (a - b))
