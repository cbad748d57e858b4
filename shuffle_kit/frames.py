"""Exact conversion between pandas DataFrames and Arrow tables, and ``concat`` of pieces.

``frame_to_table`` turns a DataFrame into an Arrow table that ``tables_to_frame``
turns back into an equal DataFrame: same values, dtypes, index and column labels.
pyarrow's own pandas metadata restores most dtypes exactly; this module fixes what
it does not (checked dtype by dtype against pandas 3):

* column labels of any type and duplicates: kept in our own metadata, the Arrow
  names are the labels as strings when those are unique, else positions;
* the row index: a RangeIndex is metadata only; other indexes become
  ``__index_level_<i>__`` columns (pyarrow's convention) converted like data;
* ``pd.ArrowDtype`` columns (lists, structs, decimals, ...): wrapped back as is;
* object columns: str/bytes/None values go as Arrow strings/binary and come back as
  objects; anything else is pickled value by value (the only use of pickle:
  reading it trusts whoever wrote the store; ``pickled_fields`` names those columns,
  so that the shuffle's hash reads the objects, not their pickles);
* ``string[python]``: Arrow restores the pyarrow storage, so the dtype is reset;
* sparse columns: stored dense, with the fill value in the metadata;
* DatetimeIndex/TimedeltaIndex frequency.

Our metadata lives in two schema metadata entries: ``shuffle_kit.schema`` (JSON, equal
for pieces with the same layout, which may then be converted in one go) and
``shuffle_kit.piece`` (JSON, per piece: row count, RangeIndex bounds), made and read only
through :class:`Piece` (:func:`piece_of`, :func:`with_piece`): a piece of a frame whose
RangeIndex was dropped reads back numbered from where its piece says.

>>> import pandas as pd
>>> df = pd.DataFrame({1: [1.5, 2.5], 'b': pd.Categorical(['x', 'y'])}, index=['r', 's'])
>>> back = tables_to_frame([frame_to_table(df), frame_to_table(df)])
>>> back.equals(pd.concat([df, df])), list(back.columns)
(True, [1, 'b'])
"""

from __future__ import annotations

import base64
import functools
import json
import math
import pickle
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import ArgumentTypeError

SCHEMA_KEY = b"shuffle_kit.schema"
PIECE_KEY = b"shuffle_kit.piece"
PANDAS_KEY = b"pandas"
INDEX_NAME = "__index_level_{}__"
FORMAT = 1

_STRINGISH = (pa.string(), pa.large_string(), pa.binary(), pa.large_binary(), pa.null())


