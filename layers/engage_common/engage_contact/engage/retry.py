"""Whether a failed call is tried again within this invocation, and after how long."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIN_ATTEMPT_SECONDS = 0.25  # no attempt is started with less time than this left
# An API caller waits at most this long for its turn in the rate budget, then gets 503 with Retry-After.
API_TURN_SECONDS = 2.0
# An API caller's answer is due within 29 s: each Engage call is tried at most this often (queued work: the policy's).
API_ATTEMPTS = 2


class Deadline:
    """The time this invocation has left for Engage; built from the Lambda context when there is one."""

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        turn_seconds: float | None = None,
        attempts: int | None = None,
    ) -> None:
        self._clock = clock
        self._end = clock() + seconds
        self.turn_seconds = turn_seconds  # the longest wait for a turn in the rate budget; None: as time allows
        self.attempts = attempts  # the most tries of one call in this invocation; None: the retry policy's

    @classmethod
    def from_context(
        cls,
        context: Any,
        reserve_seconds: float = 1.0,
        default_seconds: float = 30.0,
        turn_seconds: float | None = None,
        attempts: int | None = None,
    ) -> Deadline:
        """Lambda's remaining time less `reserve_seconds`, kept for the work after Engage (the handler passes
        aws.clients.AWS_RESERVE_SECONDS: this room may not import aws); `turn_seconds` caps the wait for a
        turn in the rate budget."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        seconds = remaining() / 1000 if callable(remaining) else default_seconds
        return cls(max(seconds - reserve_seconds, 0.0), turn_seconds=turn_seconds, attempts=attempts)

    def remaining(self) -> float:
        return max(self._end - self._clock(), 0.0)

    def allows(self, wait: float) -> bool:
        """Whether an attempt can still start after waiting `wait` seconds."""
        return wait + MIN_ATTEMPT_SECONDS <= self.remaining()

    def turn_within(self) -> float:
        """The longest this call may wait for its turn in the rate budget and still be sent."""
        left = max(self.remaining() - MIN_ATTEMPT_SECONDS, 0.0)
        return left if self.turn_seconds is None else min(left, self.turn_seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries within one invocation: jittered exponential backoff, Retry-After honoured."""

    max_attempts: int = 4
    base_seconds: float = 0.2
    cap_seconds: float = 4.0

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1)))

    def wait_before_next(
        self, attempt: int, retry_after: float | None, deadline: Deadline, max_attempts: int | None = None
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when no further attempt is allowed."""
        if attempt >= (max_attempts or deadline.attempts or self.max_attempts):
            return None
        wait = retry_after if retry_after is not None and math.isfinite(retry_after) else self.backoff(attempt)
        return wait if deadline.allows(wait) else None
