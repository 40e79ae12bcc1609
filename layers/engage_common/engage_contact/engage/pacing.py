"""This container's own pace toward Engage: at most `rate` requests a second after a burst."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RequestPacer:
    """At most `rate` requests per second from this container (shared by its threads), after a burst.

    A generic cell-rate algorithm: in any one-second window at most `rate + burst` requests start, and a
    whole SQS batch (10 records) can start at once.
    """

    def __init__(self, rate: float, burst: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self.credit = max(burst - 1, 0) * self.interval
        self.clock = clock
        self._due = 0.0  # when the next request is due if none had been sent early
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait before using it."""
        with self._lock:
            now = self.clock()
            due = max(self._due, now)
            self._due = due + self.interval
            return max(due - now - self.credit, 0.0)
