"""The deployment's one rate budget toward Engage, shared by every container through the idempotency table.

A generic cell-rate algorithm (GCRA) over one item, `rate-budget`: its `tat` is the moment
(epoch seconds) the deployment's next request is due. Turns are one `1 / rate` apart, so the
turns themselves never crowd: a container takes a LEASE of the next few turns with one
conditional UpdateItem (`tat += n / rate` while `tat` is not behind now, else `tat = now + n / rate`)
and hands them to its own threads. A turn is used no earlier than EARLY before its time and no
later than LATE after it (then it is dropped unused), so in any one-second window at most
`rate * (1 + EARLY + LATE) + 1` requests start, however many containers run. A lease is as large
as the number of this container's threads waiting (at most LEASE_MAX): with a backlog one write
serves LEASE_MAX requests, and an idle container holds nothing another one could have used.

When the table cannot be reached the container uses its FALLBACK (its own share of the budget)
for FALLBACK_SECONDS, logs it once and counts `RateBudgetFallback`; it never fails a command for that.

A slow table: a lease's turns are due from when it was asked, and with a round trip longer than LATE every
turn of a small lease came back too late to use, was dropped, and leased again, without end (one `acquire`
kept writing for as long as the table stayed slow). An idle lease's turns therefore start a round trip ahead
(the last one measured), and a container that got only late turns LATE_LEASES times in a row keeps to its share
until the next whole second, as when the table cannot be reached.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from ..errors import DependencyUnavailable, EngageRateLimited
from ..observability import count, logger
from .table import update_if

KEY = "rate-budget"
LEASE_MAX = 10  # turns one write may take: a whole SQS batch's first requests with one write
EARLY = 0.0  # a turn may be used this long before its time (the burst GCRA allows)
LATE = 0.03  # and this long after it; later, it is dropped unused (as engage.pacing.LATE_SECONDS, once handed out)
FALLBACK_SECONDS = 1.0  # a container on its fallback asks the table again at the next whole second (all at once)
# After an outage the shared turns start this late: the turns the others took on their own shares go first
# (a container's share of 10 threads' turns is given out about this far ahead).
RETURN_SECONDS = 2.0
LATE_LEASES = 3  # leases in a row whose every turn came back late before the container keeps to its share
WRITES_PER_LEASE = 10  # conditional writes lost to other containers before a lease gives up (never seen)
GATHER_SECONDS = 0.05  # while busy, a container waits this long for its other threads before it leases
BUSY_SECONDS = 5.0  # busy: the budget ran ahead of now at our last lease, a turn handed out this recently
EXPIRES_AFTER_SECONDS = 24 * 60 * 60  # the item leaves the table (TTL) a day after the last request


class Turns(Protocol):
    def acquire(self, within: float, after: float = 0.0) -> float: ...

    def pending(self) -> float: ...


class StoreUnreachable(Exception):
    """The table did not answer a lease."""


class SharedRateBudget:
    """`acquire(within)`: this container's next turn in the deployment's budget, leased from the table."""

    def __init__(
        self,
        table_name: str,
        client: Callable[[], Any],
        rate: float,
        fallback: Turns,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        lease_max: int = LEASE_MAX,
        key: str = KEY,
    ) -> None:
        """`client`: builds (once) the container's DynamoDB client; `clock`: wall time, the same in every container;
        `lease_max`: the most turns one lease takes (1 for background work: it never books turns ahead of a live
        call, however many of its threads wait); `key`: the table item the schedule lives in (the deployment's
        budget, or a backfill's share of it)."""
        self.lease_max = lease_max
        self.key = key
        self.table_name = table_name
        self.client = client
        self.rate = rate
        self.fallback = fallback
        self.clock = clock
        self.sleep = sleep
        self._last_turn = float("-inf")  # when this container last handed out a turn
        self._turns: deque[float] = deque()  # leased turns not yet handed out, earliest first
        self._waiting = 0  # this container's threads asking for a turn right now
        self._fallback_until = 0.0
        self._depth = 0.0  # how far ahead of now the shared schedule ran at this container's last lease
        self._fallback_from = 0.0  # the shared turns given out before the outage go first
        self._outage = False  # logged once per outage
        self._lock = threading.Lock()  # one thread at a time hands out turns or leases
        self._counting = threading.Lock()
        self._warmed = False
        self._round_trip = 0.0  # the last lease's round trip: an idle lease's turns start that far ahead

    def acquire(self, within: float) -> float:
        with self._asking():
            busy = self.clock() - self._last_turn < BUSY_SECONDS
            if not self._turns and self.lease_max > 1 and self._depth > GATHER_SECONDS and busy:
                # Busy: the batch's other threads are on their way; one lease for them all (our turn is
                # behind the backlog anyway, so the wait costs no throughput).
                self.sleep(GATHER_SECONDS)
            with self._lock:
                return self._next_turn(within)

    def _next_turn(self, within: float) -> float:
        if not self._warmed:  # a first lease timed from before the client's own start-up would come back late
            self._warmed = True
            getattr(self.client(), "warm", lambda: None)()
        now = self.clock()
        if now < self._fallback_until:
            return self._fallback_turn(now, within)
        self._drop_late(now)
        late_leases = 0
        while not self._turns:
            if late_leases == LATE_LEASES:  # the table answers too slowly for its turns: bounded, not a livelock
                self._fall_back(now, StoreUnreachable("every leased turn came back late"))
                return self._fallback_turn(now, within)
            try:
                leased = self._lease(now, min(max(self._waiting, 1), self.lease_max))
            except StoreUnreachable as exc:
                self._fall_back(now, exc)
                return self._fallback_turn(now, within)
            self._turns.extend(leased)
            now = self.clock()
            # A slow answer may have let some turns pass: using them late would crowd the next ones. The lease's
            # last turn is still ours until the turn after it (no one else's lies before that): it is kept.
            self._drop_late(now, keep_before=leased[-1] + 1 / self.rate)
            late_leases += 1
        wait = max(self._turns[0] - EARLY - now, 0.0)
        if wait > within:
            raise EngageRateLimited(
                "the deployment's request budget toward Engage is used up for now", retry_after=max(round(wait), 1)
            )
        self._turns.popleft()
        self._last_turn = now
        return wait

    def _fallback_turn(self, now: float, within: float) -> float:
        """A turn of this container's own share, after the shared turns already given out (they are still used)."""
        after = max(self._fallback_from - now, 0.0)
        if after > within:
            raise EngageRateLimited(
                "the deployment's request budget toward Engage is used up for now", retry_after=max(round(after), 1)
            )
        return self.fallback.acquire(within, after=after)

    def _drop_late(self, now: float, keep_before: float = float("-inf")) -> None:
        while self._turns and self._turns[0] + LATE < now:
            if len(self._turns) == 1 and now < keep_before:
                return  # the last turn of a lease just taken, used within its own slot
            self._turns.popleft()  # too late to use without crowding the next turns

    @contextmanager
    def _asking(self) -> Iterator[None]:
        with self._counting:
            self._waiting += 1
        try:
            yield
        finally:
            with self._counting:
                self._waiting -= 1

    # --- the store ------------------------------------------------------------------------------------
    def _lease(self, now: float, turns: int) -> list[float]:
        """The next `turns` turns of the deployment, taken with one conditional write (two when idle meets busy)."""
        span = turns / self.rate
        # Busy first while this container is busy (that is when writes count); a container that handed out no
        # turn lately (a cold start, say) tries the idle budget first: if the others are busy its one write
        # more costs nothing, its turn being behind theirs anyway.
        behind = now - self._last_turn >= BUSY_SECONDS
        for _ in range(WRITES_PER_LEASE):
            end = self._restart(now, span) if behind else self._extend(now, span)
            if end is not None:
                self._outage, self._depth = False, max(end - span - now, 0.0)
                start = end - span
                return [start + n / self.rate for n in range(turns)]
            behind = not behind
            now = self.clock()
        raise StoreUnreachable("the rate budget kept changing under every lease")  # contention, never seen

    def _extend(self, now: float, span: float) -> float | None:
        """Busy: the next turns after the last one leased."""
        return self._update(
            "SET tat = tat + :span, expiration = :expires",
            "tat >= :now",
            {":span": span, ":now": now, ":expires": int(now) + EXPIRES_AFTER_SECONDS},
        )

    def _restart(self, now: float, span: float) -> float | None:
        """Idle (or never used): the turns start now, or once this container's fallback turns are used."""
        start = now + max(self.fallback.pending(), RETURN_SECONDS if self._outage else 0.0, self._round_trip)
        return self._update(
            "SET tat = :end, expiration = :expires",
            "attribute_not_exists(tat) OR tat < :now",
            {":end": start + span, ":now": now, ":expires": int(now) + EXPIRES_AFTER_SECONDS},
        )

    def _update(self, expression: str, condition: str, values: dict[str, float]) -> float | None:
        """The new `tat`, or None when the condition did not hold (another container moved it first)."""
        asked = self.clock()
        try:
            written, answer = update_if(
                self.client(),
                TableName=self.table_name,
                Key={"id": {"S": self.key}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues={name: {"N": _number(value)} for name, value in values.items()},
                ReturnValues="UPDATED_NEW",
            )
        except DependencyUnavailable as exc:  # the cause is AWS's error: its code or type says why
            cause = exc.__cause__
            code = getattr(cause, "response", {}).get("Error", {}).get("Code") or type(cause).__name__
            raise StoreUnreachable(code) from exc
        self._round_trip = max(self.clock() - asked, 0.0)
        if not written:
            return None
        return float(answer["Attributes"]["tat"]["N"])

    def _fall_back(self, now: float, error: StoreUnreachable) -> None:
        if not self._outage:  # once per outage, not once per request
            logger.warning(
                "the shared rate budget cannot be reached; keeping to this container's share",
                extra={"reason": str(error), "fallbackSeconds": FALLBACK_SECONDS},
            )
            self._outage = True
            self._fallback_from = now + self._depth  # the others' turns run on about as far as ours did
        count("RateBudgetFallback")
        # Until the next wall-clock boundary: every container that fell back asks the table again at the same
        # moment, so none runs on its share while the others are back on the whole budget.
        self._fallback_until = (now // FALLBACK_SECONDS + 1) * FALLBACK_SECONDS


def _number(value: float) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)