# -- piece metadata ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """What a table made by :func:`frame_to_table` says about its own rows: how many, and
    the RangeIndex they read back with (``start``, ``stop``, ``step``; None when the index
    is stored as columns).

    >>> t = with_piece(frame_to_table(pd.DataFrame({'a': [1, 2]})), Piece.numbered(2, 10))
    >>> piece_of(t), tables_to_frame([t]).index
    (Piece(rows=2, start=10, stop=12, step=1), RangeIndex(start=10, stop=12, step=1))
    """

    rows: int
    start: int | None = None
    stop: int | None = None
    step: int | None = None

    @classmethod
    def numbered(cls, rows: int, start: int) -> Piece:
        """``rows`` rows numbered ``start, start + 1, ...``."""
        return cls(rows, start, start + rows, 1)

    @classmethod
    def of_index(cls, rows: int, index: pd.Index) -> Piece:
        """``rows`` rows with ``index``: its bounds if it is a RangeIndex."""
        if type(index) is pd.RangeIndex:
            return cls(rows, index.start, index.stop, index.step)
        return cls(rows)

    @property
    def ranged(self) -> bool:
        return self.start is not None

    def range_index(self, name: Any = None) -> pd.RangeIndex:
        return pd.RangeIndex(self.start, self.stop, self.step, name=name)

    def encode(self) -> bytes:
        if self.start is None or self.stop is None or self.step is None:
            return b'{"rows":%d}' % self.rows
        return b'{"rows":%d,"start":%d,"stop":%d,"step":%d}' % (self.rows, self.start, self.stop, self.step)

    @classmethod
    def decode(cls, raw: bytes) -> Piece:
        j = json.loads(raw)
        return cls(j["rows"], j.get("start"), j.get("stop"), j.get("step"))


def piece_of(table: pa.Table) -> Piece | None:
    """The piece metadata of ``table`` (None for a table not made by :func:`frame_to_table`)."""
    raw = (table.schema.metadata or {}).get(PIECE_KEY)
    return None if raw is None else Piece.decode(raw)


def with_piece(table: pa.Table, piece: Piece) -> pa.Table:
    """``table`` with ``piece`` as its piece metadata (the data is shared, not copied)."""
    meta = dict(table.schema.metadata or {})
    meta[PIECE_KEY] = piece.encode()
    return table.replace_schema_metadata(meta)


# -- labels and names as JSON ------------------------------------------------------------
def label_to_json(x: Any) -> Any:
    """JSON for a column/index name, keeping its type (1, 1.0, '1', True, ('a', 1) differ).

    >>> label_to_json(1), label_to_json('1'), label_to_json(('a', 1.5))
    (1, '1', {'t': ['a', 1.5]})
    """
    if x is None or isinstance(x, (str, bool)):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, np.bool_):
        return int(x) if isinstance(x, int) else {"np": str(np.asarray(x).dtype), "v": int(x)}
    if isinstance(x, np.bool_):
        return {"np": "bool", "v": bool(x)}
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if not math.isfinite(v):
            return {"f": repr(v)}
        return v if isinstance(x, float) else {"np": str(np.asarray(x).dtype), "v": v}
    if isinstance(x, tuple):
        return {"t": [label_to_json(v) for v in x]}
    if isinstance(x, bytes):
        return {"b": x.hex()}
    raise ArgumentTypeError(f"name {x!r:.60} of type {type(x).__name__} cannot be stored")


def _label_from_json(j: Any) -> Any:
    if not isinstance(j, dict):
        return j
    if "t" in j:
        return tuple(_label_from_json(v) for v in j["t"])
    if "f" in j:
        return float(j["f"])
    if "b" in j:
        return bytes.fromhex(j["b"])
    return np.dtype(j["np"]).type(j["v"])


def _arrow_names(labels: pd.Index, index_names: list[str]) -> list[str]:
    # Readable names for as_arrow users when the labels allow it; positions otherwise.
    names = [str(x) for x in labels]
    if len(set(names)) != len(names) or set(names) & set(index_names):
        names = [f"__column_{i}__" for i in range(len(labels))]
    return names


# -- the column Index, which may be anything -----------------------------------------------
def index_to_json(idx: pd.Index) -> dict:
    """JSON for a column Index of any kind, read back exactly by :func:`index_from_json`.

    >>> idx = pd.Index([1, 'a', 2.5], name='c')
    >>> index_from_json(index_to_json(idx)).equals(idx)
    True
    """
    if type(idx) is pd.RangeIndex:
        return {"kind": "range", "start": idx.start, "stop": idx.stop, "step": idx.step,
                "name": label_to_json(idx.name)}
    if (
        not isinstance(idx, pd.MultiIndex)
        and idx.dtype == pd.StringDtype(na_value=np.nan)
        and idx.dtype.storage == "pyarrow"
        and not idx.hasnans
        and (idx.name is None or isinstance(idx.name, str))
    ):  # the common case, cheap
        return {"kind": "str", "labels": idx.tolist(), "name": idx.name}
    frame = pd.DataFrame({i: idx.get_level_values(i) for i in range(idx.nlevels)})
    frame.index = pd.RangeIndex(len(idx))
    frame.columns = pd.RangeIndex(idx.nlevels)  # a RangeIndex ends the recursion
    ipc = _table_bytes(frame_to_table(frame))
    return {
        "kind": "frame",
        "multi": isinstance(idx, pd.MultiIndex),
        "names": [label_to_json(n) for n in idx.names],
        "freq": _freq(idx),
        "ipc": base64.b64encode(ipc).decode("ascii"),
    }


def index_from_json(j: dict) -> pd.Index:
    """The Index of :func:`index_to_json`."""
    kind = j["kind"]
    if kind == "range":
        return pd.RangeIndex(j["start"], j["stop"], j["step"], name=_label_from_json(j["name"]))
    if kind == "str":
        return pd.Index(j["labels"], dtype=pd.StringDtype(na_value=np.nan), name=j["name"])
    table = pa.ipc.open_stream(pa.py_buffer(base64.b64decode(j["ipc"]))).read_all()
    frame = tables_to_frame([table])
    return _levels_to_index([frame.iloc[:, i] for i in range(frame.shape[1])], j)


def _freq(idx: pd.Index) -> str | None:
    freq = getattr(idx, "freq", None)
    return None if freq is None or isinstance(idx, pd.PeriodIndex) else idx.freqstr


def _levels_to_index(levels: list[pd.Series], j: dict) -> pd.Index:
    names = [_label_from_json(n) for n in j["names"]]
    if j["multi"]:
        # set_names: a None in ``names`` would otherwise keep the Series' own name
        return pd.MultiIndex.from_arrays([pd.Index(s, copy=False) for s in levels]).set_names(names)
    (s,) = levels
    idx = pd.Index(s, copy=False).rename(names[0])
    if j.get("freq"):
        try:
            idx = type(idx)(idx, freq=j["freq"])
        except ValueError:  # rows reordered or left out (a sort, a shuffle): as in pandas, no freq then
            pass
    return idx


# -- columns pyarrow does not round-trip on its own ----------------------------------------
def _fill_to_json(fill: Any) -> Any:
    if isinstance(fill, (bool, np.bool_)):
        return {"bool": bool(fill)}
    if isinstance(fill, (int, np.integer)):
        return {"int": int(fill)}
    if isinstance(fill, (float, np.floating)):
        return {"float": repr(float(fill))}
    raise ArgumentTypeError(f"sparse fill value {fill!r:.40} is not a number or bool")


def _fill_from_json(j: dict) -> Any:
    if "bool" in j:
        return j["bool"]
    if "int" in j:
        return j["int"]
    return float(j["float"])


def _prepare(dt: Any, get_values: Any, label: Any) -> tuple[dict | None, Any]:
    """How to store one column: (fixup spec or None, replacement values or None).

    ``get_values()`` gives the column; called only for the dtypes that need it.
    """
    if isinstance(dt, pd.ArrowDtype):
        return {"k": "arrow"}, None
    if isinstance(dt, pd.SparseDtype):
        try:
            fill = _fill_to_json(dt.fill_value)
        except TypeError as e:
            raise ArgumentTypeError(f"column {label!r:.60} ({dt}): {e}") from None
        dense = np.asarray(get_values())
        return {"k": "sparse", "subtype": np.dtype(dt.subtype).str, "fill": fill}, dense
    if isinstance(dt, pd.StringDtype) and dt.storage == "python":
        return {"k": "string_python", "na": "nan" if dt.na_value is not pd.NA else "NA"}, None
    if isinstance(dt, np.dtype) and dt.kind == "O":
        arr = np.asarray(get_values(), dtype=object)
        try:
            # strict (from_pandas=False): NaN in a str column must not become a null
            typ = pa.array(arr, from_pandas=False).type
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            typ = None
        if typ in _STRINGISH:
            return {"k": "object"}, None
        dumps = pickle.dumps
        return {"k": "pickle"}, np.array([dumps(v, protocol=5) for v in arr], dtype=object)
    if isinstance(dt, np.dtype) and dt.kind == "f" and dt.itemsize == 2:
        # pyarrow cannot convert numpy float16: keep the bits
        return {"k": "view", "dtype": dt.str}, np.asarray(get_values()).view(np.uint16)
    return None, None


def _restore(spec: dict, column: Any, converted: Any) -> Any:
    """Undo ``_prepare``: the column as Arrow data or as converted by to_pandas."""
    k = spec["k"]
    if k == "arrow":
        return pd.arrays.ArrowExtensionArray(column)
    if k == "object":
        return column.to_numpy(zero_copy_only=False)
    if k == "pickle":
        out = np.empty(len(column), dtype=object)
        loads = pickle.loads
        for i, v in enumerate(column.to_pylist()):
            out[i] = loads(v)  # one by one: numpy would nest lists given all at once
        return out
    if k == "sparse":
        fill = _fill_from_json(spec["fill"])
        dtype = pd.SparseDtype(np.dtype(spec["subtype"]), fill)
        return pd.arrays.SparseArray(np.asarray(converted), fill_value=fill, dtype=dtype)
    if k == "string_python":
        na = np.nan if spec["na"] == "nan" else pd.NA
        return converted.astype(pd.StringDtype("python", na_value=na))
    if k == "view":
        return np.asarray(converted).view(np.dtype(spec["dtype"]))
    raise ValueError(f"unknown column fixup {k!r}")


_PULLED = {"arrow", "object", "pickle"}  # converted from Arrow by us, not by to_pandas


def pickled_fields(schema: pa.Schema) -> frozenset[str]:
    """Names of the fields of a ``frame_to_table`` schema that hold pickled objects.

    These are binary columns whose bytes are not the values (the hash of the shuffle
    reads the objects back through :func:`unpickle` to hash them by value).

    >>> import pandas as pd
    >>> t = frame_to_table(pd.DataFrame({'a': [1, 'x'], 'b': ['x', None]}, dtype=object))
    >>> sorted(pickled_fields(t.schema)), unpickle(t.column('a'))
    (['a'], [1, 'x'])
    """
    meta = schema.metadata or {}
    raw = meta.get(SCHEMA_KEY)
    if raw is None:
        return frozenset()
    return _pickled_fields(raw, tuple(schema.names))


@functools.lru_cache(maxsize=64)  # every chunk of a shuffle asks again with the same schema
def _pickled_fields(raw: bytes, names: tuple[str, ...]) -> frozenset[str]:
    fix = json.loads(raw).get("fix", {})
    return frozenset(names[int(p)] for p, spec in fix.items() if spec["k"] == "pickle" and int(p) < len(names))


def unpickle(column: pa.Array | pa.ChunkedArray) -> list:
    """The Python objects of a pickled column (see :func:`pickled_fields`); nulls as None."""
    loads = pickle.loads
    return [None if v is None else loads(v) for v in column.to_pylist()]


# -- DataFrame -> Table -----------------------------------------------------------------------
def frame_to_table(df: pd.DataFrame) -> pa.Table:
    """An Arrow table holding ``df`` exactly (see the module docstring).

    Raise TypeError naming the column if a column cannot be stored.
    """
    if not isinstance(df, pd.DataFrame):
        raise ArgumentTypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    series = [s for _, s in df.items()]
    dtypes = [s.dtype for s in series]
    plan = _fast_plan(df, dtypes)
    if plan is not None:
        return plan.table(df, [s.array for s in series], dtypes)
    return _general_frame_to_table(df)


# -- the fast path for the common dtypes ------------------------------------------------------
# A shuffle appends many small pieces of frames with one layout. pyarrow's from_pandas
# spends most of its time per call (metadata, dtype inspection), not per row, so for
# frames with a RangeIndex and common dtypes we convert the empty head once through the
# general path, keep its schema, and convert each piece's columns directly.
_PLANS: dict[tuple, _Plan | None] = {}
_MAX_PLANS = 512


def _fast_kind(dt: Any) -> Any:
    """A hashable description of a dtype the fast path handles, or None."""
    if isinstance(dt, np.dtype):
        if dt.kind in "biumM" or (dt.kind == "f" and dt.itemsize > 2):
            return dt.str
        return None
    if isinstance(dt, pd.StringDtype):
        return ("string", dt.storage, dt.na_value is pd.NA) if dt.storage == "pyarrow" else None
    if isinstance(dt, pd.CategoricalDtype):
        cats = dt.categories
        if cats.dtype.kind in "iuf" or (isinstance(cats.dtype, pd.StringDtype) and cats.dtype.storage == "pyarrow"):
            # the order of the categories matters even when unordered (dtype == ignores it)
            return ("category", dt.ordered, str(cats.dtype), tuple(cats.tolist()))
    return None


_BY_IDENTITY: dict[tuple, tuple[list, _Plan | None]] = {}


def _fast_plan(df: pd.DataFrame, dtypes: list | None = None) -> _Plan | None:
    idx, labels = df.index, df.columns
    if isinstance(labels, pd.MultiIndex) or isinstance(idx, pd.MultiIndex) or _freq(idx):
        return None
    dtypes = list(df.dtypes) if dtypes is None else dtypes
    ranged = type(idx) is pd.RangeIndex
    # Pieces of one frame share their dtype objects: look those up by identity first (the
    # entry holds them, so their ids stay theirs), which saves building the signature.
    try:
        label_values = tuple(labels.tolist())  # tolist: iterating an Arrow-backed Index is slow
        ident = (
            type(labels), str(labels.dtype), _label_key(labels.name), label_values,
            tuple(map(type, label_values)), ranged, id(idx.dtype), _label_key(idx.name), *map(id, dtypes),
        )
        hit = _BY_IDENTITY.get(ident)
    except TypeError:
        ident, hit = None, None
    if hit is not None:
        return hit[1]
    plan = _plan_by_signature(df, dtypes)
    if ident is not None:
        if len(_BY_IDENTITY) >= _MAX_PLANS:
            _BY_IDENTITY.clear()
        _BY_IDENTITY[ident] = ([idx.dtype, dtypes], plan)
    return plan


def _plan_by_signature(df: pd.DataFrame, dtypes: list) -> _Plan | None:
    idx, labels = df.index, df.columns
    kinds = tuple(_fast_kind(dt) for dt in dtypes)
    if type(idx) is not pd.RangeIndex:
        kinds += ("index", _fast_kind(idx.dtype))
    if None in kinds:
        return None
    try:
        # types with the values: 1, 1.0 and True are equal keys but different labels
        signature = (
            type(labels), str(labels.dtype), tuple((type(x), x) for x in labels),
            _label_key(labels.name), _label_key(idx.name), kinds,
        )
        hash(signature)
    except TypeError:
        return None
    plan = _PLANS.get(signature)
    if plan is None:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        plan = _PLANS[signature] = _Plan(df.iloc[:0])
    return plan


def _label_key(x: Any) -> tuple:
    return (type(x), x)


class _Plan:
    """The schema of frames with one layout, and how to convert each of their columns."""

    def __init__(self, head: pd.DataFrame):
        table = _general_frame_to_table(head)
        self.schema = table.schema
        self.meta = dict(table.schema.metadata)
        self.dictionaries = [
            table.column(i).chunk(0).dictionary if pa.types.is_dictionary(f.type) else None
            for i, f in enumerate(self.schema)
        ]

    def table(self, df: pd.DataFrame, columns: list, dtypes: list) -> pa.Table:
        idx = df.index
        if type(idx) is not pd.RangeIndex:
            columns = [*columns, idx.array]
            dtypes = [*dtypes, idx.dtype]
        arrays = []
        for values, dtype, field, dictionary in zip(columns, dtypes, self.schema, self.dictionaries):
            if dictionary is not None:
                codes = values.codes
                # (a mask costs a bitmap built row by row: only where some value is missing)
                indices = pa.array(codes, mask=codes < 0) if len(codes) and codes.min() < 0 else pa.array(codes)
                arr = pa.DictionaryArray.from_arrays(indices, dictionary, ordered=field.type.ordered)
            elif isinstance(dtype, np.dtype):
                # from_pandas=True: NaN and NaT become nulls, as pyarrow's from_pandas does;
                # floats without NaN need no look for them value by value
                array = np.asarray(values)
                missing = dtype.kind != "f" or bool(np.isnan(array).any())
                arr = pa.array(array, type=field.type, from_pandas=missing)
            else:
                arr = pa.array(values)
                if arr.type != field.type:
                    arr = arr.cast(field.type)
            arrays.append(arr)
        meta = dict(self.meta)
        meta[PIECE_KEY] = Piece.of_index(len(df), idx).encode()
        return pa.Table.from_arrays(arrays, schema=self.schema.with_metadata(meta))


def _general_frame_to_table(df: pd.DataFrame) -> pa.Table:
    labels = df.columns
    ncols = df.shape[1]
    idx = df.index
    range_index = type(idx) is pd.RangeIndex
    index_names = [] if range_index else [INDEX_NAME.format(i) for i in range(idx.nlevels)]
    names = _arrow_names(labels, index_names)

    levels = [] if range_index else [idx.get_level_values(i) for i in range(idx.nlevels)]
    dtypes_all = list(df.dtypes) + [v.dtype for v in levels]
    fix: dict[str, dict] = {}
    replace: dict[int, Any] = {}
    for pos, dt in enumerate(dtypes_all):
        if pos < ncols:
            spec, replacement = _prepare(dt, lambda pos=pos: df.iloc[:, pos], labels[pos])
        else:
            spec, replacement = _prepare(dt, lambda pos=pos: levels[pos - ncols], f"index level {pos - ncols}")
        if spec is not None:
            fix[str(pos)] = spec
        if replacement is not None:
            replace[pos] = replacement
    dtypes = [_dtype_key(dt) for dt in dtypes_all]

    # shallow: new labels over the same column data, copied only where replaced
    flat = df.set_axis(pd.RangeIndex(ncols), axis=1)
    if not range_index:
        flat.index = pd.RangeIndex(len(df))
        for i, values in enumerate(levels):
            flat[ncols + i] = replace.get(ncols + i, values.array)
    for pos, values in replace.items():
        if pos < ncols:
            flat.isetitem(pos, values)
    all_names = names + index_names
    flat.columns = pd.Index(all_names, dtype=object)
    try:
        # nthreads=1: for pieces of a shuffle a thread pool per call costs more than it saves
        table = pa.Table.from_pandas(flat, preserve_index=False, nthreads=1)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise _which_column(flat, list(labels) + index_names, e) from e

    schema_meta = {
        "v": FORMAT,
        "columns": index_to_json(labels),
        "index": {"kind": "range", "name": label_to_json(idx.name)}
        if range_index
        else {
            "kind": "levels",
            "multi": isinstance(idx, pd.MultiIndex),
            "names": [label_to_json(n) for n in idx.names],
            "freq": _freq(idx),
            "categorical": any(isinstance(idx.get_level_values(i).dtype, pd.CategoricalDtype)
                               for i in range(idx.nlevels)),
        },
        "ncols": ncols,
        "fix": fix,
        "dtypes": dtypes,
    }
    meta = dict(table.schema.metadata or {})
    if fix:
        # pyarrow's metadata would make to_pandas fail on (or mangle) columns we convert
        pandas_meta = json.loads(meta[PANDAS_KEY])
        pulled = {all_names[int(p)] for p, s in fix.items() if s["k"] in _PULLED}
        pandas_meta["columns"] = [c for c in pandas_meta["columns"] if c.get("name") not in pulled]
        meta[PANDAS_KEY] = json.dumps(pandas_meta).encode()
    meta[SCHEMA_KEY] = json.dumps(schema_meta, separators=(",", ":")).encode()
    meta[PIECE_KEY] = Piece.of_index(len(df), idx).encode()
    return table.replace_schema_metadata(meta)


def _dtype_key(dt: Any) -> str:
    if isinstance(dt, pd.StringDtype):
        return f"string[{dt.storage},{'NA' if dt.na_value is pd.NA else 'nan'}]"
    if isinstance(dt, pd.CategoricalDtype):
        return f"category[{dt.ordered}]"
    return str(dt)


def _which_column(flat: pd.DataFrame, labels: list, error: Exception) -> TypeError:
    for i, label in enumerate(labels):
        try:
            pa.Table.from_pandas(flat.iloc[:, [i]], preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as e:
            return TypeError(f"column {label!r:.60} ({flat.dtypes.iloc[i]}) cannot be stored: {e}")
    return TypeError(f"frame cannot be stored: {error}")


# -- Tables -> DataFrame ----------------------------------------------------------------------
def index_levels(schema: pa.Schema) -> dict[str, Any]:
    """The index levels a table of :func:`frame_to_table` holds as columns: Arrow field
    name -> the level's name (None if unnamed); empty for a RangeIndex or another table.

    >>> index_levels(frame_to_table(pd.DataFrame({'x': [1]}, index=pd.Index([5], name='i'))).schema)
    {'__index_level_0__': 'i'}
    """
    raw = (schema.metadata or {}).get(SCHEMA_KEY)
    spec = json.loads(raw)["index"] if raw is not None else {}
    if spec.get("kind") != "levels":
        return {}
    return {INDEX_NAME.format(i): _label_from_json(n) for i, n in enumerate(spec["names"])}


def _metas(table: pa.Table) -> tuple[bytes | None, Piece | None]:
    return (table.schema.metadata or {}).get(SCHEMA_KEY), piece_of(table)


def _to_pandas(
    table: pa.Table, fix: dict[int, dict], nrows: int, threads: bool = True, owned: bool = False
) -> pd.DataFrame:
    """Columns of ``table`` as a DataFrame, with the fixups ``fix`` (by position) applied
    (``owned``: see :func:`tables_to_frame`)."""
    names = table.column_names
    pulled = {p: table.column(p) for p, s in fix.items() if s["k"] in _PULLED}
    rest = table.drop_columns([names[p] for p in pulled]) if pulled else table
    if rest.num_columns:
        df = _adopted(rest, threads) if owned else rest.to_pandas(use_threads=threads)
    else:
        df = pd.DataFrame(index=pd.RangeIndex(nrows))
    for p in sorted(pulled):
        values = _restore(fix[p], pulled[p], None)
        if isinstance(values, np.ndarray):  # keep object dtype: insert would infer str
            values = pd.Series(values, index=df.index, dtype=object, copy=False)
        df.insert(p, names[p], values, allow_duplicates=True)
    for p, spec in fix.items():
        if p not in pulled:
            df.isetitem(p, _restore(spec, None, df.iloc[:, p]))
    return df


def _adopted(table: pa.Table, threads: bool) -> pd.DataFrame:
    """``table.to_pandas()`` where the caller owns the table's buffers (nothing else holds
    them): each column of numbers without nulls becomes a writable NumPy array over its
    own Arrow buffer, one block per column, instead of a copy into pandas' blocks (Arrow
    hands such columns over only read-only, which a frame given to a user must not be)."""
    df = table.to_pandas(use_threads=threads, split_blocks=True)
    columns: dict[int, Any] = {}
    adopted = False
    for j, column in enumerate(table.columns):
        values = _own_numbers(column, df.dtypes.iloc[j])
        adopted |= values is not None
        columns[j] = df.iloc[:, j] if values is None else values
    if not adopted:
        return df
    out = pd.DataFrame(columns, index=df.index, copy=False)
    out.columns = df.columns
    return out


def _own_numbers(column: pa.ChunkedArray, dtype: Any) -> np.ndarray | None:
    """A writable array of ``dtype`` over the data buffer of ``column`` (one chunk of
    integers or floats without nulls, in a buffer Arrow allows writes to), else None."""
    if column.num_chunks != 1 or column.null_count or not (
        pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
    ):
        return None
    if not isinstance(dtype, np.dtype) or dtype != np.dtype(column.type.to_pandas_dtype()):
        return None
    chunk = column.chunk(0)
    data = chunk.buffers()[1]
    if data is None or not data.is_mutable:
        return None
    return np.frombuffer(data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)


_PLAIN = {
    np.dtype(t).str: np.dtype(t)
    for t in ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"]
}
_PLAIN_KEYS = {str(dt): dt for dt in _PLAIN.values()}


def _convert(
    table: pa.Table, schema: dict, pieces: list[Piece], threads: bool = True, owned: bool = False
) -> pd.DataFrame:
    """One DataFrame from a table of one or more pieces sharing ``schema``."""
    ncols = schema["ncols"]
    fix = {int(p): s for p, s in schema["fix"].items()}
    nrows = table.num_rows  # a slice keeps the metadata of the table it was cut from
    ispec = schema["index"]
    if ispec["kind"] == "range":
        df = _to_pandas(table, fix, nrows, threads, owned)
        name = _label_from_json(ispec["name"])
        ranges = [p.range_index(name) for p in pieces]
        index = ranges[0].append(ranges[1:]) if len(ranges) > 1 else ranges[0]
    else:
        # data and index apart: selecting columns of a converted frame would copy them
        df = _to_pandas(
            table.select(range(ncols)), {p: s for p, s in fix.items() if p < ncols}, nrows, threads, owned
        )
        levels = []
        for p in range(ncols, table.num_columns):
            column, plain = table.column(p), _PLAIN_KEYS.get(schema["dtypes"][p])
            if plain is not None and p not in fix and column.null_count == 0:
                levels.append(pd.Series(column.to_numpy(), dtype=plain, copy=False))  # common: cheap
            else:
                level = _to_pandas(table.select([p]), {0: fix[p]} if p in fix else {}, nrows, threads)
                levels.append(level.iloc[:, 0])
        index = _levels_to_index(levels, ispec)
    df.index = index
    df.columns = index_from_json(schema["columns"])
    return df


def _unify_categoricals(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Give categorical columns of the same label the union of their categories.

    pandas.concat turns categoricals with different categories into objects; a
    shuffled categorical should stay categorical. Union in order of first appearance;
    ordered only if every piece is ordered.
    """
    if any(not f.columns.is_unique for f in frames):
        return frames
    by_label: dict[Any, list[pd.CategoricalDtype]] = {}
    for f in frames:
        for label, dt in f.dtypes.items():
            by_label.setdefault(label, []).append(dt)
    target = {}
    for label, dts in by_label.items():
        if not all(isinstance(d, pd.CategoricalDtype) for d in dts) or all(d == dts[0] for d in dts):
            continue
        cats = [d.categories for d in dts]
        if any(c.dtype != cats[0].dtype for c in cats):
            continue
        union = cats[0].append(cats[1:]).unique() if len(cats) > 1 else cats[0]
        target[label] = pd.CategoricalDtype(union, ordered=all(d.ordered for d in dts))
    if not target:
        return frames
    out = []
    for f in frames:
        f = f.copy(deep=False)
        for label, dt in target.items():
            if label in f.columns:
                f[label] = f[label].cat.set_categories(dt.categories, ordered=dt.ordered)
        out.append(f)
    return out


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pandas.concat``, except that categorical columns keep being categorical.

    >>> a = pd.DataFrame({'c': pd.Categorical(['x'])})
    >>> b = pd.DataFrame({'c': pd.Categorical(['y'])})
    >>> concat_frames([a, b])['c'].cat.categories.tolist()
    ['x', 'y']
    """
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0]
    return pd.concat(_unify_categoricals(frames))


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """The tables one after another (an empty table for none); columns missing from some
    are null-filled and types widened where Arrow can.

    >>> concat_tables([pa.table({'a': [1]}), pa.table({'a': [2.5], 'b': ['x']})]).to_pydict()
    {'a': [1.0, 2.5], 'b': [None, 'x']}
    """
    if not tables:
        return pa.table({})
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid:
        # schema drift: null-fill missing columns and widen types where Arrow can
        return pa.concat_tables(tables, promote_options="permissive")


def write_table(writer: pa.ipc.RecordBatchStreamWriter, table: pa.Table) -> None:
    """Write ``table``, keeping the dictionaries (categories) of an empty table."""
    if table.num_rows or not table.num_columns:
        writer.write_table(table)
        return
    # write_table skips empty batches, and with them the dictionaries of categoricals
    arrays = [c.chunk(0) if c.num_chunks else pa.array([], c.type) for c in table.columns]
    writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=table.schema))


def _table_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        write_table(writer, table)
    return sink.getvalue()


def tables_to_frame(tables: list[pa.Table], threads: bool = True, owned: bool = False) -> pd.DataFrame:
    """The DataFrame of each table, concatenated as :func:`concat_frames` does.

    Pieces with the same layout are concatenated as Arrow and converted once. ``threads``:
    whether pyarrow may convert columns on its thread pool (not where the caller already
    runs on every core, as a dask task does: the two pools would contend). ``owned``: the
    caller made the one table given and nothing else holds its buffers (the output of a
    take): its columns of numbers without nulls become the frame's own, without a copy.
    """
    if not tables:
        return pd.DataFrame()
    metas = [_metas(t) for t in tables]
    first_schema = metas[0][0]
    if first_schema is None:
        # plain Arrow tables (appended as tables): pyarrow's conversion
        if len(tables) > 1 and all(m[0] is None for m in metas) and all(
            t.schema.equals(tables[0].schema) for t in tables[1:]
        ):
            return pa.concat_tables(tables).to_pandas(use_threads=threads)
        if len(tables) == 1:
            return tables[0].to_pandas(use_threads=threads)
    same = all(m[0] == first_schema for m in metas) and all(
        t.schema.equals(tables[0].schema) for t in tables[1:]
    )
    if same and first_schema is not None:
        schema = json.loads(first_schema)
        ispec = schema["index"]
        # a frequency or a categorical index level would come out differently from concat
        if len(tables) == 1 or (ispec["kind"] == "range" or not (ispec["freq"] or ispec["categorical"])):
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            pieces = [cast(Piece, m[1]) for m in metas]  # (a schema comes with its piece)
            return _convert(table, schema, pieces, threads, owned=owned and len(tables) == 1)
    frames = [
        _convert(t, json.loads(s), [cast(Piece, p)], threads) if s is not None else t.to_pandas(use_threads=threads)
        for t, (s, p) in zip(tables, metas)
    ]
    return concat_frames(frames)


def table_to_frames(table: pa.Table, rows: Any, index_starts: Any = None) -> list[pd.DataFrame] | None:
    """The frames of consecutive runs of ``table``'s rows (run ``i`` is the next
    ``rows[i]`` rows) from ONE Arrow -> pandas conversion, each equal to what
    :func:`tables_to_frame` gives for that run's pieces alone; None where that cannot be
    promised (the caller then converts run by run).

    A dropped index (a RangeIndex in our metadata) needs ``index_starts``: where each
    run's RangeIndex starts. Runs of no rows are empty frames.

    >>> import pandas as pd
    >>> t = frame_to_table(pd.DataFrame({'a': [1, 2, 3]}, index=[7, 8, 9]))
    >>> [f.index.tolist() for f in table_to_frames(t, [2, 1])]
    [[7, 8], [9]]
    """
    s = (table.schema.metadata or {}).get(SCHEMA_KEY)
    total = table.num_rows
    if s is None:
        # plain Arrow: pyarrow's own conversion; an index from its pandas metadata, or an
        # integer or boolean column with nulls (float or object only where there are
        # nulls) would come out differently for a run alone
        if (table.schema.pandas_metadata or {}).get("index_columns") or any(
            c.null_count and (pa.types.is_integer(c.type) or pa.types.is_boolean(c.type)) for c in table.columns
        ):
            return None
        df, name, ranged = table.to_pandas(), None, True
        index_starts = np.zeros(len(rows), dtype=np.int64)
    else:
        schema = json.loads(s)
        ispec = schema["index"]
        ranged = ispec["kind"] == "range"
        if ranged and index_starts is None:
            return None
        if not ranged and (ispec["multi"] or ispec["freq"] or ispec["categorical"]):
            return None  # levels, a frequency or categories depend on a run's own values
        df = _convert(table, schema, [Piece.numbered(total, 0) if ranged else Piece(total)])
        name = _label_from_json(ispec["name"]) if ranged else None
    bounds = np.cumsum(rows).tolist()
    frames, start = [], 0
    for i, stop in enumerate(bounds):
        frame = df.iloc[start:stop]
        if ranged:
            first = int(index_starts[i])
            frame.index = pd.RangeIndex(first, first + stop - start, name=name)
        frames.append(frame)
        start = stop
    return frames
