"""One family of exceptions: every exception a user can meet lives in shuffle_kit.errors,
derives from ShuffleKitError and is importable from shuffle_kit itself."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil

import pytest

import shuffle_kit
import shuffle_kit.errors as errors
from shuffle_kit.stores.remote import protocol as P

# Exceptions defined outside shuffle_kit.errors on purpose (by class name, wherever their
# module is), and why no user meets them.
INTERNAL = {
    "Damaged": "stores.logformat: File turns it into CorruptionError or ignores a torn tail",
    "Unreachable": "the dask scheduler plugin: a host's reply it logs, never raised",
}


def _modules():
    """Every module of shuffle_kit (not __main__, which would run the command line)."""
    yield shuffle_kit
    for info in pkgutil.walk_packages(shuffle_kit.__path__, "shuffle_kit."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            yield importlib.import_module(info.name)


def _defined_exceptions() -> dict[str, type[BaseException]]:
    found = {}
    for module in _modules():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_exception_a_user_can_meet_is_in_errors_and_is_a_shuffle_kit_error():
    found = _defined_exceptions()
    outside = {path.rsplit(".", 1)[-1] for path in found if not path.startswith("shuffle_kit.errors.")}
    assert outside == set(INTERNAL)  # no public one outside, and each private one exists
    public = {path: cls for path, cls in found.items() if path.startswith("shuffle_kit.errors.")}
    assert {cls.__name__ for cls in public.values()} == set(errors.__all__)
    for cls in public.values():
        assert issubclass(cls, errors.ShuffleKitError), cls
        assert getattr(shuffle_kit, cls.__name__) is cls and cls.__name__ in shuffle_kit.__all__, cls


def test_public_exceptions_import_from_the_package_and_keep_their_builtin_bases():
    from shuffle_kit import (
        BadValue,
        CorruptionError,
        MalformedMessage,
        MessageTooLarge,
        Refused,
        RemoteCorruptionError,
        RemoteKeyError,
        RemoteOSError,
        RemoteTypeError,
        RemoteValueError,
        ServerError,
        ShuffleKitError,
        UnknownCommand,
        UnsupportedVersion,
    )

    # existing except clauses still catch them
    for cls, builtin in [
        (MalformedMessage, ValueError), (UnknownCommand, ValueError), (BadValue, ValueError),
        (Refused, PermissionError), (RemoteTypeError, TypeError), (RemoteValueError, ValueError),
        (RemoteKeyError, KeyError), (RemoteOSError, OSError), (RemoteCorruptionError, CorruptionError),
        (MessageTooLarge, ValueError),
    ]:
        assert issubclass(cls, builtin), cls
    for cls in [MalformedMessage, UnknownCommand, UnsupportedVersion, BadValue, Refused, RemoteKeyError]:
        assert issubclass(cls, ServerError) and issubclass(cls, ShuffleKitError), cls
    assert not issubclass(MessageTooLarge, ServerError)  # raised by the client: the server never answered


@pytest.mark.parametrize("cls", list(P.ERROR_CODES))
def test_each_server_error_travels_as_its_own_code_and_comes_back_as_itself(cls):
    frames = P.error_reply(7, cls("bad thing"))
    status, _, request_id = P.parse_header(frames[0])
    assert (status, request_id) == (P.ERROR_CODES[cls], 7)
    back = P.error_from_reply(status, frames[1].decode(), frames[2].decode())
    assert type(back) is cls and str(back) == "server: bad thing" and back.remote_type == cls.__name__


@pytest.mark.parametrize(
    "raised, comes_back",
    [(KeyError("k"), errors.RemoteKeyError), (FileNotFoundError("f"), errors.RemoteOSError),
     (errors.CorruptionError("c"), errors.RemoteCorruptionError), (RuntimeError("r"), errors.RemoteStoreError)],
)
def test_a_stores_own_error_travels_as_a_store_error_named_by_its_class(raised, comes_back):
    frames = P.error_reply(1, raised)
    status, _, _ = P.parse_header(frames[0])
    back = P.error_from_reply(status, frames[1].decode(), frames[2].decode())
    assert status == P.STORE_ERROR and type(back) is comes_back and back.remote_type == type(raised).__name__


def test_a_real_servers_refusal_is_caught_as_shuffle_kits_and_as_the_builtin():
    with shuffle_kit.Server() as server:
        client = shuffle_kit.Shared(server.address)
        try:
            with pytest.raises(shuffle_kit.ShuffleKitError, match="remote_shutdown") as info:
                client.shutdown_server()
            assert isinstance(info.value, PermissionError) and isinstance(info.value, shuffle_kit.Refused)
        finally:
            client.close()


@pytest.mark.parametrize("cls", [*P.ERROR_CODES, errors.RemoteKeyError, errors.RemoteOSError, errors.RemoteStoreError])
def test_a_server_error_pickles_with_its_remote_type(cls):
    # dask hands a task's exception to the client pickled
    import pickle

    e = cls("server: bad thing", "SomeRemoteError")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls and back.args == e.args and back.remote_type == "SomeRemoteError"


# -- every error a user can cause through the public API ----------------------------------


def _bad_calls(tmp_path):
    """(name, call, builtin, words the one-line message must hold) for the public entry points."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = pd.DataFrame({"dest": [1, 2, 3], "x": [1.0, 2.0, 3.0]})
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in.parquet")
    (tmp_path / "afile").write_text("")
    src, missing, out = str(tmp_path / "in.parquet"), str(tmp_path / "nope.parquet"), str(tmp_path / "out")
    sk = shuffle_kit

    def part(*args, **kw):
        return lambda: sk.partition(*args, progress=False, **kw)

    calls = [
        ("shuffle: missing column", lambda: sk.shuffle(df, "Dest", npartitions=2), KeyError, ["'Dest'", "'dest'"]),
        ("shuffle: missing column (Arrow)", lambda: sk.shuffle(pa.Table.from_pandas(df), "Dest"), KeyError,
         ["'Dest'", "did you mean 'dest'"]),
        ("shuffle: missing column (file)", lambda: sk.shuffle(src, "dst"), KeyError, ["'dst'", "did you mean 'dest'"]),
        ("shuffle: missing path", lambda: sk.shuffle(missing, "dest"), FileNotFoundError, [missing]),
        ("shuffle: npartitions=0", lambda: sk.shuffle(df, "dest", npartitions=0), ValueError, ["npartitions"]),
        ("shuffle: npartitions type", lambda: sk.shuffle(df, "dest", npartitions="4"), TypeError, ["npartitions"]),
        ("shuffle: memory_limit", lambda: sk.shuffle(df, "dest", memory_limit="lots"), ValueError, ["'lots'"]),
        ("shuffle: memory_limit < 0", lambda: sk.shuffle(df, "dest", memory_limit=-1), ValueError, ["-1"]),
        ("shuffle: threads=0", lambda: sk.shuffle(df, "dest", threads=0), ValueError, ["threads"]),
        ("shuffle: partitioner", lambda: sk.shuffle(df, "dest", partitioner="random"), ValueError, ["partitioner"]),
        ("shuffle: input type", lambda: sk.shuffle(42, "dest"), TypeError, ["int"]),
        ("shuffle: no key", lambda: sk.shuffle(df, []), ValueError, ["on"]),
        ("shuffle: store type", lambda: sk.shuffle(df, "dest", store=3), TypeError, ["store"]),
        ("shuffle: bad format", lambda: sk.shuffle(str(tmp_path / "afile"), "dest"), ValueError, ["afile"]),
        ("groupby_shuffle: missing column", lambda: list(sk.groupby_shuffle(df, "DEST")), KeyError,
         ["'DEST'", "did you mean 'dest'"]),
        ("groupby_shuffle: missing path", lambda: list(sk.groupby_shuffle(missing, "dest")), FileNotFoundError,
         [missing]),
        ("partition: missing column", part(src, "Dest", out), KeyError, ["'Dest'", "did you mean 'dest'"]),
        ("partition: missing path", part(missing, "dest", out), FileNotFoundError, [missing]),
        ("partition: npartitions=0", part(src, "dest", out, npartitions=0), ValueError, ["npartitions"]),
        ("partition: memory_limit", part(src, "dest", out, memory_limit="x"), ValueError, ["memory_limit"]),
        ("partition: format", part(src, "dest", out, format="xls"), ValueError, ["--format"]),
        ("partition: sort_by column", part(src, "dest", out, layout=sk.Layout(sort_by=("X",))), KeyError,
         ["--sort-by", "'X'", "did you mean 'x'"]),
        ("partition: --out parent is a file", part(src, "dest", str(tmp_path / "afile" / "out")),
         NotADirectoryError, [str(tmp_path / "afile"), "not a directory"]),
        ("partition: --tmp is a file", part(src, "dest", out, tmp=str(tmp_path / "afile")), NotADirectoryError,
         ["--tmp", str(tmp_path / "afile")]),
        ("File: path is a file", lambda: sk.File(tmp_path / "afile"), NotADirectoryError, [str(tmp_path / "afile")]),
        ("File: parent is a file", lambda: sk.File(tmp_path / "afile" / "s"), NotADirectoryError,
         [str(tmp_path / "afile")]),
        ("File: path type", lambda: sk.File(3), TypeError, ["path"]),
        ("ArrowIPC: store type", lambda: sk.ArrowIPC(3), TypeError, ["store"]),
        ("Pickle: store type", lambda: sk.Pickle(object()), TypeError, ["store"]),
        ("Buffer: available_memory", lambda: sk.Buffer(sk.Dict(), sk.Dict(), available_memory=[1]), TypeError,
         ["available_memory"]),
        ("TableBuffer: memory_limit", lambda: sk.TableBuffer(sk.Dict(), memory_limit=-5), ValueError,
         ["memory_limit"]),
        ("Shared: address", lambda: sk.Shared("nonsense"), ValueError, ["'nonsense'"]),
        ("Dict.append: value", lambda: sk.Dict().append({"k": "text"}), TypeError, ["'k'", "str"]),
        ("Dict.append: key", lambda: sk.Dict().append({True: b"x"}), TypeError, ["bool keys"]),
        ("File.append: batch_id", lambda: sk.File(tmp_path / "f").append({"k": b"x"}, batch_id="1"), TypeError,
         ["batch_id"]),
        ("Server: address", lambda: sk.Server(address="udp://x"), ValueError, ["'udp://x'"]),
        ("ShuffleResult: index", lambda: sk.shuffle(df, "dest", 2, progress=False)[99], IndexError,
         ["partition 99", "2 partitions"]),
        ("Numpy: dtype drift", lambda: _numpy_drift(), TypeError, ["'x'", "int64", "float64"]),
    ]
    try:
        import dask.dataframe as dd

        import shuffle_kit.dask as skd
    except ImportError:  # pragma: no cover
        return calls
    ddf = dd.from_pandas(df, npartitions=2)
    return calls + [
        ("dask.shuffle: missing column", lambda: skd.shuffle(ddf, "Dest"), KeyError, ["'Dest'", "did you mean 'dest'"]),
        ("dask.shuffle: not a dask frame", lambda: skd.shuffle(df, "dest"), TypeError, ["DataFrame"]),
        ("dask.shuffle: npartitions=0", lambda: skd.shuffle(ddf, "dest", npartitions=0), ValueError, ["npartitions"]),
        ("dask.shuffle: partitioner", lambda: skd.shuffle(ddf, "dest", partitioner="x"), ValueError, ["partitioner"]),
        ("dask.shuffle: store type", lambda: skd.shuffle(ddf, "dest", store=3), TypeError, ["store"]),
        ("dask.groupby_apply: missing column", lambda: skd.groupby_apply(ddf, "Dest", len), KeyError,
         ["'Dest'", "did you mean 'dest'"]),
    ]


