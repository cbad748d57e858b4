"""partd.file: the File store and partd's list of paths removed at exit."""

import atexit
import os
import shutil

from shuffle_kit.stores.file import File, remove_temporary_stores

# partd programs may append paths here to have them removed at exit
cleanup_files: list[str] = []


@atexit.register
def cleanup() -> None:
    for path in cleanup_files:
        if os.path.exists(path):
            shutil.rmtree(path, ignore_errors=True)
    remove_temporary_stores()


__all__ = ["File", "cleanup_files", "cleanup"]
