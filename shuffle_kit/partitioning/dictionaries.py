"""One dictionary per column for a whole partition job.

A Parquet input gives each row group's dictionary column a dictionary of its own, so a file
gathered from pieces of many chunks would carry as many dictionaries, each to be hashed into
one before the file is written, however few rows the file holds. Here each chunk's
dictionary is mapped, once, into the job's dictionary of that column, which only grows
(new values go at its end): the pieces of every chunk index into it, or into an earlier,
shorter state of it, so joining them is putting indices end to end, and a file's dictionary
is the job's with the entries no row uses dropped
(:func:`~shuffle_kit.partitioning.writers.one_dictionary_each`).

The job's dictionaries are bounded (``max_bytes`` for all columns together, which the job
counts against its memory limit): a column whose dictionary would pass the bound stops
growing it, and its later chunks keep their own dictionaries (the writers take any mix).
What is mapped depends only on the chunks, in their order, never on the thread count.

Each input row group gives every batch read from it a copy of the same dictionary: the
mapping of the last dictionary of each column is kept, and a dictionary equal to it is
mapped with it (comparing two dictionaries is a fraction of looking every value up).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


class SharedDictionaries:
    """Chunks' dictionary columns ``names`` remapped into one dictionary per column, of at
    most ``max_bytes`` in all.

    >>> d = lambda i, v: pa.DictionaryArray.from_arrays(pa.array(i, pa.int32()), pa.array(v))
    >>> shared = SharedDictionaries(['s'], 2**20)
    >>> a, b = shared(pa.table({'s': d([0, 1], ['x', 'y'])})), shared(pa.table({'s': d([0, 1], ['z', 'x'])}))
    >>> b.column('s').to_pylist(), b.column('s').chunk(0).indices.to_pylist(), shared.values['s'].to_pylist()
    (['z', 'x'], [2, 0], ['x', 'y', 'z'])
    """

    def __init__(self, names: Sequence[str], max_bytes: int):
        self.max_bytes = max_bytes
        self.values: dict[str, pa.Array] = {}
        self.stopped: set[str] = set()
        self.last: dict[str, tuple[pa.Array, pa.Array]] = {}  # column -> a dictionary, its lookup
        self.names = list(names)

    def __call__(self, chunk: pa.Table) -> pa.Table:
        for name in self.names:
            i = chunk.schema.get_field_index(name)
            if name in self.stopped or i < 0 or not pa.types.is_dictionary(chunk.schema.field(i).type):
                continue
            mapped = self._mapped(name, chunk.column(i))
            if mapped is None:
                self.stopped.add(name)
                self.values.pop(name, None)
            else:
                chunk = chunk.set_column(i, chunk.schema.field(i), mapped)
        return chunk

    def _mapped(self, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray | None:
        """``column`` indexing into the job's dictionary of ``name``, grown by its new
        values; None if that would pass the bound (or the dictionary holds a null)."""
        import pyarrow.compute as pc

        t = column.type
        known = self.values.get(name)
        if known is None:
            known = pa.nulls(0, t.value_type)  # (pa.array would import pandas)
        lookups: list[pa.Array | None] = []
        for chunk in column.chunks:
            dictionary = chunk.dictionary
            if dictionary.null_count:
                return None  # (Arrow looks no null up in a value set)
            if len(dictionary) <= len(known) and known.slice(0, len(dictionary)).equals(dictionary):
                lookups.append(None)  # its indices hold as they are
                continue
            last = self.last.get(name)
            if last is not None and last[0].equals(dictionary):
                lookups.append(last[1])  # (the job's dictionary only grows: the lookup holds)
                continue
            found = pc.index_in(dictionary, value_set=known)
            if found.null_count:
                new = pc.unique(dictionary.filter(pc.is_null(found)))
                if (sum(v.nbytes for k, v in self.values.items() if k != name) + known.nbytes + new.nbytes
                        > self.max_bytes or len(known) + len(new) > np.iinfo(str(t.index_type)).max):
                    return None
                known = pa.concat_arrays([known, new])
                found = pc.index_in(dictionary, value_set=known)
            lookup = found.cast(t.index_type)
            self.last[name] = (dictionary, lookup)
            lookups.append(lookup)
        self.values[name] = known
        # (safe=False: every index holds in the job's dictionary by construction; Arrow would
        # check each of them again)
        return pa.chunked_array(
            [pa.DictionaryArray.from_arrays(c.indices if at is None else at.take(c.indices), known, ordered=t.ordered,
                                            safe=False)
             for c, at in zip(column.chunks, lookups)], t,
        )
