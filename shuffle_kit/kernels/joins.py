"""The join of one partition pair: pandas' ``merge`` semantics, one pair at a time.

A join larger than memory hash-partitions both sides by the same hash of their keys
(:mod:`.hashing` hashes a value, not its storage type, so ``1``, ``1.0`` and
``pd.NA``-capable ``Int64`` ``1`` agree, as do every string type) and joins partition ``i``
of the left with partition ``i`` of the right. This module is what each pair computes,
knowing nothing of where the pairs come from:

* :meth:`Join.join` is ``pandas.merge`` of the pair (``sort=False``), or, with
  ``nulls_equal=False``, SQL's rule (a null key matches nothing: rows of the kept side with
  a null key follow the matched rows, their other side missing). A many-to-one join on one
  integer or string key (a fact table and its dimension) finds each left row's right row
  through a lookup of the right's keys (:meth:`Join.looked_up`), the same frame pandas gives.
* A pair's dtypes depend on its rows: pandas gives a right-side ``int64`` column of a left
  join ``float64`` only where some left row found no match, and the key of a right or outer
  join the common type of both keys only where some row came from the right alone. The
  whole join's dtypes are the common ones of all pairs, so :meth:`Join.variants` joins a
  row of each side with nothing (the dtypes of unmatched rows) and :meth:`Join.conform`
  casts a pair to the common type of its own and those (``pd.concat``'s rule, which is how
  pandas arrives at the whole join's dtypes too).
* :meth:`Join.check` asks pandas whether it would join the key columns at all (``int64``
  with ``str`` it refuses) and names both columns.

>>> import pandas as pd
>>> left = pd.DataFrame({'k': [1.0, None], 'a': [1, 2]})
>>> right = pd.DataFrame({'k': [float('nan')], 'b': [3]})
>>> Join(['k'], ['k'], 'left', ('_x', '_y'), on=True).join(left, right)['b'].tolist()
[nan, 3.0]
>>> Join(['k'], ['k'], 'left', ('_x', '_y'), on=True, nulls_equal=False).join(left, right)['b'].tolist()
[nan, nan]

pandas is imported by the methods that join frames, not with the module: a join whose
pairs are all Arrow (:mod:`.arrow_join`) never loads it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa

from ..errors import ArgumentTypeError, JobError, missing_column
from .join_indices import KeyLookup, ValueLookup

if TYPE_CHECKING:
    import pandas as pd

HOWS = ("inner", "left", "right", "outer")
_LOOKUP_ROWS = 1024  # right sides this long or longer are looked up; pandas' merge is as fast below
_MATCH = "__shuffle_kit_match__"


def resolve_keys(
    on: Any, left_on: Any, right_on: Any, left_columns: Sequence[Any] | None, right_columns: Sequence[Any] | None
) -> tuple[list, list, bool]:
    """(left key columns, right key columns, whether given as ``on``), as pandas reads
    ``on`` / ``left_on`` / ``right_on``: ``on`` alone, or both others, or neither (the
    columns the two sides share). Columns not known yet (None) are not checked.

    >>> resolve_keys(None, None, None, ['k', 'a'], ['b', 'k'])
    (['k'], ['k'], True)
    >>> resolve_keys(None, 'a', 'b', ['a'], ['b'])
    (['a'], ['b'], False)
    """
    def as_list(x: Any, name: str) -> list:
        keys = list(x) if isinstance(x, (list, tuple)) else [x]
        if not keys:
            raise JobError(f"{name}: give at least one key column")
        for k in keys:
            if isinstance(k, (list, dict, set, np.ndarray)) or _is_series(k):
                raise ArgumentTypeError(f"{name}: key columns are named by their labels, not {type(k).__name__}")
        if len(set(map(repr, keys))) != len(keys):
            raise JobError(f"{name}: repeated column name in {keys!r}")
        return keys

    if on is not None:
        if left_on is not None or right_on is not None:
            raise JobError('give "on" or "left_on" and "right_on", not a combination of both')
        left, right = as_list(on, "on"), as_list(on, "on")
        given_on = True
    elif left_on is not None or right_on is not None:
        if left_on is None or right_on is None:
            raise JobError(f"give both left_on and right_on, not only {'left_on' if right_on is None else 'right_on'}")
        left, right = as_list(left_on, "left_on"), as_list(right_on, "right_on")
        if len(left) != len(right):
            raise JobError(f"left_on names {len(left)} columns and right_on {len(right)}: give as many of each")
        given_on = False
    else:
        assert left_columns is not None and right_columns is not None
        shared = [c for c in left_columns if c in set(right_columns)]
        if not shared:
            raise JobError("the two sides share no column to join on: give on, or left_on and right_on")
        left, right, given_on = list(shared), list(shared), True
    for side, keys, columns in (("left", left, left_columns), ("right", right, right_columns)):
        if columns is None:
            continue
        for k in keys:
            if k not in set(columns):
                raise missing_column(k, list(columns), where=f"the {side} input")
    return left, right, given_on


def _is_series(x: Any) -> bool:
    """Whether ``x`` is a pandas Series (never, if pandas was not imported)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(x, pandas.Series)


