"""Where a partition job writes: checks of ``--out`` before any work (on every filesystem:
not holding an input nor inside an input directory; local: writable, empty unless told
otherwise; remote: see :mod:`~shuffle_kit.partitioning.object_store`), and of the files an
append adds to."""

from __future__ import annotations

import os
import posixpath
import time
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import JobError, one_line
from ..filesystems import Location, locate
from . import object_store
from .options import Options
from .writers import FORMATS


def locate_out(opts: Options, inputs: list[Any]) -> Location:
    """Where the output goes, refused (before anything is written or removed) when it holds
    an input file or lies inside an input directory, on any filesystem."""
    try:
        target = locate(opts.out)
    except ValueError as e:
        raise JobError(f"--out: {one_line(e)}") from None
    if not target.local and opts.exists == "append":
        raise JobError(
            "--exists append: only for a local --out "
            f"(object stores have no rename that refuses to replace a file): {opts.out!r}"
        )
    outside_inputs(target, opts, inputs)
    return target


def _normal(loc: Location) -> str:
    """A location's path in one spelling: symbolic links resolved (local), no repeated or
    trailing separators, no ``.`` or ``..``."""
    if loc.local:
        return os.path.realpath(loc.path)
    return posixpath.normpath("/" + loc.path.strip("/"))


def _same_fs(a: Location, b: Location) -> bool:
    return a.local == b.local and a.fs.type_name == b.fs.type_name


def _within(path: str, base: str, sep: str) -> bool:
    return path == base or path.startswith(base.rstrip(sep) + sep)


def outside_inputs(target: Location, opts: Options, inputs: list[Any]) -> None:
    """Refuse an ``--out`` that holds an input file, or lies inside an input directory (or
    below a ``**`` glob's fixed part): every later job over that directory would read the
    output back as input. Paths are compared on the same filesystem, normalised."""
    sep = os.sep if target.local else "/"
    out = _normal(target)
    for f in inputs:
        if _same_fs(f.location, target) and _within(_normal(f.location), out, sep):
            raise JobError(f"--out {opts.out!r} contains the input file {f.location.url!r}: choose another place")
    for given in opts.inputs:
        base = given.split("**")[0] if "**" in given else given
        try:
            loc = locate(base)
            if not _same_fs(loc, target) or loc.info().type != pafs.FileType.Directory:
                continue
        except (ValueError, OSError):
            continue
        if _within(out, _normal(loc), sep):
            raise JobError(
                f"--out {opts.out!r} is inside the input directory {given!r}: every later job over that "
                "directory would read the output as input; choose a place outside it"
            )


def recover(target: Location) -> None:
    """Finish or take back what jobs killed while publishing to the object store ``target``
    left (before any check can refuse this job)."""
    try:
        object_store.recover(target)
    except ValueError as e:
        raise JobError(one_line(e)) from None


def check_remote(target: Location, opts: Options) -> bool:
    """Checks of an object-store ``--out`` (see :func:`object_store.check`); whether it holds
    files already."""
    try:
        return object_store.check(target, opts.exists)
    except ValueError as e:
        raise JobError(one_line(e)) from None


def check_out(opts: Options) -> str:
    """Checks of a local ``--out`` (after :func:`locate_out`); its absolute path."""
    out = os.path.abspath(opts.out)
    if os.path.lexists(out) and not os.path.isdir(out):
        raise JobError(f"--out {opts.out!r} exists and is not a directory")
    if os.path.isdir(out) and os.listdir(out) and opts.exists == "error":
        raise JobError(
            f"--out {opts.out!r} is not empty (use --exists overwrite to replace it, or append to add files)"
        )
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise JobError(f"cannot create the parent of --out {opts.out!r}: {one_line(e)}") from None
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
