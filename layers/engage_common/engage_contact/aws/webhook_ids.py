"""Each signed API request's `webhook-id`, bound to the one route (operation) it was first used on.

The Standard Webhooks signature covers the id, the timestamp and the body, not the route: a captured
update re-sent within the tolerance to `/contacts/promote` verifies. The id is signed, so binding it to
its first operation binds the operation to what is signed; the same id on another route is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..domain.digest_key import keyed
from ..errors import IdempotencyConflict
from .idempotency import EXPIRES_AFTER_SECONDS
from .table import write_if


class WebhookIds:
    """In the idempotency table, as long as an idempotency record (the signature's tolerance is far shorter)."""

    def __init__(self, table_name: str, client: Any, clock: Callable[[], float] = time.time) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client
        self.clock = clock

    def bind(self, webhook_id: str, operation: str) -> None:
        """Record `webhook_id` as `operation`'s; IdempotencyConflict when another operation used it first.

        The same id on the same route passes (a retry; the idempotency record answers it).
        """
        now = int(self.clock())
        digest = keyed("webhook-id", webhook_id)  # a caller's id may be anything: kept as a keyed digest
        item = {
            "id": {"S": f"webhook-id#{digest}"},
            "operation": {"S": operation},
            "expiration": {"N": str(now + EXPIRES_AFTER_SECONDS)},
        }
        written, _ = write_if(
            self.client.put_item,
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(#id) OR #op = :op OR #expiry < :now",
            ExpressionAttributeNames={"#id": "id", "#op": "operation", "#expiry": "expiration"},
            ExpressionAttributeValues={":op": {"S": operation}, ":now": {"N": str(now)}},
        )
        if not written:
            raise IdempotencyConflict("this webhook-id was used before on another route", {"route": operation})
