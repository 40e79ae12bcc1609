"""Whose turn it is to call Engage: the deployment's one rate budget, as the client sees it.

The client asks a `RateBudget` for its turn before every request (retries and lookups
included). The shared budget lives in `aws.rate_budget`; `FallbackPacer` is this container's
own share of it, used only when the shared one cannot be consulted (or there is no table).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import EngageRateLimited

# A turn is used no later than this after its time. A thread that wakes up later than that (its process was
# busy, its CPU given to another) gives the turn up and takes the next one: sent late, it would start in the
# same second as the turns after it, and the budget's bound on any one-second window would not hold.
LATE_SECONDS = 0.03


class RateBudget(Protocol):
    def acquire(self, within: float) -> float:
        """Take the next turn; the seconds to wait before using it, at most `within`.

        Raises EngageRateLimited (with `retry_after`) when the turn is further away than `within`.
        """
        ...


class FallbackPacer:
    """The FALLBACK: this container's own share of the budget (`rate` a second after a small burst).

    A generic cell-rate algorithm: in any one-second window at most `rate + burst` requests start.
    The composition root gives it the budget divided by the containers the template lets run at once.
    """

    def __init__(self, rate: float, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self.credit = max(burst - 1, 0) * self.interval
        self.clock = clock
        self._due = 0.0  # when the next request is due if none had been sent early
        self._lock = threading.Lock()

    def reserve(self, after: float = 0.0) -> float:
        """Take the next slot, none sooner than `after` seconds from now; the seconds to wait before using it."""
        with self._lock:
            now = self.clock()
            due = max(self._due, now + after)
            self._due = due + self.interval
            return max(due - now - (self.credit if not after else 0.0), 0.0)

    def pending(self) -> float:
        """Seconds until the slots already given out are used up."""
        with self._lock:
            return max(self._due - self.clock(), 0.0)

    def acquire(self, within: float, after: float = 0.0) -> float:
        wait = self.reserve(after)
        if wait > within:
            raise too_long(wait)
        return wait


class BackgroundShare:
    """A backfill's turns: first its own pace (a SHARE of the budget), then a turn of the deployment's budget.

    Kept below the budget, background work never builds a backlog of turns in the shared schedule, so a live
    call finds its turn as soon as it would with no backfill running (the rest of the budget is always free).
    """

    def __init__(self, budget: RateBudget, share: RateBudget, sleep: Callable[[float], None] = time.sleep) -> None:
        self.budget = budget
        self.share = share
        self.sleep = sleep

    def acquire(self, within: float) -> float:
        wait = self.share.acquire(within)
        if wait > 0:
            self.sleep(wait)
        return self.budget.acquire(max(within - wait, 0.0))


def wait_for_turn(
    budget: RateBudget,
    within: Callable[[], float],
    sleep: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Take a turn and wait for it; a turn woken up for too late (LATE_SECONDS) is given up and another taken.

    `within()`: the longest the caller may still wait (asked again for every turn). The turns given up.
    """
    missed = 0
    while True:
        wait = budget.acquire(within())
        if wait <= 0:
            return missed
        due = clock() + wait
        sleep(wait)
        if clock() - due <= LATE_SECONDS:
            return missed
        missed += 1


def too_long(wait: float) -> EngageRateLimited:
    """The answer to a turn further away than the caller may wait."""
    return EngageRateLimited(
        "the deployment's request budget toward Engage is used up for now", retry_after=max(math.ceil(wait), 1)
    )
