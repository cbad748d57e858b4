import os
import sys

from .cli import console

code = console()
if code == 130:
    # Interrupted, and everything cleaned up: leave now. Under ``python -m``, CPython ends a
    # process whose run saw a KeyboardInterrupt (even one caught, as ours is) by SIGINT once
    # SystemExit is handled, which would turn exit status 130 into death by signal.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
