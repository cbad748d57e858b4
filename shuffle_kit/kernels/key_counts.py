"""Rows per key of a side's pieces as they go by, to name the keys that make a join large.

A join reads the pieces of a pair too large for memory anyway; :meth:`KeyCounts.tally`
counts their keys on the way (one small frame of distinct keys and their rows), and
:func:`hot_keys` matches the counts of the two sides and picks the keys whose rows on both
sides together take more than a given number of bytes, the one with the most rows always.

>>> import pandas as pd
>>> left, right = KeyCounts(), KeyCounts()
>>> _ = list(left.tally([pd.DataFrame({'k': [7, 7, 7, 1]}), pd.DataFrame({'k': [7, 2]})], ['k']))
>>> _ = list(right.tally([pd.DataFrame({'k': [7.0, 7.0, 3.0]})], ['k']))
>>> hot_keys(left, right, widths=(10, 10), threshold=30)
[((7,), 4, 2)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

_ROWS = "__shuffle_kit_rows__"
_OTHER = "__shuffle_kit_other_rows__"


class KeyCounts:
    """Rows per key of the pieces :meth:`tally` has seen."""

    def __init__(self) -> None:
        self.counts: pd.DataFrame | None = None  # the key columns as 0, 1, ... and _ROWS

    def tally(self, pieces: Iterable[pd.DataFrame], keys: list) -> Iterator[pd.DataFrame]:
        """``pieces``, unchanged, their rows per key (columns ``keys``) counted as they go by."""
        on = list(range(len(keys)))
        for piece in pieces:
            counts = (piece[keys].set_axis(on, axis=1).groupby(on, dropna=False, sort=False, observed=True)
                      .size().rename(_ROWS).reset_index())
            if self.counts is not None:
                both = pd.concat([self.counts, counts], ignore_index=True)
                counts = both.groupby(on, dropna=False, sort=False, observed=True)[_ROWS].sum().reset_index()
            self.counts = counts
            yield piece


def hot_keys(counted: KeyCounts, other: KeyCounts, widths: tuple[float, float], threshold: float
             ) -> list[tuple[tuple, int, int]]:
    """(key, its rows in ``counted``, its rows in ``other``) for the keys of ``counted``
    whose rows on both sides (at ``widths``: bytes a row of each) take more than
    ``threshold`` bytes, and the key with the most rows in ``counted`` in any case; most
    rows first. Empty if ``counted`` saw no row."""
    if counted.counts is None or not len(counted.counts):
        return []
    mine = counted.counts
    on = [c for c in mine.columns if c != _ROWS]
    if other.counts is not None and len(other.counts):
        theirs = other.counts.rename(columns={_ROWS: _OTHER})
        both = pd.merge(mine, theirs, on=on, how="left", sort=False)
    else:
        both = mine.assign(**{_OTHER: 0})
    rows = both[_ROWS].to_numpy(dtype=np.int64)
    others = both[_OTHER].fillna(0).to_numpy(dtype=np.int64)
    hot = rows * widths[0] + others * widths[1] > threshold
    hot[int(np.argmax(rows))] = True
    picked = np.flatnonzero(hot)
    picked = picked[np.argsort(-rows[picked], kind="stable")]
    keys = both[on].iloc[picked]
    return [(tuple(v.item() if isinstance(v, np.generic) else v for v in key), int(rows[i]), int(others[i]))
            for key, i in zip(keys.itertuples(index=False, name=None), picked)]
