"""The time of the newest event accepted per customer, so an older delivery is refused and a replayed one too."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from ..aws.table import update_if
from ..domain.digest_key import customer_digest

LAST_APPLIED_DAYS = 400  # how long the last-applied time of a customer is kept


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    OLDER = "older than the last event applied for this customer"
    REPLAYED = "the same delivery was accepted before (a replay)"


class LastApplied:
    """Per customer, in the idempotency table: the newest event time accepted and the body digests seen at it.

    A newer time is accepted; an older one is refused; at the same time, a body not seen before is accepted
    (two saves within one second) and one seen before is a replay: a captured signed body sent again, with
    made-up delivery headers, long after the idempotency record of its first delivery has expired.
    """

    def __init__(self, table_name: str, client: Any) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client

    def accept(self, clock: str, customer: str, at: dt.datetime, body_digest: str) -> Verdict:
        """Whether the delivery of `body_digest` at `at` may be applied (and, if so, it is recorded).

        `clock`: the platform, or the platform and a consent channel (its own clock); `customer`: the email of a
        profile delivery, or the shop customer of a consent delivery."""
        key = self._key(clock, customer)
        expires = int((dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=LAST_APPLIED_DAYS)).timestamp())
        values = {":at": {"N": str(at.timestamp())}, ":body": {"SS": [body_digest]}, ":exp": {"N": str(expires)}}
        newer = self._write(
            key,
            "SET #at = :at, bodies = :body, expiration = :exp",
            "attribute_not_exists(#at) OR #at < :at",
            dict(values),
        )
        if newer is None:
            return Verdict.ACCEPTED
        values[":one"] = {"S": body_digest}
        same_time = self._write(
            key, "ADD bodies :body SET expiration = :exp", "#at = :at AND NOT contains(bodies, :one)", values
        )
        if same_time is None:
            return Verdict.ACCEPTED
        return Verdict.REPLAYED if same_time.get("at") == values[":at"] else Verdict.OLDER

    def release(self, clock: str, customer: str, at: dt.datetime, body_digest: str) -> None:
        """Forget an accepted delivery that could not be queued, so the platform's retry of it is accepted again
        (not taken for a replay). The time stays: an older delivery is still refused while this one is retried."""
        values = {":at": {"N": str(at.timestamp())}, ":body": {"SS": [body_digest]}}
        self._write(self._key(clock, customer), "DELETE bodies :body", "#at = :at", values)

    def first_at(self, what: str, customer: str, at: dt.datetime) -> bool:
        """True (and `at` recorded) when nothing of `what` was done for this customer at `at` or later."""
        expires = int((dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=LAST_APPLIED_DAYS)).timestamp())
        return (
            self._write(
                self._what(what, customer),
                "SET #at = :at, expiration = :exp",
                "attribute_not_exists(#at) OR #at < :at",
                {":at": {"N": str(at.timestamp())}, ":exp": {"N": str(expires)}},
            )
            is None
        )

    def forget_at(self, what: str, customer: str, at: dt.datetime) -> None:
        """Undo `first_at` for `at` (what it recorded could not be done): the retry of the same event does it."""
        self._write(self._what(what, customer), "REMOVE #at", "#at = :at", {":at": {"N": str(at.timestamp())}})

    @staticmethod
    def _key(clock: str, customer: str) -> dict:
        return LastApplied._what(f"last-applied#{clock}", customer)

    @staticmethod
    def _what(what: str, customer: str) -> dict:
        return {"id": {"S": f"{what}#{customer_digest(customer)}"}}  # no address in the table's keys, nor a hash

    def _write(self, key: dict, update: str, condition: str, values: dict) -> dict | None:
        """None when the conditional write succeeded; the stored item when its condition failed."""
        written, stored = update_if(
            self.client,
            TableName=self.table_name,
            Key=key,
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return None if written else stored
