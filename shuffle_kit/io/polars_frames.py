"""polars in and out, with polars an optional extra.

``import shuffle_kit`` never imports polars. A polars object can only exist once polars
has been imported, so inputs are recognised through ``sys.modules`` (no import is tried);
results import polars only when asked for polars frames, and say in one line how to
install it when it is missing.

Inputs become Arrow tables a slice at a time: a DataFrame by zero-copy ``to_arrow`` of
row slices, a LazyFrame through ``LazyFrame.collect_batches`` (polars' streaming engine
hands out batches as they are produced and waits while the consumer is busy, so the
query is never held whole). A polars without ``collect_batches`` collects the LazyFrame
whole, and says so in a warning.

>>> import pyarrow as pa
>>> is_polars_frame(pa.table({'a': [1]})), is_lazy_frame([1])
(False, False)
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pyarrow as pa

INSTALL = "pip install 'shuffle_kit[polars]'"


def loaded() -> ModuleType | None:
    """The polars module if this process imported it, else None (nothing is imported)."""
    return sys.modules.get("polars")


def is_polars_frame(obj: Any) -> bool:
    """Whether ``obj`` is a ``polars.DataFrame`` (without importing polars)."""
    pl = loaded()
    return pl is not None and isinstance(obj, pl.DataFrame)


def is_lazy_frame(obj: Any) -> bool:
    """Whether ``obj`` is a ``polars.LazyFrame`` (without importing polars)."""
    pl = loaded()
    return pl is not None and isinstance(obj, pl.LazyFrame)


def require(what: str) -> ModuleType:
    """polars, imported now; ImportError in one line naming ``what`` needs it if absent."""
    try:
        import polars
    except ImportError:
        raise ImportError(f"{what} needs polars, which is not installed: {INSTALL}") from None
    return polars


def empty_table(frame: Any) -> pa.Table:
    """A polars DataFrame or LazyFrame with no rows, as Arrow (an Enum keeps its categories),
    without running a LazyFrame's query."""
    pl = require("reading a polars frame")
    polars_schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    return pl.DataFrame(schema=polars_schema).to_arrow()


def arrow_schema(frame: Any) -> pa.Schema:
    """The Arrow schema a polars DataFrame or LazyFrame converts to (see :func:`empty_table`)."""
    return empty_table(frame).schema


def frame_slices(df: Any, rows: int) -> Iterator[pa.Table]:
    """A polars DataFrame as Arrow tables of ``rows`` rows (at least one table, maybe empty).

    Categorical and Enum columns are converted whole, once: a slice of its own would carry
    only the categories it uses, so a partition's pandas categories (their order too) would
    depend on where the slices end. Whole, they are one dictionary plus small indices.
    """
    pl = require("reading a polars DataFrame")
    whole = {
        name: df.get_column(name).to_arrow()
        for name, dtype in df.schema.items() if isinstance(dtype, (pl.Categorical, pl.Enum))
    }
    rest = df.drop(list(whole)) if whole else df
    schema = arrow_schema(df)  # with polars' field metadata, which tells an Enum
    positions = [(df.columns.index(name), schema.field(name)) for name in whole]

    def take(start: int, length: int) -> pa.Table:
        table = rest.slice(start, length).to_arrow()
        for at, field in positions:  # in increasing order, so each lands where it was
            table = table.add_column(at, field, whole[field.name].slice(start, length))
        return table

    height = df.height
    if height == 0:
        yield take(0, 0)
    for start in range(0, height, rows):
        yield take(start, rows)


def lazy_batches(lf: Any) -> Iterator[pa.Table]:
    """The rows of a polars LazyFrame as Arrow tables, batch by batch, in order."""
    pl = require("reading a polars LazyFrame")
    if not hasattr(pl.LazyFrame, "collect_batches"):
        yield from collected_whole(lf, pl.__version__)
        return
    # lazy: the query starts at the first batch asked for; it stops when this generator
    # is dropped
    for batch in lf.collect_batches(maintain_order=True, lazy=True):
        yield batch.to_arrow()


def collected_whole(lf: Any, version: str) -> Iterator[pa.Table]:
    """The fallback of a polars that cannot stream a LazyFrame: collect it, and warn."""
    warnings.warn(
        f"polars {version} has no LazyFrame.collect_batches, so the LazyFrame is collected whole "
        "before it is shuffled (a newer polars streams it in batches)",
        stacklevel=3,
    )
    yield lf.collect().to_arrow()


def to_polars(table: pa.Table) -> Any:
    """``table`` as a polars DataFrame. polars has no index: the levels of a pandas index
    stored in ``table`` become columns under their names (a key may be one), unnamed levels
    are left out, as ``polars.from_pandas`` leaves them out.

    >>> import pandas as pd
    >>> df = pd.DataFrame({'x': [1, 2]}, index=pd.Index([7, 8], name='i'))
    >>> to_polars(pa.Table.from_pandas(df)).columns
    ['x', 'i']
    >>> to_polars(pa.Table.from_pandas(df.rename_axis(None))).columns
    ['x']
    """
    pl = require("a polars result")
    return pl.from_arrow(_without_index_names(table).replace_schema_metadata(None))


def _without_index_names(table: pa.Table) -> pa.Table:
    """``table`` with its pandas index columns renamed to their levels' names, or dropped."""
    levels = _index_levels(table.schema)
    if not levels:
        return table
    taken = set(table.column_names) - set(levels)
    renamed = {}
    for field, name in levels.items():
        if isinstance(name, str) and name not in taken and not name.startswith("__index_level_"):
            renamed[field] = name
            taken.add(name)
    kept = [c for c in table.column_names if c not in levels or c in renamed]
    return table.select(kept).rename_columns([renamed.get(c, c) for c in kept])


def _index_levels(schema: pa.Schema) -> dict[str, Any]:
    """Index column -> level name, as shuffle_kit's codecs or pyarrow's ``from_pandas`` wrote them."""
    if schema.metadata is None:  # Arrow data that never was a pandas frame
        return {}
    from ..frames import index_levels  # (imports pandas)

    levels = index_levels(schema)
    if levels:
        return levels
    meta = schema.pandas_metadata or {}
    names = {c.get("field_name"): c.get("name") for c in meta.get("columns", [])}
    return {c: names.get(c) for c in meta.get("index_columns", []) if isinstance(c, str) and c in schema.names}
