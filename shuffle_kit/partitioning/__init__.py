"""The out-of-core file jobs (:func:`shuffle_kit.partition`, ``shuffle-kit partition``: files
in, a file per hash partition or per key value out; :func:`shuffle_kit.join`, ``shuffle-kit
join``: two inputs in, a file per partition pair of their join out).

- :mod:`~shuffle_kit.partitioning.job`: the run, and the public :func:`shuffle_kit.partition`
  (what ``shuffle-kit partition`` calls);
- :mod:`~shuffle_kit.partitioning.join_job`: the join job, and the public
  :func:`shuffle_kit.join` (what ``shuffle-kit join`` calls): both inputs partitioned alike
  by the engine, joined a partition pair at a time into a file per pair;
- :mod:`~shuffle_kit.partitioning.options`: what a job is asked to do, checked before any work;
- :mod:`~shuffle_kit.partitioning.job_inputs`: the input opened and checked (files, or data);
- :mod:`~shuffle_kit.partitioning.destination`: ``--out`` checked (and what an append adds to);
- :mod:`~shuffle_kit.partitioning.publish_local`: the finished output put in place locally, and what
  killed jobs left cleaned up; :mod:`~shuffle_kit.partitioning.publish_objects`: the same for
  stores without rename (S3, GCS, Azure);
- :mod:`~shuffle_kit.partitioning.summary`: what a job did, and the skew in its files;
- :mod:`~shuffle_kit.partitioning.engine`: hash partitions into files, for any partition
  count and memory limit (open files or sorted runs);
- :mod:`~shuffle_kit.partitioning.layout`: :class:`Layout`, what each output file looks like
  (rows per file and per row group, key columns kept, sort order);
- :mod:`~shuffle_kit.partitioning.writers`: one writer per output file, series of files, and a
  pool of them;
- :mod:`~shuffle_kit.partitioning.sorting`: rows sorted in bounded memory (runs merged);
- :mod:`~shuffle_kit.partitioning.hive`: hive directory names of key values, as pyarrow writes them;
- :mod:`~shuffle_kit.partitioning.demo`: ``shuffle-kit demo``.
"""