def _numpy_drift() -> None:
    import numpy as np

    import shuffle_kit as sk

    store = sk.Numpy(sk.Dict())
    store.append({"x": np.arange(3)})
    store.append({"x": np.arange(3.0)})


def test_every_error_a_user_causes_through_the_public_api_is_a_shuffle_kit_error_and_the_builtin(tmp_path):
    from shuffle_kit.errors import one_line

    for name, call, builtin, words in _bad_calls(tmp_path):
        with pytest.raises(Exception) as info:
            call()
        e = info.value
        assert isinstance(e, errors.ShuffleKitError), (name, type(e), e)
        assert isinstance(e, errors.JobError), (name, type(e))  # "the user can fix it"
        assert isinstance(e, builtin), (name, type(e).__mro__)
        text = str(e)
        # one line, exactly what the command line prints after "shuffle-kit: error: "
        assert "\n" not in text and text == one_line(e), (name, text)
        assert not text.startswith(("'", '"')) and "[Errno" not in text, (name, text)
        for w in words:
            assert w in text, (name, w, text)
    assert not os.path.exists(tmp_path / "out")


def test_path_errors_keep_their_errno_and_pickle():
    import errno
    import pickle

    for cls, code in [(errors.InputNotFoundError, errno.ENOENT), (errors.NotADirectory, errno.ENOTDIR),
                      (errors.DiskFullError, errno.ENOSPC)]:
        e = cls("a message naming 'p'", "p")
        assert e.errno == code and e.filename == "p" and str(e) == "a message naming 'p'"
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is cls and (str(back), back.errno, back.filename) == (str(e), e.errno, e.filename)


@pytest.mark.parametrize("typed, names, near", [
    ("Dest", ["dest", "origin", "x"], ["dest"]),  # only the case differs: that one first
    ("dep_tme", ["dep_time", "arr_time", "x"], ["dep_time"]),
    ("ORIGN", ["origin", "dest"], ["origin"]),
    ("zzz", ["dest", "origin"], []),
])
def test_near_names_suggests_the_column_meant(typed, names, near):
    assert errors.near_names(typed, names) == near
    text = str(errors.missing_column(typed, names))
    assert ("did you mean" in text) == bool(near) and all(repr(n) in text for n in near)
