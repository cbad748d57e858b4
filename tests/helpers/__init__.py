"""What several test modules share, in one place: running the command line
(:mod:`.cli`), frames and models for the codecs and the shuffle (:mod:`.frames`,
:mod:`.models`), dask frames (:mod:`.dask_frames`), store servers (:mod:`.servers`) and
faults injected into dask shuffles (:mod:`.dask_faults`)."""
