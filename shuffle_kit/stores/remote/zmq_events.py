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
