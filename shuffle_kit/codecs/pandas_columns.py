"""``PandasColumns``: DataFrames stored column by column, so a read can take a few columns.

Layout in the inner store, for a user key ``K`` (side keys are bytes keys starting with
``\\x00shuffle_kit.columns``, which user keys are not expected to use):

* ``manifest(K)``: one record per append: which columns it had, in order, and its
  column labels exactly;
* ``index(K)``: one record per append: its row index (a zero-column frame);
* ``column(K, label)``: one record per append that had that column.

Every append writes all of these in one store append, so they stay in step. Each record
is an exact frame record (see :mod:`shuffle_kit.frames`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from ..errors import ArgumentTypeError, CorruptionError
from ..frames import (
    concat_frames,
    index_from_json,
    index_to_json,
    label_to_json,
    tables_to_frame,
)
from ..stores.base import NO_LOCK, Record, Store, as_key_list, get_nested
from ..stores.keys import Key, encode_key
from . import header
from .arrow_ipc import decode_table, encode
from .encode import Encode

VERSION = 1
_TAG = header.tag(header.PANDAS_COLUMNS, VERSION)
_PREFIX = b"\x00shuffle_kit.columns."


def _manifest_key(key: Key) -> bytes:
    return _PREFIX + b"manifest\x00" + encode_key(key)


def _index_key(key: Key) -> bytes:
    return _PREFIX + b"index\x00" + encode_key(key)


def _column_key(key: Key, token: str) -> bytes:
    kb = encode_key(key)
    # the key's length first: no two (key, label) pairs share bytes
    return _PREFIX + b"column\x00" + len(kb).to_bytes(4, "little") + kb + token.encode("utf-8", "surrogatepass")


def _token(label: Any) -> str:
    # a label as canonical text keeping its type (1, 1.0 and '1' differ)
    return json.dumps(label_to_json(label), separators=(",", ":"), sort_keys=True)


class PandasColumns(Encode):
    """Append DataFrames column by column; ``get(key, columns=[...])`` reads only those.

    >>> from shuffle_kit import Dict
    >>> s = PandasColumns(Dict())
    >>> s.append({'x': pd.DataFrame({'a': [1], 'b': ['u']})})
    >>> s.append({'x': pd.DataFrame({'a': [2], 'b': ['v']})})
    >>> s.get('x', columns=['b'])['b'].tolist(), s.get('x').shape
    (['u', 'v'], (2, 2))
    """

    _codec_name = "PandasColumns"
    stores_frames = True

    def __init__(self, store: Store | str | None = None, *, partd: Store | None = None):
        super().__init__(encode, tables_to_frame, concat_frames, store, partd=partd)

    def __getstate__(self) -> dict[str, Any]:
        return {"store": self.store}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["store"])

    # -- writing --------------------------------------------------------------------------
    def _records_for(self, key: Key, df: Any) -> dict[Any, Any]:
        if not isinstance(df, pd.DataFrame):
            raise ArgumentTypeError(f"key {key!r:.80}: PandasColumns stores DataFrames, not {type(df).__name__}")
        if not df.columns.is_unique:
            raise ArgumentTypeError(f"key {key!r:.80}: PandasColumns needs unique column labels")
        try:
            tokens = [_token(label) for label in df.columns]
        except TypeError as e:
            raise ArgumentTypeError(f"key {key!r:.80}: column label not storable by PandasColumns: {e}") from None
        manifest = {"rows": len(df), "tokens": tokens, "labels": index_to_json(df.columns)}
        out: dict[Any, Any] = {
            _manifest_key(key): _TAG + json.dumps(manifest, separators=(",", ":")).encode(),
            _index_key(key): encode(pd.DataFrame(index=df.index)),
        }
        flat = df.set_axis(pd.RangeIndex(df.shape[1]), axis=1).set_axis(pd.RangeIndex(len(df)), axis=0)
        for i, token in enumerate(tokens):
            try:
                out[_column_key(key, token)] = encode(flat.iloc[:, [i]])
            except TypeError as e:
                raise ArgumentTypeError(f"key {key!r:.80}: column {df.columns[i]!r:.60}: {e}") from None
        return out

    def append(
        self, data: Mapping[Key, Any], lock: bool = True, *, batch_id: bytes | None = None, **kwargs: Any
    ) -> None:
        records: dict[Any, Any] = {}
        for key, df in data.items():
            records.update(self._records_for(key, df))
        self.store.append(records, lock=lock, batch_id=batch_id)

    def iset(self, key: Key, value: Any, lock: bool = True, **kwargs: Any) -> None:
        """Set ``key`` once; later calls do nothing until it is deleted."""
        with self.lock if lock else NO_LOCK:
            if self.store.get_records([_manifest_key(key)], lock=False)[0]:
                return
            self.store.append(self._records_for(key, value), lock=False)

    # -- reading --------------------------------------------------------------------------
    def _manifests(self, key: Key, records: list[Record]) -> list[dict]:
        out = []
        for r in records:
            body = header.payload(r, header.PANDAS_COLUMNS, key, VERSION)
            try:
                out.append(json.loads(bytes(body)))
            except ValueError as e:
                raise CorruptionError(f"key {key!r:.80}: damaged PandasColumns manifest ({e})") from e
        return out

    def _get_one(self, key: Key, columns: Sequence | None) -> pd.DataFrame:
        frames = self._pieces(key, columns)
        if not frames:
            return pd.DataFrame() if columns is None else pd.DataFrame(columns=list(columns))
        result = concat_frames(frames)
        if columns is not None:
            result = result[list(columns)]  # requested order; KeyError if never written
        return result

    def _pieces(self, key: Key, columns: Sequence | None) -> list[pd.DataFrame]:
        """The frame of each append to ``key`` (only ``columns`` if given), in append order."""
        (manifest_records,) = self.store.get_records([_manifest_key(key)], lock=False)
        manifests = self._manifests(key, manifest_records)
        if not manifests:
            (plain,) = self.store.get_records([key], lock=False)
            if plain:  # PandasColumns never writes the key itself: another codec did
                header.payload(plain[0], header.PANDAS_COLUMNS, key, VERSION)
            return []
        if columns is None:
            tokens: list[str] = []
            for m in manifests:
                tokens += [t for t in m["tokens"] if t not in tokens]
        else:
            tokens = [_token(c) for c in columns]
        wanted = [_index_key(key)] + [_column_key(key, t) for t in tokens]
        index_records, *column_records = self.store.get_records(wanted, lock=False)
        if len(index_records) != len(manifests):
            raise CorruptionError(f"key {key!r:.80}: PandasColumns index and manifest disagree")
        slot = {t: j for j, t in enumerate(tokens)}
        positions = [0] * len(tokens)  # next unread record of each column key
        frames = []
        for m, index_record in zip(manifests, index_records):
            index = self._decode(key, index_record).index
            # its own column order when reading everything (as pandas.concat sees it)
            order = m["tokens"] if columns is None else tokens
            have = {t: i for i, t in enumerate(m["tokens"])}
            parts, take = [], []
            for t in order:
                if t in have and t in slot:
                    j = slot[t]
                    parts.append(self._decode(key, column_records[j][positions[j]]))
                    positions[j] += 1
                    take.append(have[t])
            labels = index_from_json(m["labels"])
            if parts:
                frame = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
                frame = frame.set_axis(labels.take(take), axis=1)
            else:
                frame = pd.DataFrame(index=pd.RangeIndex(m["rows"]), columns=labels[:0])
            frames.append(frame.set_axis(index, axis=0))
        return frames

    def _decode(self, key: Key, record: Record) -> pd.DataFrame:
        try:
            return tables_to_frame([decode_table(record, key)])
        except (CorruptionError, ValueError, TypeError, OSError) as e:
            if isinstance(e, CorruptionError) or type(e).__name__ == "CodecError":
                raise
            raise CorruptionError(f"key {key!r:.80}: a PandasColumns record could not be read ({e})") from e

    def get(self, keys: Any, lock: bool = True, columns: Sequence | None = None, **kwargs: Any) -> Any:
        """The frame of each key (empty if never written); ``columns`` reads only those."""

        def fetch(flat: list) -> list:
            with self.lock if lock else NO_LOCK:
                return [self._get_one(k, columns) for k in flat]

        return get_nested(keys, fetch)

    def get_pieces(self, keys: Sequence[Key], lock: bool = True) -> list[list[pd.DataFrame]]:
        """The frame of each append to each of ``keys``, in append order."""
        with self.lock if lock else NO_LOCK:
            return [self._pieces(k, None) for k in keys]

    def iter_pieces(self, key: Key, max_bytes: int = 64 * 2**20, lock: bool = True) -> Iterator[pd.DataFrame]:
        """The frame of each append to ``key``, in append order (read together: a
        frame's columns are spread over keys of their own)."""
        yield from self.get_pieces([key], lock=lock)[0]

    def delete(self, keys: Any, lock: bool = True, **kwargs: Any) -> None:
        keys = as_key_list(keys)
        with self.lock if lock else NO_LOCK:
            doomed: list[Any] = []
            for k, records in zip(keys, self.store.get_records([_manifest_key(k) for k in keys], lock=False)):
                tokens = {t for m in self._manifests(k, records) for t in m["tokens"]}
                doomed += [_manifest_key(k), _index_key(k)] + [_column_key(k, t) for t in tokens]
            if doomed:
                self.store.delete(doomed, lock=False)

