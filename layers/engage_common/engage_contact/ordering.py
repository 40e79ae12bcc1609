"""The order of one contact's writes: its newest event time, and one write at a time where SQS does not order them.

Both are taken before the Engage call and given back when it fails, so a failed command never makes another
one seem stale, and a retry of it finds the contact as it left it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from . import observability
from .domain.command import Command
from .domain.contacts import command_group, customer_key
from .engage.answers import MAY_STILL_LAND
from .engage.retry import Deadline
from .errors import DependencyUnavailable, EngageContactError, RequestInProgress

# A write given up on (timeout) may still be applied by Engage: its contact stays held this many Engage timeouts.
SETTLE_TIMEOUTS = 2


@contextlib.contextmanager
def in_turn(
    leases: Any, event_times: Any, command: Command, deadline: Deadline, engage_timeout: float
) -> Iterator[bool]:
    """The command's turn on its contact: the contact held (`ordered`) and its event time claimed (`claimed`)
    while the body runs; whether the command is stale (then the body must not call Engage)."""
    with ordered(leases, command, deadline, engage_timeout), claimed(event_times, command) as stale:
        yield stale


@contextlib.contextmanager
def ordered(leases: Any, command: Command, deadline: Deadline, engage_timeout: float) -> Iterator[None]:
    """Hold the command's contact (`aws.contact_leases.ContactLeases`, None: no holding) while the body runs.

    RequestInProgress (retried, `Retry-After`) while another write to the contact is under way or settling.
    """
    if leases is None:
        yield
        return
    group = command_group(command)
    settle = SETTLE_TIMEOUTS * engage_timeout
    token = _hold(leases, group, deadline.remaining() + settle)
    if token is None:
        raise RequestInProgress("another write to this contact is under way; retry shortly")
    if not token:  # the table cannot be reached: no command fails for that alone, it goes on unordered
        yield
        return
    try:
        yield
    except BaseException as error:
        # a write that got no answer (or a defect of ours mid-call) may still land: held until it has
        _let_go(leases, group, token, settle if _may_still_land(error) else 0.0)
        raise
    _let_go(leases, group, token, 0.0)


def _hold(leases: Any, group: str, seconds: float) -> str | None:
    """The lease's token; None while another holds the contact; "" when the table cannot be reached."""
    try:
        return leases.hold(group, seconds)
    except DependencyUnavailable as error:
        observability.fallback("ContactLeaseUnavailable", error)
        return ""


def _may_still_land(error: BaseException) -> bool:
    if isinstance(error, EngageContactError):
        return bool(error.details.get(MAY_STILL_LAND))
    return True


def _let_go(leases: Any, group: str, token: str, settle: float) -> None:
    try:
        leases.release(group, token, settle)
    except Exception as error:  # the lease ends by itself: the next write to the contact waits for that
        observability.fallback("ContactLeaseNotReleased", error)


@contextlib.contextmanager
def claimed(event_times: Any, command: Command) -> Iterator[bool]:
    """Whether the command is stale: its event older than the newest applied to its contact (no time or table:
    never). Its time is taken for the contact (`aws.event_times.EventTimes`) and given back if the body fails."""
    claim = event_times.claim(clock_key(command), command.event_time) if event_times is not None else None
    if event_times is not None and claim is None:
        yield True
        return
    try:
        yield False
    except BaseException:
        if claim is not None:
            _give_back(event_times, claim)
        raise


def clock_key(command: Command) -> str:
    """The clock a command's event time is counted on: its contact's profile clock, or one consent channel's own
    (a profile change stamped later never makes a consent change look stale, nor the other way round)."""
    if command.event_clock == "profile":
        return command_group(command)
    return f"{customer_key(command)}#{command.event_clock}"


def _give_back(event_times: Any, claim: Any) -> None:
    try:
        event_times.give_back(claim)
    except Exception as error:  # the time stays taken: an older event before the retry is skipped, as before
        observability.fallback("EventTimeNotGivenBack", error)
