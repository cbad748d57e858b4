"""Out of core: a Parquet input several times larger than ``memory_limit`` is shuffled
with peak RSS below ``memory_limit`` plus a documented overhead (measured in a subprocess)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers.memory import WATCH_PEAK_RSS

MB = 2**20
MEMORY_LIMIT = 24 * MB
CHUNK = 8 * MB
# the documented overhead beyond memory_limit: about five chunks in flight (one being read,
# two partitioned, one being encoded and appended, and the encoded pieces) plus a fixed
# ~160 MB that does not grow with the input (Arrow's and the Parquet reader's thread pools
# and allocator arenas, code paths imported on first use), measured on pyarrow 26
OVERHEAD = 5 * CHUNK + 160 * MB

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pyarrow as pa, pandas as pd, shuffle_kit
    """
) + WATCH_PEAK_RSS + textwrap.dedent(
    """
    res = shuffle_kit.shuffle(sys.argv[1], "key", 64, memory_limit=int(sys.argv[2]),
                              chunk_bytes=int(sys.argv[3]), progress=False)
    spilled = res.codec.store.nbytes()
    rows = sum(len(p) for p in res)   # read back one partition at a time
    stop_watching()
    res.close()
    print(json.dumps({"base": base, "peak": peak[0], "rows": rows, "spilled": spilled}))
    """
)



@pytest.mark.slow
def test_out_of_core_peak_rss(tmp_path):
    rng = np.random.default_rng(0)
    n = 4_000_000
    path = tmp_path / "big.parquet"
    table = pa.table({
        "key": rng.integers(0, 100_000, n), "x": rng.random(n), "y": rng.integers(0, 10**9, n),
        "s": pa.array(np.char.add("w", rng.integers(0, 10**8, n).astype("U8")).astype(object), pa.large_string()),
    })
    in_memory = table.nbytes
    assert in_memory > 4 * MEMORY_LIMIT
    pq.write_table(table, path, row_group_size=100_000)
    small = tmp_path / "small.parquet"
    pq.write_table(table.slice(0, n // 4), small, row_group_size=100_000)
    del table

    def run(p):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(p), str(MEMORY_LIMIT), str(CHUNK)],
            capture_output=True, text=True, check=True,
        ).stdout
        return json.loads(out)

    r, r_small = run(path), run(small)
    assert r["rows"] == n and r_small["rows"] == n // 4
    assert r["spilled"] > in_memory // 2  # most of it went to disk
    extra = r["peak"] - r["base"]
    growth = extra - (r_small["peak"] - r_small["base"])
    print(f"input {in_memory / MB:.0f} MB: peak RSS above baseline {extra / MB:.0f} MB; "
          f"{growth / MB:.0f} MB more than for a quarter of the input")
    assert extra < MEMORY_LIMIT + OVERHEAD, (extra / MB, in_memory / MB)
    # out of core: memory does not grow with the input (3/4 of it is 117 MB here); the
    # peaks differ by at most the chunks in flight, which depend on thread timing
    assert growth < 5 * CHUNK, growth / MB
