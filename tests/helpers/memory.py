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
