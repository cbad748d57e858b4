"""Where data lives: local paths and URLs resolved to a ``pyarrow.fs`` filesystem.

A location is what the user wrote (``data/in``, ``file:///data/in``, ``s3://bucket/in``,
``gs://...``, ``abfs://...``, ``hdfs://...``) resolved once to a filesystem and a path on it.
pyarrow's own filesystems are tried first; a scheme pyarrow has none for goes to fsspec when
fsspec is installed (``memory://``, ``gcs`` variants, ``sftp://`` ...). Credentials and
endpoints are found the way those libraries find them (``AWS_*`` environment variables,
``~/.aws``, instance roles, ``GOOGLE_APPLICATION_CREDENTIALS``, URL query options such as
``?endpoint_override=host:port&scheme=http``). A scheme nothing can open is an error, never
a local folder named after the URL.

>>> loc = locate('/tmp/data')
>>> loc.local, loc.path, loc.join('a', 'b.parquet').path
(True, '/tmp/data', '/tmp/data/a/b.parquet')
>>> try:
...     locate('nosuch://bucket/x')
... except ValueError as e:
...     print(str(e).replace(' (', '\\n('))
cannot open 'nosuch://bucket/x': no filesystem handles 'nosuch://'
(pyarrow opens s3://, gs://, abfs://, hdfs:// and file://; fsspec, when installed, opens more)
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import JobError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme(text: str) -> str | None:
    """The URL scheme of ``text`` (``'s3'``), or None for a plain path.

    >>> scheme('s3://b/k'), scheme('data/x.parquet')
    ('s3', None)
    """
    m = _SCHEME.match(text)
    return m.group(1).lower() if m else None


@dataclass(frozen=True)
class Location:
    """A path on a filesystem, and the text the user gave for it (used in messages)."""

    fs: pafs.FileSystem
    path: str
    url: str

    @property
    def local(self) -> bool:
        """Whether the path is on this machine's own filesystem (renames are atomic there)."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def join(self, *parts: str) -> Location:
        """The location of ``parts`` below this one (a URL's query options are dropped from
        the text, which is only shown in messages; the filesystem keeps them)."""
        sep = os.sep if self.local else "/"
        path = sep.join([self.path.rstrip(sep), *parts]) if self.path else sep.join(parts)
        url = "/".join([self.url.split("?")[0].rstrip("/"), *parts])
        return Location(self.fs, path, url)

    @property
    def name(self) -> str:
        """The last part of the path (a directory's or file's own name)."""
        return posixpath.basename(self.path.rstrip("/"))

    def info(self) -> pafs.FileInfo:
        """What is there: a file, a directory (or an object prefix) or nothing."""
        return self.fs.get_file_info(self.path)


def locate(text: str | os.PathLike) -> Location:
    """Resolve a path or URL (raise ValueError, naming it, if no filesystem can open it)."""
    text = os.fspath(text)
    kind = scheme(text)
    if kind is None:
        return Location(pafs.LocalFileSystem(), os.path.abspath(text), text)
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except (pa.ArrowInvalid, OSError) as e:
        if "Unrecognized filesystem type" not in str(e) and "unknown scheme" not in str(e).lower():
            raise JobError(f"cannot open {text!r}: {' '.join(str(e).split())}") from None
        return _fsspec_location(text, kind)
    return Location(fs, path, text)


def _fsspec_location(text: str, kind: str) -> Location:
    try:
        import fsspec
    except ImportError:
        fsspec = None
    if fsspec is not None and kind in fsspec.available_protocols():
        try:
            fs, path = fsspec.core.url_to_fs(text)
        except (ImportError, ValueError) as e:  # a protocol whose package is not installed
            raise JobError(f"cannot open {text!r}: {' '.join(str(e).split())}") from None
        return Location(pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path, text)
    raise JobError(
        f"cannot open {text!r}: no filesystem handles {kind + '://'!r} (pyarrow opens s3://, gs://, "
        f"abfs://, hdfs:// and file://; fsspec, when installed, opens more)"
    )
