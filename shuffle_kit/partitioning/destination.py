"""Where a partition job writes: checks of ``--out`` before any work (local: not inside an
input, writable, empty unless told otherwise; remote: see
:mod:`~shuffle_kit.partitioning.object_store`), and of the files an append adds to."""

from __future__ import annotations

import os
import time
from typing import Any

import pyarrow as pa

from ..errors import JobError, PathError, not_a_directory, one_line
from ..filesystems import Location, locate
from . import object_store
from .options import Options
from .writers import FORMATS


def locate_out(opts: Options, inputs: list[Any]) -> Location:
    """Where the output goes; checks of a remote ``--out`` (a local one: :func:`check_out`)."""
    try:
        target = locate(opts.out)
    except ValueError as e:
        raise JobError(f"--out: {one_line(e)}") from None
    if target.local:
        return target
    if opts.exists == "append":
        raise JobError(
            "--exists append: only for a local --out "
            f"(object stores have no rename that refuses to replace a file): {opts.out!r}"
        )
    inside = target.path.rstrip("/") + "/"
    for f in inputs:
        if f.location.fs.type_name == target.fs.type_name and (f.location.path + "/").startswith(inside):
            raise JobError(f"--out {opts.out!r} contains the input file {f.location.url!r}: choose another place")
    try:
        object_store.check(target, opts.exists)
    except ValueError as e:
        raise JobError(one_line(e)) from None
    return target


def check_out(opts: Options, paths: list[str]) -> str:
    out = os.path.abspath(opts.out)
    if os.path.lexists(out) and not os.path.isdir(out):
        raise JobError(f"--out {opts.out!r} exists and is not a directory")
    if os.path.isdir(out) and os.listdir(out) and opts.exists == "error":
        raise JobError(
            f"--out {opts.out!r} is not empty (use --exists overwrite to replace it, or append to add files)"
        )
    real = os.path.realpath(out)
    for p in paths:
        rp = os.path.realpath(p)
        if rp == real or rp.startswith(real + os.sep):
            raise JobError(f"--out {opts.out!r} contains the input file {p!r}: choose another directory")
    for given in opts.inputs:
        # a directory read whole (or a recursive glob) would read this output next time
        base = given.split("**")[0] if "**" in given else given
        if os.path.isdir(base):
            rb = os.path.realpath(base)
            if real == rb or real.startswith(rb.rstrip(os.sep) + os.sep):
                raise JobError(
                    f"--out {opts.out!r} is inside the input directory {given!r}: every later job over that "
                    "directory would read the output as input; choose a directory outside it"
                )
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise not_a_directory(parent, f"--out {opts.out!r}: its parent {parent!r}") from None
    except OSError as e:
        raise PathError(f"cannot create {parent!r}, the parent of --out {opts.out!r}: {e.strerror or one_line(e)}",
                        parent, e.errno) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise JobError(f"cannot write into {parent!r} (the parent of --out)")
    return out


def token() -> str:
    """A word for the names of one job's files: the time (so that appends list in the
    order they were made) and 48 random bits (so that two jobs in one second differ)."""
    import secrets

    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + secrets.token_hex(6)


def _comparable(t: pa.DataType) -> pa.DataType:
    """A type as a file stores it, whatever way Arrow holds it in memory."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    return t


def check_append(out: str, schema: pa.Schema, opts: Options) -> None:
    """Refuse to append to ``out`` unless it holds files like the new ones: the same format,
    hash files or the same key directories, and the same columns with the same types (of
    the first file found; CSV: the same names)."""
    from . import hive

    ext = FORMATS[opts.format]
    data = []
    for root, dirs, files in os.walk(out):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for f in sorted(files):
            if f.startswith((".", "_")):  # _SUCCESS, _common_metadata, hidden files
                continue
            path = os.path.join(root, f)
            if not f.endswith(ext):
                raise JobError(f"--exists append: {path!r} in --out is not a {opts.format} file like the new ones")
            data.append(os.path.relpath(path, out))
    if not data:
        raise JobError(f"--exists append: --out {opts.out!r} holds no {opts.format} files to append to")
    first = data[0]
    parts = first.split(os.sep)[:-1]
    want = [hive.encode_name(k) for k in opts.on] if opts.by_value else []
    names = [d.split("=", 1)[0] for d in parts]
    if names != want or any("=" not in d for d in parts):
        where = f"in directories {'/'.join(parts)!r}" if parts else "at the top of --out"
        shape = f"in hive directories {'/'.join(f'{n}=...' for n in want)}" if want else "at the top of --out"
        raise JobError(f"--exists append: --out holds files {where} (e.g. {first!r}); the new ones go {shape}")
    new = schema
    if opts.by_value and not opts.layout.keep_keys:
        new = pa.schema([f for f in schema if f.name not in opts.on])
    old = _file_schema(os.path.join(out, first))
    for field in new:
        if field.name not in old.names:
            raise JobError(
                f"--exists append: column {field.name!r} of the new rows is not in the files of --out (e.g. {first!r})"
            )
        if opts.format != "csv" and _comparable(old.field(field.name).type) != _comparable(field.type):
            raise JobError(
                f"--exists append: column {field.name!r} is {_comparable(field.type)} in the new rows but "
                f"{_comparable(old.field(field.name).type)} in the files of --out (e.g. {first!r})"
            )
    for name in old.names:
        if name not in new.names:
            raise JobError(
                f"--exists append: column {name!r} of the files in --out (e.g. {first!r}) is not in the new rows"
            )


def _file_schema(path: str) -> pa.Schema:
    """The columns of a file already in ``--out``, read as the job reads its inputs."""
    from ..shuffling.inputs import ReadOptions, open_source

    try:
        schema = open_source(path, read=ReadOptions(partitioning="none")).schema
    except (OSError, ValueError, pa.ArrowException) as e:
        raise JobError(f"--exists append: {one_line(e)} (a file in --out)") from None
    assert schema is not None  # (files have one)
    return schema
