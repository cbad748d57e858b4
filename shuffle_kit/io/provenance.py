"""How a file of the partition job was partitioned, recorded in the file itself.

Each Parquet file ``shuffle-kit partition`` writes carries in its key-value metadata (an
Arrow IPC file: in its schema's metadata) one entry under :data:`KEY`,
``shuffle_kit.partitioning``, a JSON object::

    {"version": 1, "partitioner": "hash", "hash": 1, "seed": 0,
     "on": ["user"], "npartitions": 16, "partition": 3, "rows": 52114}

- ``version``: of this record; a reader takes a record of another version as none.
- ``partitioner``: ``"hash"``: every row's key hashes to ``partition`` modulo
  ``npartitions`` by the documented hash of :mod:`shuffle_kit.kernels.hashing`, version
  ``hash``, seed ``seed`` (the job's is always seed 0, as :func:`shuffle_kit.shuffle`'s: the
  same key columns of the same values land in the same partition of both). ``"range"``
  (``by_range``): the rows of one key range of a sample of that run; ranges of two runs do
  not match, so ``hash`` and ``seed`` are null.
- ``on``: the key columns in the order they were hashed (a hash of several columns
  depends on their order); ``npartitions`` and ``partition``: the partition count and this
  file's partition.
- ``rows``: the file's rows, written into a Parquet footer when the file is closed (pyarrow
  17 and later; else, and in Arrow IPC files, whose schema is written first, null).

Files by value (hive directories) and CSV files carry none. A writer drops the key from
every schema it is given (a schema copied from an input that carries one would otherwise
describe the wrong file), and a reader believes a record only in a file named as the job
names partition ``partition``'s files (``part-00003.parquet``, ``part-00003-<token>-00001.arrow``,
see :func:`named_for`): a tool that rewrites rows into files of its own keeps the schema's
metadata but names them otherwise, and a copy of all the rows of a dataset into one file has
another number of rows than the file whose record it copied. A reader of the rows checks
that each holds the partition its record names (:class:`~shuffle_kit.io.partitioned.PartitionedFiles`).

>>> record = Provenance("hash", ("user",), 16, 3, hash_version=1, seed=0)
>>> Provenance.from_metadata(record.metadata()) == record
True
>>> Provenance.from_metadata({b"shuffle_kit.partitioning": b"not json"}) is None
True
>>> named_for("part-00003-a1b2-00000.parquet", 3), named_for("part-3.parquet", 3)
(True, False)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

KEY = b"shuffle_kit.partitioning"
VERSION = 1
PARTITIONERS = ("hash", "range")
# the job's names of partition files: part-NNNNN, then a token and/or a series number
_NAME = re.compile(r"^part-(\d{5,})(?:-[A-Za-z0-9]+)*\.(?:parquet|arrow)$")


@dataclass(frozen=True)
class Provenance:
    """One file's record: how the rows of its run were partitioned, and its partition."""

    partitioner: str
    on: tuple[str, ...]
    npartitions: int
    partition: int
    hash_version: int | None = None
    seed: int | None = None
    rows: int | None = None

    def of_partition(self, partition: int) -> Provenance:
        """The same run's record for the file of ``partition``."""
        return replace(self, partition=partition)

    def with_rows(self, rows: int) -> Provenance:
        """This record for a file of ``rows`` rows."""
        return replace(self, rows=rows)

    def metadata(self) -> dict[bytes, bytes]:
        """The record as the one key-value pair a file carries."""
        record = {"version": VERSION, "partitioner": self.partitioner, "hash": self.hash_version,
                  "seed": self.seed, "on": list(self.on), "npartitions": self.npartitions,
                  "partition": self.partition, "rows": self.rows}
        return {KEY: json.dumps(record, separators=(",", ":")).encode()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[bytes, bytes] | None) -> Provenance | None:
        """The record in a file's key-value ``metadata``; None when it has none, or one
        that is malformed or of another version."""
        raw = (metadata or {}).get(KEY)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            ok = record["version"] == VERSION and record["partitioner"] in PARTITIONERS
            on, n, p = record["on"], record["npartitions"], record["partition"]
            ok = ok and isinstance(on, list) and all(isinstance(c, str) for c in on) and bool(on)
            ok = ok and _whole(n) and n >= 1 and _whole(p) and 0 <= p < n
            hash_version, seed, rows = record["hash"], record["seed"], record.get("rows")
            ok = ok and all(v is None or _whole(v) and v >= 0 for v in (hash_version, seed, rows))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return cls(record["partitioner"], tuple(on), n, p, hash_version, seed, rows) if ok else None

    def same_run_layout(self, other: Provenance) -> bool:
        """Whether ``other`` partitions rows the way this record does (its partition and
        rows aside)."""
        return replace(other, partition=self.partition, rows=self.rows) == self


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def named_for(name: str, partition: int) -> bool:
    """Whether a file named ``name`` is named as the partition job names a file of
    ``partition`` (Parquet or Arrow IPC)."""
    match = _NAME.match(name)
    return match is not None and int(match.group(1)) == partition and match.group(1) == f"{partition:05d}"


def without_record(schema: pa.Schema) -> pa.Schema:
    """``schema`` without a record in its metadata (the same object if it has none).

    >>> s = pa.schema({'k': pa.int64()}, metadata={KEY: b'{}', b'pandas': b'{}'})
    >>> without_record(s).metadata
    {b'pandas': b'{}'}
    """
    if not schema.metadata or KEY not in schema.metadata:
        return schema
    rest = {k: v for k, v in schema.metadata.items() if k != KEY}
    return schema.with_metadata(rest) if rest else schema.remove_metadata()


def recorded_keys(on: Sequence[Any]) -> tuple[str, ...] | None:
    """Key columns ``on`` as a record names them, or None if one is not a string (a
    record names columns, not index levels of other types)."""
    return tuple(on) if on and all(isinstance(c, str) for c in on) else None