class Found(NamedTuple):
    """The kinds of rows a join holds (:meth:`Join.found`)."""

    matched: bool
    left_only: bool
    right_only: bool


@dataclass(frozen=True)
class Join:
    """One join as pandas' ``merge`` has it: the key columns of each side, ``how``, the
    ``suffixes``, whether the keys were given as ``on`` (a key both sides name alike is then
    one column, coalesced in an outer join) and whether null keys match each other
    (pandas: yes; SQL: ``nulls_equal=False``)."""

    left_on: list
    right_on: list
    how: str
    suffixes: tuple
    on: bool = False
    nulls_equal: bool = True

    def _merge(self, left: pd.DataFrame, right: pd.DataFrame, how: str | None = None, **kwargs: Any) -> pd.DataFrame:
        import pandas as pd

        keys: dict[str, Any] = (
            {"on": self.left_on} if self.on else {"left_on": self.left_on, "right_on": self.right_on}
        )
        return pd.merge(left, right, how=how or self.how, suffixes=self.suffixes, sort=False, **keys, **kwargs)

    def output_columns(self, left: Sequence[Any], right: Sequence[Any]) -> list[tuple[Any, int, Any]] | None:
        """pandas' columns of the join of sides with the columns ``left`` and ``right`` (each
        label once on its side), as ``(name, side, source)`` (side 0: the left); None for
        labels pandas would name otherwise (not strings) or twice. A key both sides name
        alike is one column, the left's; other labels both sides hold take the suffixes.

        >>> Join(['k'], ['k'], 'inner', ('_x', '_y'), on=True).output_columns(['k', 'v'], ['v', 'k'])
        [('k', 0, 'k'), ('v_x', 0, 'v'), ('v_y', 1, 'v')]
        """
        if not all(isinstance(c, str) for c in (*left, *right)) or len(set(left)) != len(left) or \
                len(set(right)) != len(right):
            return None
        shared = {lk for lk, rk in zip(self.left_on, self.right_on) if lk == rk}
        both = (set(left) & set(right)) - shared
        lsuffix, rsuffix = (s or "" for s in self.suffixes)
        named = [(f"{n}{lsuffix}" if n in both else n, 0, n) for n in left]
        named += [(f"{n}{rsuffix}" if n in both else n, 1, n) for n in right if n not in shared]
        return named if len({name for name, _, _ in named}) == len(named) else None

    def join(self, left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``left`` and ``right`` joined, in pandas' order for the pair (SQL
        null keys: those rows after the others)."""
        looked_up = self.looked_up(left, right)
        if looked_up is not None:
            return looked_up
        if self.nulls_equal:
            return self._merge(left, right)
        lnull, rnull = _null_keys(left, self.left_on), _null_keys(right, self.right_on)
        if not lnull.any() and not rnull.any():
            return self._merge(left, right)
        parts = [self._merge(left[~lnull], right[~rnull])]
        if self.how in ("left", "outer") and lnull.any():
            parts.append(self._merge(left[lnull], right.iloc[:0]))
        if self.how in ("right", "outer") and rnull.any():
            parts.append(self._merge(left.iloc[:0], right[rnull]))
        return _concat(parts)

    def looked_up(self, left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame | None:
        """pandas' merge of a many-to-one join on one key, found through a lookup of the
        right's key (:class:`.join_indices.KeyLookup`: a table when integer keys span few
        values; :class:`.join_indices.ValueLookup`: a hash table of strings) instead of
        pandas' factorizing of both sides; None unless it is exactly that: an inner join
        (or a left join where every left row finds its right row) on a key of one NumPy
        integer or pandas string dtype on both sides, distinct and never missing on the
        right (a missing left key then matches nothing, as in pandas)."""
        import pandas as pd

        if self.how not in ("inner", "left") or len(self.left_on) != 1 or len(right) < _LOOKUP_ROWS:
            return None
        lkey, rkey = left[self.left_on[0]], right[self.right_on[0]]
        if lkey.dtype != rkey.dtype:
            return None
        lookup: KeyLookup | ValueLookup | None
        try:
            if isinstance(lkey.dtype, np.dtype) and lkey.dtype.kind in "iu":
                lookup, probe = KeyLookup.of(pa.array(rkey.to_numpy())), pa.array(lkey.to_numpy())
            elif isinstance(lkey.dtype, pd.StringDtype):
                lookup, probe = ValueLookup.of(pa.array(rkey)), pa.array(lkey)
            else:
                return None
        except (pa.ArrowException, UnicodeError):  # (strings Arrow cannot hold, a lone surrogate: pandas')
            return None
        named = self.output_columns(list(left.columns), list(right.columns))
        if named is None or lookup is None:
            return None
        lpos, rpos = lookup.find(probe)
        if self.how == "left" and len(lpos) < len(left):  # unmatched rows: pandas' dtypes for them
            return None
        kept = left.reset_index(drop=True) if len(lpos) == len(left) else left.take(lpos).reset_index(drop=True)
        sources = [n for _, side, n in named if side == 1]
        taken = right[sources].take(rpos).reset_index(drop=True)
        out = pd.concat([kept, taken], axis=1)
        out.columns = pd.Index([name for name, _, _ in named])
        return out

    def check(self, left: pd.DataFrame, right: pd.DataFrame) -> None:
        """Refuse, naming both columns, key columns pandas would not join (``left`` and
        ``right``: frames with each side's columns and dtypes, rows optional)."""
        import pandas as pd

        for lk, rk in zip(self.left_on, self.right_on):
            try:
                pd.merge(left[[lk]], right[[rk]].rename(columns={rk: lk}) if lk != rk else right[[rk]], on=lk)
            except (ValueError, TypeError) as e:
                raise JobError(
                    f"cannot join left key column {lk!r} ({left[lk].dtype}) with right key column {rk!r} "
                    f"({right[rk].dtype}): {' '.join(str(e).split('. If')[0].split())}"
                ) from None
        try:
            self._merge(left, right)
        except (ValueError, TypeError, KeyError) as e:
            raise JobError(f"merge: {' '.join(str(e).split())}") from None

    def found(self, left: pd.DataFrame, right: pd.DataFrame) -> Found:
        """Which kinds of rows the join of ``left`` and ``right`` holds: matched ones, left
        rows that find no right row with their key, and the other way round (the frames
        may hold the key columns only)."""
        import pandas as pd

        lkeys, rkeys = left[self.left_on], right[self.right_on]
        lnull = rnull = None
        if not self.nulls_equal:  # null keys never match: they are unmatched rows
            lnull, rnull = _null_keys(lkeys, self.left_on), _null_keys(rkeys, self.right_on)
            lkeys, rkeys = lkeys[~lnull], rkeys[~rnull]
        # distinct keys only, joined by pandas itself: its own idea of a match
        lkeys = lkeys.drop_duplicates().set_axis(list(range(len(self.left_on))), axis=1)
        rkeys = rkeys.drop_duplicates().set_axis(list(range(len(self.right_on))), axis=1)
        on = list(range(len(self.left_on)))
        kinds = pd.merge(lkeys, rkeys, on=on, how="outer", indicator=_MATCH)[_MATCH]
        return Found(bool((kinds == "both").any()),
                     bool((kinds == "left_only").any()) or bool(lnull is not None and lnull.any()),
                     bool((kinds == "right_only").any()) or bool(rnull is not None and rnull.any()))

    def variants(self, left: pd.DataFrame, right: pd.DataFrame, left_unmatched: bool, right_unmatched: bool
                 ) -> list[pd.DataFrame]:
        """Joins of one row of a side (``left`` / ``right``: a frame whose first row is
        taken) with nothing, for each kind of unmatched row the whole join holds: their
        dtypes are those pandas gives such rows."""
        out = []
        if left_unmatched and self.how in ("left", "outer") and len(left):
            out.append(self._merge(left.iloc[:1], right.iloc[:0]))
        if right_unmatched and self.how in ("right", "outer") and len(right):
            out.append(self._merge(left.iloc[:0], right.iloc[:1]))
        return out

    def matched(self, left: pd.DataFrame, right: pd.DataFrame) -> list[pd.DataFrame]:
        """The join of the first row of ``left`` with the first of ``right`` given the
        same key (empty if either side has no row or the key cannot be carried over): the
        dtypes pandas gives matched rows once it has cast both sides' keys to one type
        (``str`` with ``object`` is ``object``), which a pair with an empty side lacks."""
        import pandas as pd

        if not len(left) or not len(right):
            return []
        for src, dst, skeys, dkeys in ((left, right, self.left_on, self.right_on),
                                       (right, left, self.right_on, self.left_on)):
            row = dst.iloc[:1].copy()
            try:
                for sk, dk in zip(skeys, dkeys):
                    row[dk] = pd.Series(src[sk].iloc[:1].to_numpy(), index=row.index).astype(dst[dk].dtype)
            except (TypeError, ValueError):
                continue
            pair = (src.iloc[:1], row) if src is left else (row, src.iloc[:1])
            found = self.found(*pair)
            if not (found.left_only or found.right_only):
                return [self.join(*pair)]
        return []

    @staticmethod
    def conform(part: pd.DataFrame, variants: list[pd.DataFrame]) -> pd.DataFrame:
        """``part`` with each column cast to the common dtype of its own and the
        ``variants``' (what ``pd.concat`` of them gives), so every pair has the whole
        join's dtypes."""
        if not variants:
            return part
        frames = [part.iloc[:1]] if len(part) else []
        common = _concat([*frames, *variants]).dtypes
        cast = {c: common.iloc[i] for i, c in enumerate(part.columns) if part.dtypes.iloc[i] != common.iloc[i]}
        if not cast:
            return part
        return part.astype(cast) if part.columns.is_unique else _cast_positional(part, common)


def _cast_positional(part: pd.DataFrame, dtypes: pd.Series) -> pd.DataFrame:
    out = part.copy()
    for i in range(part.shape[1]):
        if part.dtypes.iloc[i] != dtypes.iloc[i]:
            out.isetitem(i, part.iloc[:, i].astype(dtypes.iloc[i]))
    return out


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    frames = [f for f in frames if len(f)] or frames[:1]
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    return pd.concat(frames, ignore_index=True)


def _null_keys(frame: pd.DataFrame, keys: list) -> np.ndarray:
    """Whether each row has a null (None, NaN, NaT, NA) in one of its key columns."""
    mask = np.zeros(len(frame), dtype=bool)
    for k in keys:
        mask |= np.asarray(frame[k].isna(), dtype=bool)
    return mask
