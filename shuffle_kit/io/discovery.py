"""Finding input files: paths, globs, directories and URLs become a list of files, each with
its format and the hive partition values in its directory names.

Listing works on any ``pyarrow.fs`` filesystem (see :mod:`shuffle_kit.io.filesystems`), so
``s3://bucket/sales/`` is read like ``sales/``. Inside a directory (or below a glob's fixed
prefix), files and directories whose names start with ``.`` or ``_`` are skipped, as pyarrow
and Spark skip them (``_SUCCESS``, ``_temporary/``, ``.part-0.crc``). Hive names
(``country=DE/part-0.parquet``) below that directory become columns, parsed and typed by
pyarrow's own ``HivePartitioning.discover`` (so ``year=2024`` is an int32 column, ``null``
values are written ``__HIVE_DEFAULT_PARTITION__``); ``partitioning="none"`` turns that off.
A file named directly has no partition values.

>>> import os, tempfile, pyarrow as pa, pyarrow.parquet as pq
>>> d = tempfile.mkdtemp()
>>> os.makedirs(f'{d}/country=DE'); pq.write_table(pa.table({'x': [1]}), f'{d}/country=DE/p.parquet')
>>> found = discover([d])
>>> [(os.path.relpath(f.location.path, d), f.format, f.partition) for f in found.files]
[('country=DE/p.parquet', 'parquet', (('country', 'DE'),))]
>>> found.partition_schema.names
['country']
>>> import shutil; shutil.rmtree(d)
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import InputNotFoundError, JobError
from .filesystems import Location, locate

PARQUET = (".parquet", ".parq", ".pq")
CSV = (".csv", ".tsv", ".csv.gz", ".csv.bz2", ".tsv.gz")
ARROW = (".arrow", ".feather", ".ipc", ".arrows")
PARTITIONINGS = ("hive", "none")
NULL = "__HIVE_DEFAULT_PARTITION__"  # a null key's directory name (hive's, pyarrow's)


@dataclass(frozen=True)
class InputFile:
    """One input file: where it is, its format, size in bytes and hive partition values."""

    location: Location
    format: str
    size: int
    partition: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Inputs:
    """The files found for a job, in a fixed order, and the columns their directories add."""

    files: list[InputFile]
    partition_schema: pa.Schema


def file_format(path: str) -> str:
    """``parquet``, ``csv`` or ``arrow``, from the file's name (or raise ValueError)."""
    low = path.lower()
    if low.endswith(PARQUET):
        return "parquet"
    if low.endswith(CSV):
        return "csv"
    if low.endswith(ARROW):
        return "arrow"
    raise JobError(
        f"cannot tell the format of {path!r} from its name; expected one of "
        f"{', '.join(PARQUET + CSV + ARROW)}"
    )


def _has_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split("/"))


def _glob_match(pattern: list[str], parts: list[str]) -> bool:
    """Whether path segments ``parts`` match glob segments ``pattern`` (``**``: any number),
    as the shell and :mod:`glob` match: a hidden name only where the pattern names a dot.

    >>> _glob_match(['**', '*.parquet'], ['a', 'b', 'x.parquet']), _glob_match(['*'], ['.x'])
    (True, False)
    """
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_glob_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1)
                   if not any(p.startswith(".") for p in parts[:i]))
    if not parts or (parts[0].startswith(".") and not pattern[0].startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], pattern[0]) and _glob_match(pattern[1:], parts[1:])


def _listing(loc: Location) -> tuple[str | None, list[pafs.FileInfo]]:
    """(base directory, files) for one glob or directory, (None, [file]) for a file; raise
    if nothing is there."""
    fs, path = loc.fs, loc.path
    sep = os.sep if loc.local else "/"
    if _has_glob(path):
        parts = path.split(sep)
        fixed = next(i for i, p in enumerate(parts) if _has_glob(p))
        base = sep.join(parts[:fixed]) or sep
        pattern = parts[fixed:]
        try:  # (one level is enough for a pattern of one name without **)
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=len(pattern) > 1 or "**" in pattern))
        except FileNotFoundError:
            infos = []
        found = [
            i for i in infos
            if i.type == pafs.FileType.File
            and _glob_match(pattern, _relative(i.path, base, sep).split(sep))
        ]
        if not found:
            raise InputNotFoundError(f"no file matches {loc.url!r}", loc.url)
        return base, found
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return None, [info]
    if info.type != pafs.FileType.Directory:
        raise InputNotFoundError(f"no such input file: {loc.url!r}", loc.url)
    found = [
        i for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))
        if i.type == pafs.FileType.File and not _hidden(_relative(i.path, path, sep).replace(sep, "/"))
    ]
    if not found:
        raise InputNotFoundError(f"directory {loc.url!r} holds no data files", loc.url)
    return path, found


