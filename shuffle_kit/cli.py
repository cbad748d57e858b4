"""The ``shuffle-kit`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    """Append to a temporary on-disk store from the stores layer and read it back."""
    import time

    from .stores import File

    n_keys, n_appends, size = 1000, 50, 1024
    payload = bytes(range(256)) * (size // 256)
    with File() as store:
        start = time.perf_counter()
        for _ in range(n_appends):
            store.append({k: payload for k in range(n_keys)})
        values = store.get(list(range(n_keys)))
        seconds = time.perf_counter() - start
        assert all(v == payload * n_appends for v in values)
        total = n_keys * n_appends * size
        print(f"store: {store.path}")
        print(f"appended {n_appends} x {n_keys} keys x {size} B and read them back: "
              f"{total / 1e6:.1f} MB in {seconds:.3f} s ({total / 1e6 / seconds:.0f} MB/s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shuffle-kit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a short demonstration on generated data")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
