"""Idempotency in the DynamoDB table: a key seen before is answered from its first result.

The key is the command's `idempotencyKey`, else the API's `webhook-id` (or a
platform's delivery id), else, for SQS, the message id. A command with none of
these is always applied: deduplicating by content would drop a legitimate A → B → A.

Why not Powertools' `idempotent_function` with its `DynamoDBPersistenceLayer` (used here
before): importing anything of Powertools' idempotency package imports boto3 and takes a
boto3 DynamoDB client on every keyed cold start (every SQS record and every signed API
request has a key), which alone kept `cold_start_keyed_vs_client_ratio` above its 1.3
(the before and after: docs/performance.md). This module does the same steps with the same
item, over the container's light DynamoDB client: the records Powertools wrote are read and
honoured and the other way round (the key `<function>.engage_contact.aws.idempotency._run_work#<md5>`,
`status`, `expiration`, `in_progress_expiration`, `data`, `validation`), so a deployment mid-window loses no key.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from .. import observability
from ..errors import DependencyUnavailable, IdempotencyConflict, RequestInProgress
from .table import UNREACHABLE, write_if

EXPIRES_AFTER_SECONDS = 24 * 60 * 60
# What a replay answers from; Engage's contact is left out: its names and addresses need not sit in the table.
REPLAY_FIELDS = frozenset(
    {
        "contactId",
        "sent",
        "droppedEmpty",
        "droppedUnchanged",
        "alreadyMember",
        "created",
        "unchanged",
        "stale",
        "notFound",
        "erased",
    }
)
# The name Powertools gave the records (module and function it decorated): kept, so its records still count.
RECORD_FUNCTION = "engage_contact.aws.idempotency._run_work"
ATTEMPTS = 3  # a record that changed between the write and the read is tried again (Powertools: 1 + 2 retries)
# The conditional write of an in-progress record: no record, an expired one, or one whose invocation timed out.
PUT_CONDITION = (
    "attribute_not_exists(#id) OR #expiry < :now OR "
    "(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis)"
)
NAMES = {"#id": "id", "#expiry": "expiration", "#in_progress_expiry": "in_progress_expiration", "#status": "status"}


class _Changed(Exception):
    """The record changed between the failed write and its read (deleted, or expired): try again."""


def _hash(data: Any) -> str:
    return hashlib.md5(json.dumps(data, sort_keys=True).encode()).hexdigest()  # noqa: S324 - a name, not a secret


class IdempotencyGuard:
    """Runs a command once per key within the expiry; the same key with another command is a conflict."""

    def __init__(self, table_name: str, client: Any, clock: Callable[[], float] = time.time) -> None:
        """`client`: the container's DynamoDB client (`aws.dynamodb_light`)."""
        self.table_name = table_name
        self.client = client
        self.clock = clock

    def run(self, request: dict[str, Any], context: Any, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """`work()`'s result, once per `request` (operation, key, and the command as received).

        The record keeps what a replay needs (REPLAY_FIELDS), never Engage's contact (personal data):
        a replay answers `"contact": null, "replayed": true`.
        """
        function = f"{os.getenv('AWS_LAMBDA_FUNCTION_NAME', 'test-func')}.{RECORD_FUNCTION}"
        key = {"id": {"S": f"{function}#{_hash([request['operation'], request['key']])}"}}
        payload = _hash(request["command"])
        for attempt in range(1, ATTEMPTS + 1):
            try:
                stored = self._claim(key, payload, _remaining_ms(context), request["key"])
            except _Changed:
                if attempt == ATTEMPTS:
                    raise DependencyUnavailable(UNREACHABLE) from None
                continue
            if stored is not None:
                return {**stored, "contact": None, "replayed": True}
            return self._complete(key, payload, work)
        raise DependencyUnavailable(UNREACHABLE)  # not reached: ATTEMPTS >= 1

    def _claim(self, key: dict[str, Any], payload: str, remaining_ms: int | None, given: str) -> dict[str, Any] | None:
        """None when this invocation now holds the key; the first result when the key was answered before."""
        now = self.clock()
        item = {
            **key,
            "expiration": {"N": str(int(now + EXPIRES_AFTER_SECONDS))},
            "status": {"S": "INPROGRESS"},
            "validation": {"S": payload},
        }
        if remaining_ms is not None:
            item["in_progress_expiration"] = {"N": str(int((now + remaining_ms / 1000) * 1000))}
        values = {
            ":now": {"N": str(int(now))},
            ":now_in_millis": {"N": str(int(now * 1000))},
            ":inprogress": {"S": "INPROGRESS"},
        }
        written, old = write_if(
            self.client.put_item,
            TableName=self.table_name,
            Item=item,
            ConditionExpression=PUT_CONDITION,
            ExpressionAttributeNames=NAMES,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if written:
            return None
        return self._answer(old or self._read(key), payload, given)

    def _read(self, key: dict[str, Any]) -> dict[str, Any]:
        try:
            item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        except Exception as exc:
            raise DependencyUnavailable(UNREACHABLE) from exc
        if not item:
            raise _Changed
        return item

    def _answer(self, old: dict[str, Any], payload: str, given: str) -> dict[str, Any]:
        """What a record that holds the key says: the same key with another command, in progress, or answered."""
        if old.get("validation", {}).get("S") != payload:
            raise IdempotencyConflict(
                "this idempotency key was used before with a different command", {"idempotencyKey": given}
            )
        now = self.clock()
        expiry = int(old.get("expiration", {}).get("N", 0))
        if expiry and int(now) > expiry:
            raise _Changed
        if old.get("status", {}).get("S") == "INPROGRESS":
            in_progress = old.get("in_progress_expiration", {}).get("N")
            if in_progress is not None and int(in_progress) < int(now * 1000):
                raise _Changed  # its invocation timed out: the key is free again
            raise RequestInProgress("the same command is being handled right now; retry shortly")
        data = old.get("data", {}).get("S")
        return json.loads(data) if data else {}

    def _complete(self, key: dict[str, Any], payload: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run the work; keep what a replay answers, or give the key back when the work failed."""
        try:
            result = work()
        except Exception:
            try:
                self.client.delete_item(TableName=self.table_name, Key=key)
            except Exception as exc:
                raise DependencyUnavailable(UNREACHABLE) from exc
            raise
        kept = json.dumps({k: v for k, v in result.items() if k in REPLAY_FIELDS}, sort_keys=True)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET #response_data = :response_data, #expiry = :expiry, #status = :status, "
                "#validation_key = :validation_key",
                ExpressionAttributeNames={
                    "#response_data": "data",
                    "#expiry": "expiration",
                    "#status": "status",
                    "#validation_key": "validation",
                },
                ExpressionAttributeValues={
                    ":response_data": {"S": kept},
                    ":status": {"S": "COMPLETED"},
                    ":expiry": {"N": str(int(self.clock() + EXPIRES_AFTER_SECONDS))},
                    ":validation_key": {"S": payload},
                },
            )
        except Exception as exc:
            # The work is done (Engage changed): failing now would have it retried and sent again (a promote, a
            # create, a type change). The record stays in progress until its invocation's time is up.
            observability.fallback("IdempotencyRecordNotCompleted", exc)
        return result


def _remaining_ms(context: Any) -> int | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() if callable(remaining) else None
