"""File survives torn writes and reports corruption instead of returning wrong bytes."""

import os
import shutil

import pytest

import shuffle_kit as sk
from shuffle_kit.errors import CorruptionError
from shuffle_kit.stores.file import LOG_NAME
from shuffle_kit.stores.keys import encode_key
from shuffle_kit.testing import Model

EARLIER = [
    ("append", {"a": b"alpha", ("t", 1): b"tuple", 7: b"seven"}),
    ("iset", ("meta", b"set-once")),
    ("append", {"a": b"-more", "b": b"x" * 300}),
    ("delete", [7]),
]
LAST = [
    ("append", {"a": b"LAST", "c": b"new key", "b": b"y" * 100}),
    ("append_id", {"a": b"dedup"}),
    ("iset", ("other", b"set")),
    ("delete", ["a", ("t", 1)]),
]


def apply(target, op, arg):
    if op == "append":
        target.append(arg)
    elif op == "append_id":
        target.append(arg, batch_id=b"writer-1")
    elif op == "iset":
        target.iset(*arg)
    else:
        target.delete(arg)


def build(path, ops):
    store, model = sk.File(path), Model()
    for op, arg in ops:
        apply(store, op, arg)
        apply(model, op, arg)
    store.close()
    return model


KEYS = ["a", "b", "c", ("t", 1), 7, "meta", "other"]


def expect(model):
    return [model.data.get(k, b"") for k in KEYS]


@pytest.mark.parametrize("last", LAST, ids=[op for op, _ in LAST])
def test_every_torn_cut_of_the_last_write_reads_the_earlier_ones(tmp_path, last):
    before = build(tmp_path / "base", EARLIER)
    size_before = os.path.getsize(tmp_path / "base" / LOG_NAME)
    after = build(tmp_path / "full", EARLIER + [last])
    size_after = os.path.getsize(tmp_path / "full" / LOG_NAME)
    assert size_after > size_before
    for cut in range(size_before, size_after):
        case = tmp_path / f"cut{cut}"
        shutil.copytree(tmp_path / "full", case)
        os.truncate(case / LOG_NAME, cut)
        store = sk.File(case)
        assert store.get(KEYS) == expect(before), f"cut at byte {cut}"
        # the torn tail is cut away and later appends work
        store.append({"a": b"+after"})
        before_copy = Model()
        before_copy.data = dict(before.data)
        before_copy.append({"a": b"+after"})
        assert sk.File(case).get(KEYS) == expect(before_copy)
        assert os.path.getsize(case / LOG_NAME) < size_after + 200
        store.close()
        shutil.rmtree(case)
    # and the uncut log holds everything
    assert sk.File(tmp_path / "full").get(KEYS) == expect(after)


def test_zero_filled_tail_is_a_torn_write(tmp_path):
    model = build(tmp_path / "s", EARLIER)
    with open(tmp_path / "s" / LOG_NAME, "ab") as f:
        f.write(bytes(4096))  # the file grew but the data never landed
    store = sk.File(tmp_path / "s")
    assert store.get(KEYS) == expect(model)
    store.append({"z": b"1"})
    assert sk.File(tmp_path / "s").get("z") == b"1"


def _value_ranges(store, key):
    """File byte ranges holding the value of ``key``."""
    index = store._index
    sel = index.select([encode_key(key)])
    for number, offset, length in zip(sel.batch.tolist(), sel.offset.tolist(), sel.length.tolist()):
        start, _ = index.body(number)
        yield start + offset, start + offset + length


@pytest.mark.parametrize("key", ["a", "b", ("t", 1), "meta"])
def test_every_flipped_payload_byte_is_reported_naming_the_key(tmp_path, key):
    build(tmp_path / "s", EARLIER)
    store = sk.File(tmp_path / "s")
    store.get(KEYS)
    log = tmp_path / "s" / LOG_NAME
    original = log.read_bytes()
    ranges = list(_value_ranges(store, key))
    assert ranges
    for lo, hi in ranges:
        for pos in range(lo, hi):
            damaged = bytearray(original)
            damaged[pos] ^= 0x40
            log.write_bytes(damaged)
            for reader in (sk.File(tmp_path / "s"), store):
                with pytest.raises(CorruptionError, match=repr(key).replace("(", r"\(").replace(")", r"\)")):
                    reader.get(key)
                with pytest.raises(CorruptionError):
                    reader.get_records([key])
    log.write_bytes(original)
    assert store.get(key) == sk.File(tmp_path / "s").get(key)


def test_a_flipped_byte_anywhere_never_returns_wrong_data(tmp_path):
    model = build(tmp_path / "s", EARLIER + LAST[:1])
    log = tmp_path / "s" / LOG_NAME
    original = log.read_bytes()
    outcomes = set()
    for pos in range(len(original)):
        if 8 <= pos < 16:
            continue  # the epoch: any value is valid, it only names the log's generation
        damaged = bytearray(original)
        damaged[pos] ^= 0x01
        log.write_bytes(damaged)
        try:
            got = sk.File(tmp_path / "s").get(KEYS)
        except CorruptionError:
            outcomes.add("raised")
            continue
        # a flip in a deleted key's bytes is harmless; otherwise the data must be exact
        assert got == expect(model), f"wrong data returned after flipping byte {pos}"
        outcomes.add("exact")
    assert "raised" in outcomes
    log.write_bytes(original)


def test_read_errors_are_raised_not_turned_into_empty_data(tmp_path):
    store = sk.File(tmp_path / "s")
    store.append({"a": b"data"})
    store.close()
    os.unlink(tmp_path / "s" / LOG_NAME)
    with pytest.raises(FileNotFoundError):
        store.get("a")


def test_too_many_open_files_is_raised(tmp_path):
    import subprocess
    import sys

    code = f"""
import resource, shuffle_kit as sk
s = sk.File({str(tmp_path / 's')!r})
s.append({{'a': b'data'}})
s.close()
import os
used = len(os.listdir('/proc/self/fd'))
resource.setrlimit(resource.RLIMIT_NOFILE, (used, used))
try:
    s.get('a')
except OSError as e:
    print('OSError', e.errno)
else:
    print('no error')
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("OSError 24"), out


def test_not_a_log_is_rejected(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / LOG_NAME).write_bytes(b"something else entirely, not a log")
    with pytest.raises(CorruptionError, match="not a shuffle_kit store log"):
        sk.File(tmp_path / "s")
