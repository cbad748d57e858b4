"""WriterPool: files per key value, numbered per directory, written one by one or many at once."""

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.output_files import WriterPool

SCHEMA = pa.schema({"v": pa.int64()})


def _files(root) -> dict[str, list[int]]:
    """relative file path -> its values"""
    return {
        os.path.relpath(os.path.join(r, f), root): pq.read_table(os.path.join(r, f)).column("v").to_pylist()
        for r, _, files in os.walk(root) for f in files
    }


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "k=1/j=2", "c"]), st.booleans(), st.integers(1, 5)), max_size=40),
       st.integers(1, 3), st.integers(1, 2))
def test_files_match_a_model_whether_written_one_by_one_or_at_once(tmp_path_factory, ops, threads, max_open):
    root = tmp_path_factory.mktemp("out")
    pool = WriterPool(str(root), SCHEMA, "parquet", "none", max_open)
    model: dict[str, list[list[int]]] = {}  # directory -> values of each of its files, in order
    open_files: dict[str, int] = {}  # the pool's open writers (least recent first): rel -> its file
    value = 0
    batch: list[tuple[str, pa.Table]] = []

    def flush_batch():
        pool.write_new(batch, threads)  # each a whole new file of its directory
        for rel, t in batch:
            model.setdefault(rel, []).append(t.column("v").to_pylist())
        batch.clear()

    for rel, whole, n in ops:
        table = pa.table({"v": range(value, value + n)}, schema=SCHEMA)
        value += n
        if whole:
            batch.append((rel, table))
            continue
        flush_batch()
        if rel in open_files:  # an open file goes on, whatever was written beside it
            i = open_files.pop(rel)
            model[rel][i].extend(table.column("v").to_pylist())
        else:
            if len(open_files) >= max_open:
                del open_files[next(iter(open_files))]
            model.setdefault(rel, []).append(table.column("v").to_pylist())
            i = len(model[rel]) - 1
        open_files[rel] = i
        pool.write(rel, table)
    flush_batch()
    pool.close_all()
    expected = {os.path.join(rel, f"part-{i:05d}.parquet"): values for rel, files in model.items() for i, values in enumerate(files)}
    assert _files(root) == expected
    assert pool.files == len(expected) and pool.rows == value and pool.dirs == set(model)


def test_a_failing_file_stops_write_new(tmp_path):
    pool = WriterPool(str(tmp_path), SCHEMA, "parquet", "none", 4)
    good = pa.table({"v": [1]}, schema=SCHEMA)
    items = [("a", good)] * 5 + [("b", pa.table({"w": ["x"]}))] + [("c", good)] * 100
    taken = []

    def source():
        for item in items:
            taken.append(item)
            yield item

    with pytest.raises(ValueError, match="schema"):
        pool.write_new(source(), 2)
    # it stopped soon after the failure (a few files in flight), not after every file
    assert len(taken) < 20
