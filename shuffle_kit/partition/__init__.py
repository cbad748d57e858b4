"""The out-of-core partition job: files in, a file per hash partition or per key value out.

- :mod:`~shuffle_kit.partition.job`: the run, and the public :func:`shuffle_kit.partition`
  (what ``shuffle-kit partition`` calls);
- :mod:`~shuffle_kit.partition.options`: what a job is asked to do, checked before any work;
- :mod:`~shuffle_kit.partition.sources`: the input opened and checked (files, or data);
- :mod:`~shuffle_kit.partition.destination`: ``--out`` checked (and what an append adds to);
- :mod:`~shuffle_kit.partition.publish`: the finished output put in place locally, and what
  killed jobs left cleaned up; :mod:`~shuffle_kit.partition.object_store`: the same for
  stores without rename (S3, GCS, Azure);
- :mod:`~shuffle_kit.partition.summary`: what a job did, and the skew in its files;
- :mod:`~shuffle_kit.partition.engine`: hash partitions into files, for any partition
  count and memory limit (open files or sorted runs);
- :mod:`~shuffle_kit.partition.layout`: :class:`Layout`, what each output file looks like
  (rows per file and per row group, key columns kept, sort order);
- :mod:`~shuffle_kit.partition.writers`: one writer per output file, series of files, and a
  pool of them;
- :mod:`~shuffle_kit.partition.sorting`: rows sorted in bounded memory (runs merged);
- :mod:`~shuffle_kit.partition.hive`: hive directory names of key values, as pyarrow writes them;
- :mod:`~shuffle_kit.partition.demo`: ``shuffle-kit demo``.

The function ``shuffle_kit.partition`` and this subpackage share a name: import the
modules with ``from shuffle_kit.partition import job``.
"""
