"""Temporary File stores: what a killed process leaves is removed by the next one; a store
that was pickled outlives its original object."""

import gc
import os
import pickle
import subprocess
import sys
import time

from shuffle_kit import File
from shuffle_kit.stores.file import STALE_SECONDS, sweep_temporary_stores

MAKER = """
import os, signal, sys, time
from shuffle_kit import File
s = File(dir=sys.argv[1])
s.append({"k": b"v" * 1000})
print(s.path, flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(60)
"""


def _made(tmp_path, how: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", MAKER, str(tmp_path), how], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def _age(path: str) -> None:
    past = time.time() - 2 * STALE_SECONDS
    os.utime(path, (past, past))


def test_a_store_left_by_a_killed_process_is_removed_by_the_next_temporary_store(tmp_path):
    dead, left = _made(tmp_path, "die")
    dead.wait()
    alive, kept = _made(tmp_path, "live")
    try:
        assert os.path.isdir(left) and os.path.isdir(kept)
        _age(left)
        _age(kept)
        with File(dir=str(tmp_path)) as fresh:  # making one sweeps the dead's
            assert not os.path.exists(left)
            assert os.path.isdir(kept)  # its owner lives: kept, however old
            assert File(kept).get("k") == b"v" * 1000
        assert not os.path.exists(fresh.path)
    finally:
        alive.kill()
        alive.wait()
    _age(kept)
    assert sweep_temporary_stores(str(tmp_path)) == [kept]


def test_a_young_store_is_never_swept(tmp_path):
    dead, left = _made(tmp_path, "die")
    dead.wait()
    assert sweep_temporary_stores(str(tmp_path)) == []  # its creator may be about to lock it
    assert os.path.isdir(left)


def test_a_pickled_temporary_store_outlives_its_original(tmp_path):
    s = File(dir=str(tmp_path))
    s.append({"k": b"data"})
    shipped = pickle.dumps(s)  # as dask ships a store to its workers
    path = s.path
    del s
    gc.collect()
    assert os.path.isdir(path)
    copy = pickle.loads(shipped)
    assert copy.get("k") == b"data"
    copy.close()


def test_a_pickled_store_is_removed_when_its_creator_exits(tmp_path):
    code = (
        "import gc, pickle, sys\nfrom shuffle_kit import File\n"
        "s = File(dir=sys.argv[1]); s.append({'k': b'x'}); pickle.dumps(s); print(s.path, flush=True)\n"
        "del s; gc.collect()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() and not os.path.exists(out.stdout.strip())
    assert os.listdir(tmp_path) == []
