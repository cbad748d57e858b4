"""File across processes: concurrent appends, set-once iset, and temporary-store lifetime."""

import gc
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
import textwrap

import shuffle_kit as sk

N_PROCS, N_APPENDS = 8, 300


def _writer(path: str, proc: int) -> None:
    store = sk.File(path)
    for i in range(N_APPENDS):
        record = f"<{proc}:{i}:".encode() + bytes([65 + proc]) * (i % 37) + b">"
        store.append({"shared": record, f"own-{proc}": record, ("mod", i % 5): record})
    store.iset("winner", str(proc).encode())


def test_concurrent_appends_from_many_processes(tmp_path):
    path = str(tmp_path / "s")
    sk.File(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, p)) for p in range(N_PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = sk.File(path)
    shared = store.get("shared")
    records = re.findall(rb"<(\d+):(\d+):([A-Z]*)>", shared)
    # every byte arrives, and no record is interleaved with another
    assert len(records) == N_PROCS * N_APPENDS
    assert sum(len(m.group(0)) for m in re.finditer(rb"<\d+:\d+:[A-Z]*>", shared)) == len(shared)
    seen = {p: [] for p in range(N_PROCS)}
    for proc, i, body in records:
        proc, i = int(proc), int(i)
        assert body == bytes([65 + proc]) * (i % 37)
        seen[proc].append(i)
    assert all(seen[p] == list(range(N_APPENDS)) for p in seen), "each writer's appends keep their order"
    for p in range(N_PROCS):
        assert store.get(f"own-{p}") == b"".join(
            f"<{p}:{i}:".encode() + bytes([65 + p]) * (i % 37) + b">" for i in range(N_APPENDS)
        )
    assert sum(len(store.get(("mod", m))) for m in range(5)) == len(shared)
    # set-once holds across processes: exactly one writer's iset won
    assert store.get("winner") in {str(p).encode() for p in range(N_PROCS)}


def _run(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, **kwargs)


def test_temporary_store_is_removed_at_exit():
    out = _run("""
        import shuffle_kit as sk
        s = sk.File()
        s.append({'a': b'x'})
        keep = [s]
        print(s.path)
    """, check=True).stdout.strip()
    assert out and not os.path.exists(out)


def test_temporary_store_outlives_its_creator_while_another_process_uses_it(tmp_path):
    handoff = tmp_path / "store.pickle"
    user = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import pickle, sys, time, os
            import shuffle_kit as sk
            while not os.path.exists({str(handoff)!r} + '.ready'):
                time.sleep(0.02)
            s = pickle.load(open({str(handoff)!r}, 'rb'))
            print('opened', flush=True)
            sys.stdin.readline()           # wait until the creator has exited
            print(s.get('a').decode(), flush=True)
            s.append({{'a': b'!'}})
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    creator = _run(f"""
        import pickle, time, shuffle_kit as sk
        s = sk.File()
        s.append({{'a': b'data'}})
        pickle.dump(s, open({str(handoff)!r}, 'wb'))
        open({str(handoff)!r} + '.ready', 'w').close()
        print(s.path, flush=True)
        time.sleep(1.5)                    # the other process opens it meanwhile
    """, check=True)
    path = creator.stdout.strip()
    assert user.stdout.readline().strip() == "opened"
    assert os.path.isdir(path), "removed while another process still had it open"
    user.stdin.write("go\n")
    user.stdin.flush()
    assert user.stdout.readline().strip() == "data"
    assert user.wait(timeout=60) == 0
    assert not os.path.exists(path), "the last user removes an orphaned temporary store"


def test_unpickled_copies_never_remove_data_when_collected():
    store = sk.File()
    store.append({"a": b"x"})
    copy = pickle.loads(pickle.dumps(store))
    assert copy.get("a") == b"x"
    del copy
    gc.collect()
    assert store.get("a") == b"x"
    path = store.path
    del store
    gc.collect()
    # it was pickled: a copy may still be opened from it (dask ships stores to workers),
    # so collecting the original does not remove it; the creator's exit does (see
    # tests/test_file_leftovers.py)
    assert pickle.loads(pickle.dumps(sk.File(path))).get("a") == b"x"
    import shutil

    shutil.rmtree(path)


def test_a_temporary_store_never_pickled_is_removed_when_collected():
    store = sk.File()
    store.append({"a": b"x"})
    path = store.path
    del store
    gc.collect()
    assert not os.path.exists(path), "the creator removes its temporary store when collected"


def test_explicit_path_survives_collection_and_reopens(tmp_path):
    store = sk.File(tmp_path / "s")
    store.append({"a": b"kept"})
    del store
    gc.collect()
    assert sk.File(tmp_path / "s").get("a") == b"kept"


def test_context_manager_drops_and_removes(tmp_path):
    with sk.File(tmp_path / "s") as store:
        store.append({"a": b"x"})
    assert not os.path.exists(tmp_path / "s")
    with sk.File() as tmp:
        tmp.append({"a": b"x"})
        path = tmp.path
    assert not os.path.exists(path)


def test_lock_is_reentrant_and_guards_unlocked_reads(tmp_path):
    store = sk.File(tmp_path / "s")
    store.append({"a": b"1"})
    with store.lock:
        assert store.get("a", lock=False) == b"1"
        assert store.get("a") == b"1"  # taking it again in the same thread does not deadlock
        store.append({"a": b"2"}, lock=False)
    assert store.get("a") == b"12"


def test_fsync_option_writes_durably(tmp_path):
    store = sk.File(tmp_path / "s", fsync=True)
    store.append({"a": b"durable"})
    store.drop()
    store.append({"a": b"again"})
    assert sk.File(tmp_path / "s").get("a") == b"again"
