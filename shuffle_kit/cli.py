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


def _serve(args: argparse.Namespace) -> int:
    """Run a store server until SIGTERM/SIGINT (see shuffle_kit.stores.server)."""
    from .stores.server import run_server

    return run_server(args.address, args.path, args.memory_limit, args.secret_key_file, args.authorized_keys_file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shuffle-kit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a short demonstration on generated data")
    demo.set_defaults(run=_demo)
    from .stores.server import parse_size

    serve = commands.add_parser("serve", help="serve a store to other processes over ZeroMQ; "
                                "prints its address, flushes to disk on SIGTERM/SIGINT")
    serve.add_argument("--address", help="ipc://PATH or tcp://HOST:PORT (default: a private ipc:// socket)")
    serve.add_argument("--path", help="directory of the on-disk store (default: a temporary one)")
    serve.add_argument("--memory-limit", type=parse_size, default=1e9, metavar="SIZE",
                       help="bytes held in memory before the largest keys spill to disk (e.g. 2GB; default 1GB)")
    serve.add_argument("--secret-key-file", help="this server's CURVE secret key (required with a non-loopback tcp address)")
    serve.add_argument("--authorized-keys-file", help="the clients' CURVE public keys, one per line")
    serve.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
