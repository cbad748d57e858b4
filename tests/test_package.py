"""The package's public names, imported on first use."""

from __future__ import annotations

import subprocess
import sys

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


def test_shuffle_is_the_function_whichever_is_imported_first():
    # the subpackage shuffle_kit.shuffle imported before (or after) the function
    code = """
import shuffle_kit.shuffle.hashing, shuffle_kit
from shuffle_kit.shuffle import api
print(shuffle_kit.shuffle is api.shuffle)
from shuffle_kit import shuffle
print(shuffle is api.shuffle)
"""
    assert _run(code).split() == ["True", "True"]
    code = """
import shuffle_kit
f = shuffle_kit.shuffle
import shuffle_kit.shuffle.split
print(shuffle_kit.shuffle is f, callable(f))
"""
    assert _run(code).split() == ["True", "True"]


def test_unknown_names_raise_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no_such_name"):
        shuffle_kit.no_such_name  # noqa: B018


def test_the_command_line_partitions_without_pandas_or_zeromq():
    # start-up time: the partition job needs Arrow and NumPy only
    code = """
import sys
import shuffle_kit, shuffle_kit.cli, shuffle_kit.partition_job, shuffle_kit.partition_stream
print(sorted(m for m in ("pandas", "zmq", "dask") if m in sys.modules))
"""
    assert _run(code) == "[]"
