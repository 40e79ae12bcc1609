"""The newest event time applied per contact, so an older command (a dead letter sent back late) is skipped.

The same item holds a contact for a backfill's bulk update in flight (`hold`): Engage applies a bulk batch
some time after taking it, so until it is settled a command with an event time for that contact waits
(RequestInProgress, retried) instead of being applied first and then overwritten by the older batch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..domain.command import EVENT_TIME_AHEAD
from ..errors import RequestInProgress
from .table import update_if

EVENT_TIME_DAYS = 400  # how long a contact's newest applied event time is kept


@dataclass(frozen=True)
class EventClaim:
    """A contact's newest event time, taken by a command before its Engage call; given back if the call fails."""

    group: str
    at: str  # as kept (DynamoDB number text)
    previous: str | None  # what was kept before, None for nothing


class EventTimes:
    """Per contact (its message group: a contactId, or a digest of its lookup), in the idempotency table."""

    def __init__(self, table_name: str, client: Any) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client

    def claim(self, group: str, at: dt.datetime) -> EventClaim | None:
        """None when a newer event was applied to this contact; else `at` is recorded (an equal time passes).

        RequestInProgress while a backfill's bulk update holds the contact (`hold`)."""
        now = dt.datetime.now(tz=dt.UTC)
        expires = int((now + dt.timedelta(days=EVENT_TIME_DAYS)).timestamp())
        # A time kept from before future times were refused (further ahead than any command may be) is void.
        void = (now + EVENT_TIME_AHEAD).timestamp()
        values = {":at": {"N": str(at.timestamp())}, ":exp": {"N": str(expires)}, ":void": {"N": str(void)},
                  ":now": {"N": str(now.timestamp())}}  # fmt: skip
        written, answer = update_if(
            self.client,
            TableName=self.table_name,
            Key={"id": {"S": f"event-time#{group}"}},
            UpdateExpression="SET #at = :at, expiration = :exp",
            ConditionExpression="(attribute_not_exists(#at) OR #at <= :at OR #at > :void) "
            "AND (attribute_not_exists(heldUntil) OR heldUntil < :now)",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if not written:
            if float(answer.get("heldUntil", {}).get("N", "0")) >= now.timestamp():
                raise RequestInProgress("a backfill's bulk update of this contact is being applied; retry shortly")
            return None
        previous = (answer.get("Attributes") or {}).get("at", {}).get("N")
        return EventClaim(group, values[":at"]["N"], previous)

    def give_back(self, claim: EventClaim) -> None:
        """The time kept before `claim`, unless a newer command took the contact since: the failed command's event
        was not applied, and an older one that comes before its retry is not stale for it."""
        if claim.previous == claim.at:
            return  # the same time was kept before (a retry of this event): nothing to give back
        update = "REMOVE #at" if claim.previous is None else "SET #at = :previous"
        values = {":at": {"N": claim.at}} | ({} if claim.previous is None else {":previous": {"N": claim.previous}})
        update_if(
            self.client,
            TableName=self.table_name,
            Key={"id": {"S": f"event-time#{claim.group}"}},
            UpdateExpression=update,
            ConditionExpression="#at = :at",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues=values,
        )

    def hold(self, group: str, at: dt.datetime, seconds: float, job: str) -> bool | None:
        """Hold the contact for a bulk update (a backfill row as of `at`) for `seconds`, or until `release`.

        False when a newer event was applied to it (the row is stale), None while another holds it; the row's
        own time is not kept (rows of one backfill never make each other stale)."""
        now = dt.datetime.now(tz=dt.UTC).timestamp()
        values = {":at": {"N": str(at.timestamp())}, ":until": {"N": f"{now + seconds:.3f}"}, ":job": {"S": job},
                  ":now": {"N": f"{now:.3f}"}, ":exp": {"N": str(int(now) + EVENT_TIME_DAYS * 86400)}}  # fmt: skip
        written, answer = update_if(
            self.client,
            TableName=self.table_name,
            Key={"id": {"S": f"event-time#{group}"}},
            UpdateExpression="SET heldUntil = :until, heldBy = :job, expiration = if_not_exists(expiration, :exp)",
            ConditionExpression="(attribute_not_exists(#at) OR #at <= :at) "
            "AND (attribute_not_exists(heldUntil) OR heldUntil < :now OR heldBy = :job)",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if written:
            return True
        held = float(answer.get("heldUntil", {}).get("N", "0")) >= now and answer.get("heldBy", {}).get("S") != job
        return None if held else False

    def release(self, group: str, job: str) -> None:
        """The bulk update is settled: commands for the contact go on (only `job`'s own hold is let go)."""
        update_if(
            self.client,
            TableName=self.table_name,
            Key={"id": {"S": f"event-time#{group}"}},
            UpdateExpression="REMOVE heldUntil, heldBy",
            ConditionExpression="heldBy = :job",
            ExpressionAttributeValues={":job": {"S": job}},
        )
