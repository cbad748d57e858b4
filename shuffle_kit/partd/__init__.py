"""partd 1.4's public layout on top of shuffle_kit, so partd programs run unchanged::

    import sys, shuffle_kit.partd
    sys.modules["partd"] = shuffle_kit.partd

Only names and module paths live here; every class is shuffle_kit's own. The
submodules import shuffle_kit absolutely, because under that alias Python loads
``partd.file`` and friends as modules of a package named ``partd``.
"""

# re-exports: partd programs import these names and modules from here
from . import buffer, compressed, core, dict, encode, file, numpy, pandas, pickle, python, utils, zmq  # noqa: F401
from .buffer import Buffer  # noqa: F401
from .compressed import *  # noqa: F401,F403  (Snappy, ZLib, BZ2, LZ4, Zstd, Blosc if installed)
from .dict import Dict  # noqa: F401
from .encode import Encode  # noqa: F401
from .file import File  # noqa: F401
from .numpy import Numpy  # noqa: F401
from .pandas import PandasBlocks, PandasColumns  # noqa: F401
from .pickle import Pickle  # noqa: F401
from .python import Python  # noqa: F401
from .zmq import Client, Server  # noqa: F401

__version__ = "1.4.2"
