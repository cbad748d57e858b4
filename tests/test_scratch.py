"""Scratch directories: removed by their owner, and by a sweep once the owner is dead."""

import os
import signal
import subprocess
import sys
import time

from shuffle_kit import scratch

OWNER = """
import sys, time
from shuffle_kit import scratch
print(scratch.make(".job-", sys.argv[1]), flush=True)
time.sleep(60)
"""


def _owner(parent) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(parent)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def test_a_live_owners_directory_stays_and_a_dead_ones_goes(tmp_path):
    live, kept = _owner(tmp_path)
    dead, gone = _owner(tmp_path)
    try:
        (tmp_path / os.path.basename(gone) / "data").write_bytes(b"x" * 1000)
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert scratch.sweep(".job-", str(tmp_path)) == [gone]
        assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(kept), os.path.basename(kept) + ".lock"])
    finally:
        live.kill()
        live.wait()
    assert scratch.sweep(".job-", str(tmp_path)) == [kept]
    assert os.listdir(tmp_path) == []


def test_other_names_and_young_unlocked_directories_are_left_alone(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / ".job-young").mkdir()  # its owner may be about to lock it
    old = tmp_path / ".job-old"
    old.mkdir()
    past = time.time() - 2 * scratch.GRACE
    os.utime(old, (past, past))
    assert scratch.sweep(".job-", str(tmp_path)) == [str(old)]
    assert sorted(os.listdir(tmp_path)) == [".job-young", "data"]


def test_release_keeps_the_directory_and_drops_the_lock(tmp_path):
    d = scratch.make(".job-", str(tmp_path))
    os.rename(d, tmp_path / "published")
    scratch.release(d)
    assert os.listdir(tmp_path) == ["published"]
