"""Directories that die with their process (shuffle_kit.lifecycle): removed by their owner,
and by a sweep once the owner is dead and nobody uses them. Owners and users are real
processes, killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import time

from shuffle_kit import lifecycle

OWNER = """
import sys, time
from shuffle_kit import lifecycle
print(lifecycle.make(".job-", sys.argv[1]), flush=True)
time.sleep(60)
"""

USER = """
import sys, time
from shuffle_kit import lifecycle
lifecycle.use(sys.argv[1])
print("using", flush=True)
time.sleep(60)
"""


def _owner(parent) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(parent)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_live_owners_directory_stays_and_a_dead_ones_goes(tmp_path):
    live, kept = _owner(tmp_path)
    dead, gone = _owner(tmp_path)
    try:
        (tmp_path / os.path.basename(gone) / "data").write_bytes(b"x" * 1000)
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert lifecycle.sweep(".job-", str(tmp_path)) == [gone]
        assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(kept), os.path.basename(kept) + ".lock"])
    finally:
        live.kill()
        live.wait()
    assert lifecycle.sweep(".job-", str(tmp_path)) == [kept]
    assert os.listdir(tmp_path) == []


def test_other_names_and_young_unlocked_directories_are_left_alone(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / ".job-young").mkdir()  # its owner may be about to lock it
    old = tmp_path / ".job-old"
    old.mkdir()
    past = time.time() - 2 * lifecycle.GRACE
    os.utime(old, (past, past))
    assert lifecycle.sweep(".job-", str(tmp_path)) == [str(old)]
    assert sorted(os.listdir(tmp_path)) == [".job-young", "data"]


def test_release_keeps_the_directory_and_drops_the_lock(tmp_path):
    d = lifecycle.make(".job-", str(tmp_path))
    os.rename(d, tmp_path / "published")
    lifecycle.release(d)
    assert os.listdir(tmp_path) == ["published"]


def test_alive_follows_the_owner_process(tmp_path):
    owner, d = _owner(tmp_path)
    try:
        assert lifecycle.alive(d)
        assert lifecycle.abandoned(".job-", str(tmp_path)) == []
    finally:
        _kill(owner)
    assert not lifecycle.alive(d)
    assert lifecycle.abandoned(".job-", str(tmp_path)) == [d]


def test_a_dead_owners_directory_stays_while_another_process_uses_it(tmp_path):
    owner, d = _owner(tmp_path)
    _kill(owner)
    user = subprocess.Popen([sys.executable, "-c", USER, d], stdout=subprocess.PIPE, text=True)
    try:
        assert user.stdout.readline().strip() == "using"
        assert lifecycle.sweep(".job-", str(tmp_path)) == []
        with lifecycle.unused(d) as free:
            assert not free
        assert not lifecycle.remove_if_unused(d)
        assert os.path.isdir(d)
    finally:
        _kill(user)
    assert lifecycle.sweep(".job-", str(tmp_path)) == [d]
    assert os.listdir(tmp_path) == []


def test_min_age_spares_a_young_directory_whatever_its_lock_says(tmp_path):
    owner, d = _owner(tmp_path)
    _kill(owner)
    assert lifecycle.sweep(".job-", str(tmp_path), min_age=lifecycle.GRACE) == []
    past = time.time() - 2 * lifecycle.GRACE
    os.utime(d, (past, past))
    assert lifecycle.sweep(".job-", str(tmp_path), min_age=lifecycle.GRACE) == [d]


def test_prefix_and_suffix_select_the_directories(tmp_path):
    owners = [_owner(tmp_path)]
    made = subprocess.Popen(
        [sys.executable, "-c", OWNER.replace('".job-", sys.argv[1]', '".job-", sys.argv[1], ".store"'), str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )
    owners.append((made, made.stdout.readline().strip()))
    for proc, _ in owners:
        _kill(proc)
    plain, store = (d for _, d in owners)
    assert store.endswith(".store") and os.path.basename(store).startswith(".job-")
    assert lifecycle.sweep(".job-", str(tmp_path), ".store") == [store]
    assert lifecycle.sweep(".job-", str(tmp_path)) == [plain]


def test_a_relative_parent_gives_an_absolute_directory_released_by_either_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = lifecycle.make(".job-", ".")
    assert os.path.isabs(d) and lifecycle.alive(d)
    lifecycle.remove(os.path.relpath(d))
    assert not lifecycle.alive(d)
    assert os.listdir(tmp_path) == []


SWEEPER = """
import sys
from shuffle_kit import lifecycle
print("sweeping", flush=True)
while True:
    lifecycle.sweep(".job-", sys.argv[1])
"""


def test_a_concurrent_sweep_never_takes_a_directory_being_made(tmp_path):
    # a sweep in another process, as fast as it can go, while this one makes directories:
    # none may vanish under its living owner (its lock must never be seen free)
    sweepers = [subprocess.Popen([sys.executable, "-c", SWEEPER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    try:
        for proc in sweepers:
            assert proc.stdout.readline().strip() == "sweeping"
        made = [lifecycle.make(".job-", str(tmp_path)) for _ in range(3000)]
        assert all(os.path.isdir(d) for d in made)
    finally:
        for proc in sweepers:
            _kill(proc)
    for d in made:
        lifecycle.remove(d)
    assert os.listdir(tmp_path) == []


def test_a_lock_file_left_without_its_directory_goes_once_free_and_old(tmp_path):
    owner, d = _owner(tmp_path)
    os.rmdir(d)  # as if a sweep was killed between the directory and its lock file
    assert lifecycle.sweep(".job-", str(tmp_path)) == []
    assert os.listdir(tmp_path) == [os.path.basename(d) + ".lock"]  # its owner lives
    _kill(owner)
    lifecycle.sweep(".job-", str(tmp_path))
    assert os.listdir(tmp_path) == [os.path.basename(d) + ".lock"]  # young: an owner may be about to lock it
    past = time.time() - 2 * lifecycle.GRACE
    os.utime(lifecycle.lock_file(d), (past, past))
    (tmp_path / "other.lock").touch()
    os.utime(tmp_path / "other.lock", (past, past))
    assert lifecycle.sweep(".job-", str(tmp_path)) == []
    assert os.listdir(tmp_path) == ["other.lock"]
