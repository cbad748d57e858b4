"""Connection events from a ZeroMQ socket monitor, for the server and its clients."""

from __future__ import annotations

from collections.abc import Iterator

import zmq
from zmq.utils.monitor import parse_monitor_message


def pending_events(monitor: zmq.Socket) -> Iterator[int]:
    """The events waiting on ``monitor`` (``zmq.EVENT_*``), without blocking."""
    for event, _ in pending_event_values(monitor):
        yield event


def pending_event_values(monitor: zmq.Socket) -> Iterator[tuple[int, int]]:
    """The events waiting on ``monitor`` with the value ZeroMQ gives each (an errno for
    failures, a file descriptor or an interval for others), without blocking."""
    while True:
        try:
            frames = monitor.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        message = parse_monitor_message(frames)
        yield message["event"], message["value"]


def close_monitored(sock: zmq.Socket, monitor: zmq.Socket, linger: int | None = None) -> None:
    """Close ``sock`` and its ``monitor``, never blocking on them.

    Stopping a monitor sends it a last event: the monitor is drained first (so that event
    finds room), stopped while its reading end is still open, and closed only then. A
    monitor closed before it is stopped can leave the stop, or the I/O thread's next
    event, waiting forever for a reader that is gone.

    >>> context = zmq.Context()
    >>> sock = context.socket(zmq.ROUTER)
    >>> close_monitored(sock, sock.get_monitor_socket())
    >>> sock.closed
    True
    >>> context.term()
    """
    try:
        for _ in pending_event_values(monitor):
            pass
        sock.disable_monitor()
    except zmq.ZMQError:
        pass
    monitor.close(linger)
    sock.close(linger)

