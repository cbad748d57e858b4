"""What every operation computes per chunk, as pure functions over Arrow tables: the
documented hash (:mod:`.hashing`), the split of a chunk into pieces per partition
(:mod:`.split`), NumPy views of Arrow buffers (:mod:`.arrow_numpy`), the key checks and
the conversion of a chunk to a table (:mod:`.keys`), and range partitioning (:mod:`.ranges`).

They hold no state between chunks and start no threads: ``shuffle()``, the partition job
and the dask integration call them alike, so their results agree.
"""
