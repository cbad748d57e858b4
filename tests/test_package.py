"""The package's public names, imported on first use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import shuffle_kit


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_every_public_name_resolves_and_star_import_works():
    for name in shuffle_kit.__all__:
        assert getattr(shuffle_kit, name) is not None, name
    assert set(shuffle_kit.__all__) <= set(dir(shuffle_kit))
    namespace: dict = {}
    exec("from shuffle_kit import *", namespace)
    assert namespace["File"] is shuffle_kit.stores.File and callable(namespace["shuffle"])


def test_no_module_is_hidden_by_a_function():
    # the subpackages are named apart from the functions shuffle and partition, so both
    # stay reachable whichever is imported first
    code = """
import shuffle_kit.kernels.hashing, shuffle_kit.partitioning.job, shuffle_kit
from shuffle_kit.shuffling import api
print(shuffle_kit.shuffle is api.shuffle, shuffle_kit.partition is shuffle_kit.partitioning.job.partition)
print(shuffle_kit.kernels.hashing.__name__, shuffle_kit.partitioning.job.__name__)
"""
    assert _run(code).split() == ["True", "True", "shuffle_kit.kernels.hashing", "shuffle_kit.partitioning.job"]


def test_unknown_names_raise_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no_such_name"):
        shuffle_kit.no_such_name  # noqa: B018


@pytest.mark.parametrize("on, mode", [
    ("k,t,s,x", []), ("k", []),  # "k": the string column goes as a dictionary
    ("k", ["--by-range"]), ("t,s", ["--by-range", "--sort-by", "t,s"]),  # (the key order's checks too)
])
def test_the_command_line_partitions_without_pandas_or_zeromq(tmp_path, on, mode):
    # start-up time: importing pandas costs ~0.3 s, and pyarrow's own conversions
    # (to_numpy, pa.array of a NumPy array) would import it behind our back
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    pq.write_table(pa.table({
        "k": rng.integers(0, 50, 1000), "t": pa.array(rng.integers(0, 10**12, 1000), pa.timestamp("us", "UTC")),
        "s": pa.array([f"w{i}" for i in rng.integers(0, 9, 1000)]), "x": rng.random(1000),
    }), tmp_path / "in.parquet")
    code = f"""
import sys
from shuffle_kit import cli
assert cli.main(["partition", {str(tmp_path / "in.parquet")!r}, "--on", {on!r}, "--out", {str(tmp_path / "out")!r},
                 "--npartitions", "4", *{mode!r}]) == 0
print(sorted(m for m in ("pandas", "zmq", "dask") if m in sys.modules))
"""
    assert _run(code).splitlines()[-1] == "[]"


@pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64",
                    reason="jemalloc: PyPI's Linux x86-64 wheels")
def test_the_command_line_allocates_all_arrow_memory_with_jemalloc(tmp_path):
    # the Parquet reader's and writer's own buffers too, not only what Python asks for
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"k": list(range(1000)), "s": [f"w{i % 7}" for i in range(1000)]}), tmp_path / "in.parquet")
    code = f"""
import os, sys
os.environ.pop("ARROW_DEFAULT_MEMORY_POOL", None)
sys.argv = ["shuffle-kit", "partition", {str(tmp_path / "in.parquet")!r}, "--on", "k",
            "--out", {str(tmp_path / "out")!r}, "--npartitions", "4"]
from shuffle_kit.cli import console
assert console() == 0
import pyarrow as pa
print(pa.jemalloc_memory_pool().max_memory() > 0, pa.mimalloc_memory_pool().max_memory())
"""
    assert _run(code).splitlines()[-1] == "True 0"


def test_a_platform_without_file_locks_gets_one_clear_sentence():
    import subprocess
    import sys

    code = "import sys; sys.modules['fcntl'] = None\nimport shuffle_kit"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0
    assert "shuffle_kit runs on Linux and macOS" in r.stderr.strip().splitlines()[-1]


def test_version_flag():
    import subprocess
    import sys

    import shuffle_kit

    r = subprocess.run([sys.executable, "-m", "shuffle_kit", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"shuffle-kit {shuffle_kit.__version__}"


def test_shuffle_data_lost_is_one_public_error():
    # raised by the dask integration, caught by users as shuffle_kit's or as a RuntimeError
    assert issubclass(shuffle_kit.ShuffleDataLost, shuffle_kit.ShuffleKitError)
    assert issubclass(shuffle_kit.ShuffleDataLost, RuntimeError)
    assert shuffle_kit.ShuffleDataLost is shuffle_kit.errors.ShuffleDataLost
    skd = pytest.importorskip("shuffle_kit.dask")
    assert skd.ShuffleDataLost is shuffle_kit.ShuffleDataLost
