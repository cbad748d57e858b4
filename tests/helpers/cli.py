"""Shared test helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time


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



def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Whether ``predicate()`` came true within ``timeout`` seconds (polled)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def has_data(directory, over: int) -> bool:
    """Whether a file below ``directory`` holds more than ``over`` bytes."""
    return any(os.path.getsize(os.path.join(r, f)) > over for r, _, fs in os.walk(directory) for f in fs)


def start(*args: object) -> subprocess.Popen:
    """``shuffle-kit *args`` started in a child process, its output piped as text."""
    return subprocess.Popen([sys.executable, "-m", "shuffle_kit", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def interrupted(args: list, ready, sig: int) -> tuple[int, str]:
    """Run ``shuffle-kit *args``, send ``sig`` once ``ready()`` holds (the job is mid-way),
    and return its exit status and stderr."""
    proc = start(*args)
    try:
        assert wait_for(ready), "the job never got under way"
        assert proc.poll() is None, "finished before the interrupt: make the input larger"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err
