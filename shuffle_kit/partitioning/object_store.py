"""Publishing a finished output to a filesystem without atomic renames (S3, GCS, Azure, and
the fsspec ones): a staging prefix, server-side copies, and a ``_SUCCESS`` marker.

The job writes its files on the local disk (``--tmp``) as for a local ``--out``; then:

1. every file is uploaded under ``OUT/_temporary/<job>/``: readers that follow the Hadoop
   and pyarrow convention of skipping names that start with ``_`` do not see it, and a
   failure here leaves ``OUT`` as it was;
2. ``OUT/_SUCCESS`` is removed, then, with ``exists="overwrite"``, the old files;
3. each file is copied to its place (a server-side copy on S3 and GCS: no data passes
   through this machine again);
4. ``OUT/_SUCCESS`` is written, and ``OUT/_temporary/`` removed.

Steps 2-3 are not atomic: a reader that lists ``OUT`` meanwhile can see part of the new
files (and, when overwriting, none of the old ones); a complete output is one with a
``_SUCCESS`` marker, as Spark and Hadoop mark theirs. A job killed during step 1 leaves
``OUT/_temporary/``: the next job writing to ``OUT`` removes it, so two jobs must not write
to the same ``OUT`` at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pyarrow.fs as pafs

from ..filesystems import Location
from ..limits import executor

STAGING = "_temporary"
MARKER = "_SUCCESS"


def _objects(out: Location) -> list[str]:
    """The files below ``out``, other than unfinished uploads."""
    try:
        infos = out.fs.get_file_info(pafs.FileSelector(out.path, recursive=True, allow_not_found=True))
    except OSError as e:
        raise ValueError(f"cannot list --out {out.url!r}: {' '.join(str(e).split())}") from None
    staging = out.join(STAGING).path + "/"
    return [i.path for i in infos if i.type == pafs.FileType.File and not i.path.startswith(staging)]


def check(out: Location, exists: str) -> None:
    """Refuse ``out`` before any work when it cannot be written, is a file, or holds files
    and ``exists`` is ``"error"``; remove what a killed job left under its staging prefix."""
    if not out.path.strip("/"):
        raise ValueError(f"--out {out.url!r} names no bucket or directory")
    try:
        kind = out.info().type
        probe = out.join(STAGING, f"probe-{os.getpid()}-{time.time_ns()}")
        with out.fs.open_output_stream(probe.path):  # (a missing bucket, or no right to write)
            pass
        out.fs.delete_file(probe.path)
    except OSError as e:
        raise ValueError(f"cannot write to --out {out.url!r}: {' '.join(str(e).split())}") from None
    if kind == pafs.FileType.File:
        raise ValueError(f"--out {out.url!r} exists and is not a directory")
    if kind == pafs.FileType.Directory and exists == "error" and _objects(out):
        raise ValueError(f"--out {out.url!r} is not empty (use --exists overwrite to replace it)")
    _remove_dir(out.join(STAGING))


def _remove_dir(loc: Location) -> None:
    if loc.info().type == pafs.FileType.Directory:
        loc.fs.delete_dir(loc.path)


def publish(staging: str, out: Location, exists: str) -> None:
    """Put the files of the local directory ``staging`` at ``out`` (see the module's steps)."""
    stage = out.join(STAGING, os.path.basename(staging))
    names = sorted(
        os.path.relpath(os.path.join(root, f), staging).replace(os.sep, "/")
        for root, _, files in os.walk(staging) for f in files
    )
    try:
        pafs.copy_files(staging, stage.path, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=out.fs, use_threads=True)
    except BaseException:
        _remove_dir(stage)
        raise
    marker = out.join(MARKER)
    if marker.info().type == pafs.FileType.File:
        out.fs.delete_file(marker.path)
    if exists == "overwrite":
        new = {out.join(name).path for name in names}
        _each(out.fs.delete_file, [p for p in _objects(out) if p not in new])
    _each(lambda name: out.fs.copy_file(stage.join(name).path, out.join(name).path), names)
    with out.fs.open_output_stream(marker.path):
        pass
    _remove_dir(out.join(STAGING))


def _each(do: Callable[[str], object], items: list[str]) -> None:
    """``do`` to every item: requests that wait on the network, so as many at once as
    Arrow's own I/O pool runs, whatever the job's CPU threads."""
    import pyarrow as pa

    with executor(max(1, pa.io_thread_count()), "shuffle-kit-publish") as pool:
        for _ in pool.map(do, items):
            pass
