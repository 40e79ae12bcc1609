"""The newest event time applied per contact, so an older command (a dead letter sent back late) is skipped."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..domain.command import EVENT_TIME_AHEAD
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
        """None when a newer event was applied to this contact; else `at` is recorded (an equal time passes)."""
        now = dt.datetime.now(tz=dt.UTC)
        expires = int((now + dt.timedelta(days=EVENT_TIME_DAYS)).timestamp())
        # A time kept from before future times were refused (further ahead than any command may be) is void.
        void = (now + EVENT_TIME_AHEAD).timestamp()
        values = {":at": {"N": str(at.timestamp())}, ":exp": {"N": str(expires)}, ":void": {"N": str(void)}}
        written, answer = update_if(
            self.client,
            TableName=self.table_name,
            Key={"id": {"S": f"event-time#{group}"}},
            UpdateExpression="SET #at = :at, expiration = :exp",
            ConditionExpression="attribute_not_exists(#at) OR #at <= :at OR #at > :void",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_OLD",
        )
        if not written:
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