def _relative(path: str, base: str, sep: str) -> str:
    base = base.rstrip(sep)
    return path[len(base) + 1:] if base and path.startswith(base + sep) else path.lstrip(sep)


def _hive_keys(fs: pafs.FileSystem, base: str, paths: list[str], fmt: str) -> tuple[pa.Schema, list[dict]]:
    """pyarrow's hive partition fields for ``paths`` below ``base``, and each file's values."""
    import pyarrow.dataset as ds

    formats = {"parquet": ds.ParquetFileFormat, "csv": ds.CsvFileFormat, "arrow": ds.IpcFileFormat}

    def make(partitioning: Any) -> Any:
        options = ds.FileSystemFactoryOptions(partition_base_dir=base)
        if isinstance(partitioning, ds.Partitioning):
            options.partitioning = partitioning
        else:
            options.partitioning_factory = partitioning
        factory = ds.FileSystemDatasetFactory(fs, paths, formats[fmt](), options)
        # (permissive: a file that holds the column itself, as int64, beside a directory's int32)
        return factory.finish(factory.inspect(promote_options="permissive"))

    try:
        dataset = make(ds.HivePartitioning.discover(infer_dictionary=False))
    except pa.ArrowInvalid as e:
        if "No non-null segments" not in str(e):
            raise
        dataset = make(ds.HivePartitioning(_all_null_schema(base, paths)))
    keys = {f.path: ds.get_partition_keys(f.partition_expression) for f in dataset.get_fragments()}
    schema = dataset.partitioning.schema if dataset.partitioning is not None else pa.schema([])
    return schema, [keys.get(p, {}) for p in paths]


def _all_null_schema(base: str, paths: list[str]) -> pa.Schema:
    """The hive fields of ``paths`` when one of them holds only nulls, where pyarrow's
    discovery gives up: that one null-typed, the others typed by pyarrow's rule (int32 when
    every value is one, else string)."""
    from urllib.parse import unquote

    values: dict[str, list[str]] = {}
    for path in paths:
        for part in _relative(path, base, "/").split("/")[:-1]:
            name, eq, value = part.partition("=")
            if eq:
                values.setdefault(unquote(name), []).append(unquote(value))

    def typed(seen: list[str]) -> pa.DataType:
        known = [v for v in seen if v != NULL]
        if not known:
            return pa.null()
        if all(v.lstrip("-").isdigit() and -2**31 <= int(v) < 2**31 for v in known):
            return pa.int32()
        return pa.string()

    return pa.schema([(name, typed(seen)) for name, seen in values.items()])


def discover(inputs: Sequence[str | os.PathLike], partitioning: str = "hive") -> Inputs:
    """The files of ``inputs`` (paths, globs, directories, URLs) in the order given, each
    directory's and glob's files sorted; raise FileNotFoundError / ValueError naming the
    input that has none or cannot be read."""
    if partitioning not in PARTITIONINGS:
        raise JobError(f"partitioning must be one of {', '.join(PARTITIONINGS)}, not {partitioning!r}")
    files: list[InputFile] = []
    fields: dict[str, tuple[pa.Field, str]] = {}
    for item in inputs:
        loc = locate(item)
        base, infos = _listing(loc)
        infos = sorted(infos, key=lambda i: i.path)
        sep = os.sep if loc.local else "/"
        formats = [file_format(i.path) for i in infos]
        values: list[dict] = [{} for _ in infos]
        if partitioning == "hive" and base is not None and any("=" in _relative(i.path, base, sep) for i in infos):
            for fmt in sorted(set(formats)):
                chosen = [k for k, f in enumerate(formats) if f == fmt]
                schema, found = _hive_keys(loc.fs, base, [infos[k].path for k in chosen], fmt)
                for k, v in zip(chosen, found):
                    values[k] = v
                for field in schema:
                    seen = fields.setdefault(field.name, (field, loc.url))
                    if not seen[0].type.equals(field.type):
                        raise JobError(
                            f"the partition column {field.name!r} is {seen[0].type} in {seen[1]!r} "
                            f"but {field.type} in {loc.url!r}"
                        )
        for info, fmt, v in zip(infos, formats, values):
            url = loc.url if info.path == loc.path else _url_of(loc, info.path)
            files.append(InputFile(Location(loc.fs, info.path, url), fmt, info.size or 0, tuple(v.items())))
    return Inputs(files, pa.schema([f for f, _ in fields.values()]))


def _url_of(loc: Location, path: str) -> str:
    """How to name a found file in messages: a path as relative as the input was, or a URL."""
    if loc.local:
        return path if os.path.isabs(loc.url) else os.path.relpath(path)
    return f"{loc.url.split('://')[0]}://{path.lstrip('/')}"
