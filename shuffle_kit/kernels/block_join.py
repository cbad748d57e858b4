"""A join of two sides neither of which need fit in memory: a block nested-loop join.

One side (``blocked``) is read once, cut into blocks of at most ``block_rows`` rows and at
most ``out_rows`` rows of any one key; for each block, the other side is streamed again
from its start (``stream()``: the same rows in the same order every time) and each of its
pieces is joined with the block (an inner join, :meth:`.joins.Join.join`). What is in
memory at any step is one block, one streamed piece and the rows of one step's join: a
streamed piece is cut so that its join with the block has at most ``out_rows`` rows
(counted beforehand from the block's rows per key; a single streamed row matches at most
``out_rows`` rows of a block), and a cut that matches nothing is not joined at all.

Unmatched rows (left, right and outer joins) come out exactly once:

* a block's rows that no streamed row matched, once the whole other side has gone by;
* the streamed side's rows that no block matched: each piece keeps a bitmap of its rows
  matched so far (one bit a row, the pieces' only state across blocks), and the last
  block's pass emits the rows still unmarked, piece by piece, without another pass.

Unmatched rows are joined with the other side's empty frame, so they have pandas' values
(and the dtypes of such rows: the caller casts every frame to the whole join's).
Concatenated, the frames are :meth:`.joins.Join.join` of the two whole sides, in another
row order. With a block as large as the blocked side (one block), this is the join of one
side in chunks against the other held whole.

>>> import pandas as pd
>>> from shuffle_kit.kernels.joins import Join
>>> left = pd.DataFrame({'k': [1, 1, 2, 4], 'a': [1, 2, 3, 4]})
>>> right = pd.DataFrame({'k': [1, 1, 3], 'b': [5, 6, 7]})
>>> j = Join(['k'], ['k'], 'outer', ('_x', '_y'), on=True)
>>> frames = join_blocks(j, [left[:3], left[3:]], 1, lambda: [right[:2], right[2:]], 'left',
...                      (left[:0], right[:0]), out_rows=2)
>>> pd.concat(frames).sort_values(['k', 'a', 'b']).values.tolist()
[[1.0, 1.0, 5.0], [1.0, 1.0, 6.0], [1.0, 2.0, 5.0], [1.0, 2.0, 6.0], [2.0, 3.0, nan], [3.0, nan, 7.0], [4.0, 4.0, nan]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import numpy as np
import pandas as pd

from .joins import Join

_BLOCK_ROW = "__shuffle_kit_block_row__"
_PIECE_ROW = "__shuffle_kit_piece_row__"
_ROWS = "__shuffle_kit_rows__"


def join_blocks(
    join: Join,
    pieces: Iterable[pd.DataFrame],
    block_rows: int,
    stream: Callable[[], Iterable[pd.DataFrame]],
    blocked: str,
    empty: tuple[pd.DataFrame, pd.DataFrame],
    out_rows: int,
) -> Iterator[pd.DataFrame]:
    """The frames of ``join`` of two sides: side ``blocked`` ('left' or 'right') given as
    ``pieces``, read once into blocks of at most ``block_rows`` rows (and ``out_rows`` of a
    key), and the other side streamed anew by ``stream()`` for each block (module
    docstring); ``empty``: the (left, right) sides without rows; ``out_rows``: the rows one
    step's join may have. Frames without rows are left out."""
    if blocked not in ("left", "right"):
        raise ValueError(f"blocked must be 'left' or 'right', not {blocked!r}")
    streamed = "right" if blocked == "left" else "left"
    keeps_blocked = join.how in ("outer", blocked)
    keeps_streamed = join.how in ("outer", streamed)
    step = replace(join, how="inner")
    empty_blocked, empty_streamed = empty if blocked == "left" else empty[::-1]
    keys_blocked, keys_streamed = (join.left_on, join.right_on) if blocked == "left" else (join.right_on, join.left_on)
    out_rows = max(1, out_rows)

    def ordered(b: pd.DataFrame, s: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return (b, s) if blocked == "left" else (s, b)

    seen: list[np.ndarray] = []  # per streamed piece: its rows matched so far, packed bits
    nblocks = 0
    for block, last in _blocks(pieces, max(1, block_rows), out_rows, keys_blocked):
        nblocks += 1
        counts = _key_counts(block, keys_blocked, join.nulls_equal)
        numbered = block.assign(**{_BLOCK_ROW: np.arange(len(block))}) if keeps_blocked else block
        hit = np.zeros(len(block), dtype=bool)
        for j, piece in enumerate(stream()):
            piece = piece.reset_index(drop=True)
            marks = np.zeros(len(piece), dtype=bool)
            if keeps_streamed:
                if j == len(seen):
                    seen.append(np.packbits(marks))
                marks = np.unpackbits(seen[j], count=len(piece)).astype(bool)
            for start, stop, matches in _cuts(counts, piece, keys_streamed, len(block), out_rows):
                out = None
                if matches:
                    part = piece.iloc[start:stop]
                    if keeps_streamed:
                        part = part.assign(**{_PIECE_ROW: np.arange(start, stop)})
                    out = step.join(*ordered(numbered, part))
                    if keeps_blocked:
                        hit[out.pop(_BLOCK_ROW).to_numpy(dtype=np.intp)] = True
                    if keeps_streamed:
                        marks[out.pop(_PIECE_ROW).to_numpy(dtype=np.intp)] = True
                    if len(out):
                        yield out
                    del out, part
                if keeps_streamed and last and not marks[start:stop].all():  # matched by no block
                    yield join.join(*ordered(empty_blocked, piece.iloc[start:stop][~marks[start:stop]]))
            if keeps_streamed:
                seen[j] = np.packbits(marks)
            del piece
        if keeps_blocked and not hit.all():
            yield join.join(*ordered(block[~hit], empty_streamed))
        del block, numbered
    if nblocks == 0 and keeps_streamed:  # no row to block: the streamed side is all unmatched
        for piece in stream():
            if len(piece):
                yield join.join(*ordered(empty_blocked, piece))


def blocks(pieces: Iterable[pd.DataFrame], rows: int, per_key: int, keys: list) -> Iterator[pd.DataFrame]:
    """``pieces`` regrouped, in order, into frames of ``rows`` rows, each closed early
    where one more row would give a key (columns ``keys``) more than ``per_key`` rows in it.

    >>> import pandas as pd
    >>> pieces = [pd.DataFrame({'k': [1, 2, 1, 1, 3]}), pd.DataFrame({'k': [1, 4, 5, 6]})]
    >>> [b['k'].tolist() for b in blocks(pieces, 4, 2, ['k'])]
    [[1, 2, 1], [1, 3, 1, 4], [5, 6]]
    """
    return (block for block, _ in _blocks(pieces, rows, per_key, keys))


def _blocks(pieces: Iterable[pd.DataFrame], rows: int, per_key: int, keys: list
            ) -> Iterator[tuple[pd.DataFrame, bool]]:
    """(block, whether it is the last) for :func:`blocks`; a block that ends a piece waits
    for the next piece with rows, to know whether it is the last."""
    on = list(range(len(keys)))
    held: list[pd.DataFrame] = []
    n = 0
    counts: pd.DataFrame | None = None  # the held rows per key, once per_key may bind
    ready: pd.DataFrame | None = None
    for piece in pieces:
        start = 0
        while start < len(piece):
            if ready is not None:
                yield ready, False
                ready = None
            segment = piece.iloc[start:start + rows - n]
            take = len(segment)
            if per_key < rows:
                frame = segment[keys].set_axis(on, axis=1).reset_index(drop=True)
                take = _first_over(frame, counts, per_key, on)
                if take:
                    counts = _merge_counts(counts, frame.iloc[:take], on)
            if take:
                held.append(segment.iloc[:take])
                n, start = n + take, start + take
            if n == rows or take < len(segment):
                ready = _concat(held)
                held, n, counts = [], 0, None
    if ready is not None:
        yield ready, not held
    if held:
        yield _concat(held), True


def _first_over(frame: pd.DataFrame, counts: pd.DataFrame | None, per_key: int, on: list) -> int:
    """The first row of ``frame`` that gives its key more than ``per_key`` rows, counting
    the rows already held (``counts``); ``len(frame)`` if none does. Prefixes twice as long
    each time are looked at, so a block costs about its own rows, not the segment's."""
    length = min(len(frame), max(1024, 2 * per_key))
    while True:
        prefix = frame.iloc[:length]
        within = prefix.groupby(on, dropna=False, sort=False, observed=True).cumcount().to_numpy() + 1
        if counts is not None:
            prior = pd.merge(prefix, counts, on=on, how="left", sort=False)[_ROWS]
            within = within + prior.fillna(0).to_numpy(dtype=np.int64)
        over = np.flatnonzero(within > per_key)
        if len(over):
            return int(over[0])
        if length == len(frame):
            return length
        length = min(len(frame), 2 * length)


def _merge_counts(counts: pd.DataFrame | None, frame: pd.DataFrame, on: list) -> pd.DataFrame:
    """``counts`` (keys ``on`` and ``_ROWS``) with the rows of ``frame`` added."""
    new = frame.groupby(on, dropna=False, sort=False, observed=True).size().rename(_ROWS).reset_index()
    if counts is None:
        return new
    both = pd.concat([counts, new], ignore_index=True)
    return both.groupby(on, dropna=False, sort=False, observed=True)[_ROWS].sum().reset_index()


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0].reset_index(drop=True) if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _key_counts(block: pd.DataFrame, keys: list, nulls_equal: bool) -> pd.DataFrame:
    """The block's distinct keys (as columns 0, 1, ...) and their rows (``_ROWS``); null
    keys left out where they match nothing."""
    frame = block[keys].set_axis(list(range(len(keys))), axis=1)
    if not nulls_equal:
        frame = frame[~frame.isna().any(axis=1).to_numpy(dtype=bool)]
    return _merge_counts(None, frame, list(range(len(keys))))


def _cuts(counts: pd.DataFrame, piece: pd.DataFrame, keys: list, block_rows: int, out_rows: int
          ) -> Iterator[tuple[int, int, int]]:
    """(start, stop, rows joined) for row ranges of ``piece`` whose join with the block
    (its rows per key: ``counts``) has at most ``out_rows`` rows, or a single row; the rows
    joined are -1 where not counted (a piece too small to need it)."""
    if len(piece) * block_rows <= out_rows:  # no cut can be needed
        if len(piece):
            yield 0, len(piece), -1
        return
    frame = piece[keys].set_axis(list(range(len(keys))), axis=1)
    per_row = pd.merge(frame, counts, on=list(range(len(keys))), how="left", sort=False)[_ROWS]
    cumulative = np.cumsum(per_row.fillna(0).to_numpy(dtype=np.int64))
    start = 0
    while start < len(piece):
        before = int(cumulative[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(cumulative, before + out_rows, side="right")))
        yield start, stop, int(cumulative[stop - 1]) - before
        start = stop
