"""How long a failed SQS record waits before its next receive, and how many receives an outage of hours needs.

Pure arithmetic, no I/O. One number, the outage a deployment must survive (OutageToleranceHours), gives the
queues' maxReceiveCount; the waits are Voyado's background schedule, 10 s, 30 s, 60 s, 300 s, then 900 s
each, so the waits before the last receive add up to at least the tolerance and a message is tried again
within 15 minutes of Engage coming back. No wait exceeds SQS's maximum visibility timeout (12 h).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FIRST_WAITS_SECONDS = (10, 30, 60, 300)
LATER_WAIT_SECONDS = 900
SQS_MAX_VISIBILITY_SECONDS = 12 * 60 * 60
# A message's whole life in its queue (the tolerance and one more wait) stays within the idempotency records'
# lifetime (24 h), so a command applied but not acknowledged is still recognised when it comes again.
MAX_TOLERANCE_HOURS = 23.0


def backoff_for(receive_count: int) -> int:
    """Seconds a record that failed on its `receive_count`-th receive stays hidden."""
    count = max(receive_count, 1)
    wait = FIRST_WAITS_SECONDS[count - 1] if count <= len(FIRST_WAITS_SECONDS) else LATER_WAIT_SECONDS
    return min(wait, SQS_MAX_VISIBILITY_SECONDS)


def waited_before(receive: int) -> int:
    """Seconds between a record's first receive and its `receive`-th, when every receive before failed."""
    return sum(backoff_for(n) for n in range(1, max(receive, 1)))


def max_receive_count_for(tolerance_hours: float) -> int:
    """The fewest receives whose waits before the last one cover an outage of `tolerance_hours`."""
    if not 0 < tolerance_hours <= MAX_TOLERANCE_HOURS or math.isnan(tolerance_hours):
        raise ValueError(f"the outage tolerance must be above 0 and at most {MAX_TOLERANCE_HOURS:g} hours")
    seconds = tolerance_hours * 3600
    receives = 1
    while waited_before(receives) < seconds:
        receives += 1
    return receives


@dataclass(frozen=True)
class QueueSettings:
    """What a function's SQS trigger needs of the deployment (here, not in `sqs`: reading it must not load the
    batch loop, which only the SQS path needs)."""

    dead_letter_queue_url: str | None
    max_receive_count: int | None
    batch_concurrency: int
