"""Shared test helpers."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shuffle_kit", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, **kw,
    )


def assert_one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode != 0
    err = r.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("shuffle-kit"), err
    for w in words:
        assert w in err, err

