"""One family of exceptions: every exception a user can meet lives in shuffle_kit.errors,
derives from ShuffleKitError and is importable from shuffle_kit itself."""

from __future__ import annotations

import importlib
import inspect
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
