"""Where a partition job writes: checks of ``--out`` before any work (on every filesystem:
not holding an input nor inside an input directory; local: writable, empty unless told
otherwise; remote: see :mod:`~shuffle_kit.partitioning.publish_objects`), and of the files an
append adds to."""

from __future__ import annotations

import os
import posixpath
import time
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import JobError, PathError, not_a_directory, one_line
from ..io.filesystems import Location, locate
from . import publish_objects
from .options import Options
from .writers import FORMATS, stored_type


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
        publish_objects.recover(target)
    except ValueError as e:
        raise JobError(one_line(e)) from None


def check_remote(target: Location, opts: Options) -> bool:
    """Checks of an object-store ``--out`` (see :func:`publish_objects.check`); whether it holds
    files already."""
    try:
        return publish_objects.check(target, opts.exists)
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
    if opts.by_value:
        _check_key_types(out, data, schema, old, opts)
    for field in new:
        if field.name not in old.names:
            raise JobError(
                f"--exists append: column {field.name!r} of the new rows is not in the files of --out (e.g. {first!r})"
            )
        was, now = stored_type(old.field(field.name).type), stored_type(field.type)
        if opts.format == "parquet" and pa.types.is_timestamp(now) and now.unit == "s":
            now = pa.timestamp("ms", now.tz)  # (Parquet has no seconds: pyarrow writes and reads them as ms)
        if opts.format != "csv" and was != now:
            raise JobError(
                f"--exists append: column {field.name!r} is {now} in the new rows but {was} in the files of --out "
                f"(e.g. {first!r})"
            )
    for name in old.names:
        if name not in new.names:
            raise JobError(
                f"--exists append: column {name!r} of the files in --out (e.g. {first!r}) is not in the new rows"
            )


def _check_key_types(out: str, files: list[str], schema: pa.Schema, old: pa.Schema, opts: Options) -> None:
    """Refuse new key values of another type than the old ones': their directories would
    be named otherwise (``k=1`` for 1, ``t=...05`` or ``t=...05.000000`` for one instant
    in seconds or microseconds), so one value would be in two directories. The old types
    are those the files record, or those of their key columns (``--keep-keys``); files
    that record none (CSV, other writers) have their directory names checked instead:
    each must be a value of the new type named as this job names it."""
    from . import by_value

    first = files[0]
    recorded = by_value.key_types(old) or {}
    for key in opts.on:
        new = str(stored_type(schema.field(key).type))
        was = recorded.get(key)
        if was is None and key in old.names and opts.format != "csv":  # (CSV: types guessed on reading)
            was = str(stored_type(old.field(key).type))
        if was is None:
            _check_key_names(out, files, key, schema.field(key).type, opts)
        elif was != new:
            raise JobError(
                f"--exists append: key column {key!r} is {new} in the new rows but {was} in --out (e.g. {first!r}): "
                "its values would be named otherwise, in other directories"
            )


def _check_key_names(out: str, files: list[str], key: str, type_: pa.DataType, opts: Options) -> None:
    """Refuse if a directory of key ``key`` in ``out`` does not name a value of type
    ``type_`` exactly as this job names it (see :func:`_check_key_types`)."""
    from urllib.parse import unquote

    from . import hive

    t = stored_type(type_)
    if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_fixed_size_binary(t):
        return  # any name is a string
    depth = list(opts.on).index(key)
    names = sorted({f.split(os.sep)[depth] for f in files})
    texts = {d: unquote(d.split("=", 1)[1]) for d in names}
    texts = {d: v for d, v in texts.items() if v != hive.NULL}
    if not texts:
        return
    try:
        again = hive.value_texts(pa.array(list(texts.values())).cast(t))
    except pa.ArrowNotImplementedError:
        return  # no type parses names as this one: nothing to check them with
    except (pa.ArrowInvalid, ValueError):  # some name is no value of the type: which one
        again = []
        for text in texts.values():
            try:
                again += hive.value_texts(pa.array([text]).cast(t))
            except (pa.ArrowInvalid, ValueError):
                again.append(None)
    for (d, text), named in zip(texts.items(), again):
        # (pyarrow names -0.0 "-0": readers take it as the 0.0 that this job names "0")
        if named != text and not (pa.types.is_floating(t) and text == "-0"):
            raise JobError(
                f"--exists append: key column {key!r} is {t} in the new rows, but the directory {d!r} of --out "
                f"does not name a {t} value as this job names it: its values would go to other directories"
            )


def _file_schema(path: str) -> pa.Schema:
    """The columns of a file already in ``--out``, read as the job reads its inputs."""
    from ..io.readers import ReadOptions, open_source

    try:
        schema = open_source(path, read=ReadOptions(partitioning="none")).schema
    except (OSError, ValueError, pa.ArrowException) as e:
        raise JobError(f"--exists append: {one_line(e)} (a file in --out)") from None
    assert schema is not None  # (files have one)
    return schema
