"""One dictionary per column for a job: chunks keep their values, index into one growing
dictionary of distinct values (each chunk into a start of it), and a column whose
dictionary would pass the bound keeps its chunks' own dictionaries from then on."""

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.partitioning.dictionaries import SharedDictionaries

WORDS = ["a", "", "bb", "é", "x" * 20, "c", "d"]


def _chunk(pieces: list[tuple[list[int | None], list[str]]]) -> pa.Table:
    """A table of one dictionary column ``s`` whose chunks are (indices, dictionary)."""
    arrays = [pa.DictionaryArray.from_arrays(pa.array(i, pa.int32()), pa.array(d, pa.string())) for i, d in pieces]
    return pa.table({"s": pa.chunked_array(arrays, pa.dictionary(pa.int32(), pa.string())), "n": range(
        sum(len(i) for i, _ in pieces))})


@st.composite
def _pieces(draw):
    dictionary = draw(st.lists(st.sampled_from(WORDS), min_size=1, unique=True))
    indices = draw(st.lists(st.one_of(st.none(), st.integers(0, len(dictionary) - 1)), max_size=8))
    return indices, dictionary


@given(chunks=st.lists(st.lists(_pieces(), min_size=1, max_size=3), max_size=6))
def test_chunks_keep_their_values_and_index_into_a_start_of_one_dictionary(chunks):
    shared = SharedDictionaries(["s", "absent"], 2**20)
    mapped = [shared(_chunk(c)) for c in chunks]
    for before, after in zip(chunks, mapped):
        assert after.column("s").to_pylist() == _chunk(before).column("s").to_pylist()
        assert after.schema == _chunk(before).schema and after.column("n").equals(_chunk(before).column("n"))
    if chunks:
        final = shared.values["s"].to_pylist()
        assert len(set(final)) == len(final)
        for after in mapped:
            for piece in after.column("s").chunks:
                assert piece.dictionary.to_pylist() == final[:len(piece.dictionary)]


def test_a_column_past_the_bound_keeps_its_own_dictionaries():
    shared = SharedDictionaries(["s"], 64)
    first = shared(_chunk([([0, 1], ["a", "b"])]))
    assert first.column("s").chunk(0).dictionary.to_pylist() == ["a", "b"]
    wide = _chunk([([0, 9], [f"value-{i:04d}" for i in range(10)])])
    assert shared(wide).equals(wide) and "s" not in shared.values
    later = _chunk([([1], ["b", "a"])])
    assert shared(later).equals(later)  # stopped for good: no dictionary grows again


def test_a_dictionary_holding_a_null_stops_the_column():
    shared = SharedDictionaries(["s"], 2**20)
    odd = pa.table({"s": pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["a", None]))})
    assert shared(odd).equals(odd) and "s" in shared.stopped
