"""The rows of distinct 64-bit hashes, found by hash: a NumPy table built once and probed
many times, each probing step vectorised over the hashes still unresolved.

A join's held dimension table is probed by every chunk of its fact table: a hash table of
its keys built per probe (Arrow's ``index_in`` builds one from its value set on every
call) costs the whole dimension each time. This one is built once, by a sort. Its slots
(at least twice the hashes: at most half full) hold a hash and its row, in increasing
order of hash, each hash in the first free slot from its home (its top bits: homes
increase with the hashes) on: linear probing, whose slots, filled in the order of the
hashes, are placed by one running maximum instead of a loop over rows. A hash is found
by reading slots from its home on until it is met, or a slot is empty or holds a larger
hash: a round per slot read, each over the hashes still going (at most half full, the
runs are short). An empty slot holds the largest hash and row -1: every probe stops there
(no hash is larger) without a second test of whether the slot is taken, and a hash equal
to it finds row -1, none.

Two equal hashes are found while building (:attr:`HashIndex.distinct` is then False): the
table answers only for distinct hashes. Equal hashes of unequal values (a 64-bit
collision) are the caller's to rule out, by comparing the values a hash finds.

>>> import numpy as np
>>> index = HashIndex(np.array([30, 10, 20], dtype=np.uint64))
>>> index.distinct, index.find(np.array([20, 5, 30], dtype=np.uint64)).tolist()
(True, [2, -1, 0])
>>> HashIndex(np.array([7, 7], dtype=np.uint64)).distinct
False
"""

from __future__ import annotations

import numpy as np

_EMPTY = np.uint64(2**64 - 1)  # an empty slot's hash and row (-1)


class HashIndex:
    """The row of each of ``hashes`` (uint64), found by hash; :attr:`distinct` tells
    whether no hash repeats (else a repeated hash finds one of its rows)."""

    def __init__(self, hashes: np.ndarray):
        n = len(hashes)
        bits = max(1, (2 * n - 1).bit_length())
        self.shift = np.uint64(64 - bits)
        order = np.argsort(hashes)
        ordered = hashes[order]
        self.distinct = not bool((ordered[1:] == ordered[:-1]).any())
        homes = (ordered >> self.shift).astype(np.int64)
        steps = np.arange(n, dtype=np.int64)
        # the i-th hash's slot: its home, or the slot after the (i-1)-th's if that is further
        slots = np.maximum.accumulate(homes - steps) + steps if n else steps
        size = max(1 << bits, int(slots[-1]) + 1 if n else 0) + 1  # (the last slot stays empty: probes stop)
        # a slot is its hash and its row side by side (a probe reads one cache line, not
        # two), gathered as one 16-byte item: a complex128, copied bit for bit
        table = np.full(2 * size, _EMPTY, dtype=np.uint64)  # (hash: the largest; row: -1)
        table[2 * slots] = ordered
        table[2 * slots + 1] = order.astype(np.int64).view(np.uint64)
        self.slots = table.view(np.complex128)

    @property
    def nbytes(self) -> int:
        """The bytes the table holds."""
        return int(self.slots.nbytes)

    def find(self, hashes: np.ndarray) -> np.ndarray:
        """The row of each of ``hashes`` (uint64), -1 where none has it (int64)."""
        wanted = np.ascontiguousarray(hashes, dtype=np.uint64)
        slots = (wanted >> self.shift).view(np.int64)  # (shifted by at least a bit: below 2**63)
        # the first round, over every hash: most are found in their home slot. (np.take:
        # faster than indexing; every slot read is in the table, "clip" spares the check)
        read = np.take(self.slots, slots, mode="clip").view(np.uint64)
        held, occupant = read[0::2], read[1::2].view(np.int64)
        found = np.where(held == wanted, occupant, -1)  # (an empty slot's row is -1)
        at = np.flatnonzero(held < wanted)
        slots, wanted = slots[at] + 1, wanted[at]
        while len(slots):
            read = np.take(self.slots, slots, mode="clip").view(np.uint64)
            held, occupant = read[0::2], read[1::2].view(np.int64)
            hit = held == wanted
            found[at[hit]] = occupant[hit]
            going = np.flatnonzero(held < wanted)
            at, slots, wanted = at[going], slots[going] + 1, wanted[going]
        return found
