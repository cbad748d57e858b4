"""Server throughput: shuffle_kit's Server/Shared beside partd 1.4.2's Server/Client.

    python -m benchmarks.server [--repeats 3] [--writers 4]

Workload (issue 4): 4 writer processes, each appending its own 1000 keys x 1 KiB, 25 times,
to one server; then one ``get`` of all 4000 keys by a client in another process. shuffle_kit runs over
ipc:// and tcp://127.0.0.1; partd can only bind a random tcp port (all interfaces). Both
servers run in a thread of this process with their default store, ``Buffer(Dict(), File())``
(everything fits in memory). Write time runs from releasing the writers until the last
append has been applied by the server; the best of ``--repeats`` runs counts, since
the machine is shared.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

N_KEYS, SIZE, APPENDS = 1000, 1024, 25


def _keys(w: int) -> list[str]:
    return [f"w{w}-k{i}" for i in range(N_KEYS)]


def _writer(kind: str, address, w: int, ready, go, results) -> None:
    payload = os.urandom(SIZE)
    data = {k: payload for k in _keys(w)}
    if kind == "partd":
        from partd.zmq import Client

        client = Client(address)
        ready.put(w)
        go.wait()
        for _ in range(APPENDS):
            client.append(data)
        assert client.socket.recv_multipart() == [b"ack"]  # the last append is applied
        results.put(time.monotonic())
        client.socket.close(0)
        client.context.destroy(0)
    else:
        from shuffle_kit import Shared

        client = Shared(address)
        client.ping()
        ready.put(w)
        go.wait()
        for _ in range(APPENDS):
            client.append(data)  # returns once applied
        results.put(time.monotonic())
        client.close()


def _reader(kind: str, address, writers: int, ready, go, results) -> None:
    """One get of every key, timed in its own process (a server serves other processes)."""
    keys = [k for w in range(writers) for k in _keys(w)]
    if kind == "partd":
        from partd.zmq import Client

        client = Client(address)
        ready.put(0)
        go.wait()
        start = time.perf_counter()
        out = client.get(keys)
        read = time.perf_counter() - start
        client.socket.close(0)
        client.context.destroy(0)
    else:
        from shuffle_kit import Shared

        client = Shared(address)
        client.ping()
        ready.put(0)
        go.wait()
        start = time.perf_counter()
        out = client.get(keys)
        read = time.perf_counter() - start
        client.close()
    assert len(out) == len(keys) and all(len(v) == SIZE * APPENDS for v in out), "data lost"
    results.put(read)


def run(kind: str, writers: int) -> tuple[float, float]:
    """(write seconds, read seconds) of one run of the workload against a new server."""
    ctx = mp.get_context("spawn")
    if kind == "partd":
        from partd.zmq import Server

        server = Server()
        address = server.address
    else:
        from shuffle_kit import Server

        server = Server(address=None if kind == "ipc" else "tcp://127.0.0.1:0")
        address = server.address
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_writer, args=(kind, address, w, ready, go, results)) for w in range(writers)]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=60)
        start = time.monotonic()
        go.set()
        write = max(results.get(timeout=300) for _ in procs) - start
        for p in procs:
            p.join()
        reader = ctx.Process(target=_reader, args=(kind, address, writers, ready, go2 := ctx.Event(), results))
        reader.start()
        ready.get(timeout=60)
        go2.set()
        read = results.get(timeout=300)
        reader.join()
        assert reader.exitcode == 0, "data lost"
        return write, read
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args(argv)
    total = args.writers * N_KEYS * SIZE * APPENDS
    print(f"{args.writers} writers x {N_KEYS} keys x {SIZE} B x {APPENDS} appends = {total / 1e6:.0f} MB; "
          f"then one get of all keys; best of {args.repeats} on {os.cpu_count()} cores")
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeats):  # interleave the peers so drift hits them alike
        for kind in ("partd", "ipc", "tcp"):
            w, r = run(kind, args.writers)
            bw, br = best.get(kind, (float("inf"), float("inf")))
            best[kind] = (min(bw, w), min(br, r))
    pw, pr = (total / t / 1e6 for t in best["partd"])
    names = {"partd": "partd 1.4.2 (tcp)", "ipc": "shuffle_kit ipc://", "tcp": "shuffle_kit tcp://127.0.0.1"}
    print(f"{'':30} {'write MB/s':>11} {'x partd':>8} {'read MB/s':>10} {'x partd':>8}")
    for kind in ("partd", "ipc", "tcp"):
        w, r = (total / t / 1e6 for t in best[kind])
        print(f"{names[kind]:30} {w:11.0f} {w / pw:8.1f} {r:10.0f} {r / pr:8.1f}")


if __name__ == "__main__":
    main()
