"""The out-of-core partition job: files in, a file per hash partition or per key value out.

- :mod:`~shuffle_kit.partition.job`: options, checks, the run and its summary, and the
  public :func:`shuffle_kit.partition` (what ``shuffle-kit partition`` calls);
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
