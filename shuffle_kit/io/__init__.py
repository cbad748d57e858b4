"""Where data lives and how it is read: filesystems (local disks, object stores, fsspec),
the discovery of input files (paths, globs, directories, hive partitions), and the readers
that turn every input kind (pandas, Arrow, polars, the Arrow C stream, Parquet, CSV and
Arrow IPC files) into a stream of bounded chunks, with :class:`ReadOptions`; and the record
of how the partition job partitioned a file (:mod:`~shuffle_kit.io.provenance`), by which
an output hashed on a join's keys is read partition by partition
(:mod:`~shuffle_kit.io.partitioned`).

It stands on the errors and the exact pandas <-> Arrow conversion (:mod:`shuffle_kit.frames`)
only; the kernels, the shuffle and the partition job read through it.
"""
