"""Connection events from a ZeroMQ socket monitor, for the server and its clients."""

from __future__ import annotations

from collections.abc import Iterator

import zmq
from zmq.utils.monitor import parse_monitor_message


def pending_events(monitor: zmq.Socket) -> Iterator[int]:
    """The events waiting on ``monitor`` (``zmq.EVENT_*``), without blocking."""
    while True:
        try:
            frames = monitor.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        yield parse_monitor_message(frames)["event"]
