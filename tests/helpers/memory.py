"""Peak resident memory of a child process, for the memory tests: :data:`WATCH_PEAK_RSS` is
the start of a script that samples its own RSS in a thread from then on (``base``: the RSS
when it starts; ``peak[0]``: the largest seen) until the script calls ``stop_watching()``."""

WATCH_PEAK_RSS = """
import threading as _threading, time as _time, psutil as _psutil
proc = _psutil.Process()
base = proc.memory_info().rss
peak = [base]
_stopped = []
def _watch():
    while not _stopped:
        peak[0] = max(peak[0], proc.memory_info().rss)
        _time.sleep(0.005)
_watcher = _threading.Thread(target=_watch, daemon=True)
_watcher.start()
def stop_watching():
    _stopped.append(True)
    _watcher.join()
"""


def run_watched(script: str, *args: object, timeout: float = 600) -> dict:
    """Run ``script`` (which starts with :data:`WATCH_PEAK_RSS` and prints one JSON object)
    in a child interpreter with ``args`` as its argv; the object it printed."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                         check=True, timeout=timeout).stdout
    return json.loads(out)


def assert_frame_held_within(script: str, key: str, bytes_per_row: int, what: str, rows: int = 2_000_000) -> None:
    """Run ``script`` (a frame of ``rows`` rows handled whole in memory by ``key``, printing
    ``base``, ``peak``, ``nbytes``, ``whole`` and ``rows``) and check that it held no more
    than what the in-memory path counts: the new copy, a copy of the keys and
    ``bytes_per_row`` per row, plus the interpreter's and libraries' allowance."""
    mb = 2**20
    r = run_watched(script, rows, key, "1GB")
    assert r["whole"] and r["rows"] == rows
    extra = r["peak"] - r["base"]
    print(f"frame {r['nbytes'] / mb:.0f} MB {what} {key}: peak RSS above baseline {extra / mb:.0f} MB")
    assert extra < 2 * r["nbytes"] + bytes_per_row * rows + 100 * mb, extra / mb
