"""partd 1.4's public layout on top of shuffle_kit, so partd programs run unchanged::

    import sys, shuffle_kit.partd
    sys.modules["partd"] = shuffle_kit.partd

Only names and module paths live here; every class is shuffle_kit's own. The
submodules import shuffle_kit absolutely, because under that alias Python loads
``partd.file`` and friends as modules of a package named ``partd``.
"""

from . import buffer, core, dict, file, utils, zmq
from .buffer import Buffer
from .dict import Dict
from .file import File
from .zmq import Client, Server
from . import compressed, encode, numpy, pandas, pickle, python
from .compressed import *  # noqa: F401,F403  (Snappy, ZLib, BZ2, LZ4, Zstd, Blosc if installed)
from .encode import Encode
from .numpy import Numpy
from .pandas import PandasBlocks, PandasColumns
from .pickle import Pickle
from .python import Python

__version__ = "1.4.2"
