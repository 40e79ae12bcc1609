"""One write at a time per contact on the API and direct paths (SQS orders a contact's writes by its FIFO group).

A write Engage may still apply after we gave up on it (a timeout: Engage slower than our timeout) keeps its
contact held a while longer, so a newer write cannot land before the abandoned one and be overwritten by it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from .table import write_if


class ContactLeases:
    """Per contact (its message group), in the idempotency table: who holds it, and until when."""

    def __init__(self, table_name: str, client: Any, clock: Callable[[], float] = time.time) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client
        self.clock = clock

    def hold(self, group: str, seconds: float) -> str | None:
        """A token when this invocation now holds the contact for `seconds`; None while another one holds it.

        DependencyUnavailable when the table cannot be reached (without it, order cannot be promised)."""
        now = self.clock()
        token = uuid.uuid4().hex
        until = now + seconds
        item = {
            "id": {"S": f"contact-lease#{group}"},
            "holder": {"S": token},
            "until": {"N": f"{until:.3f}"},
            "expiration": {"N": str(int(until) + 3600)},
        }
        written, _ = write_if(
            self.client.put_item,
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(#id) OR #until < :now",
            ExpressionAttributeNames={"#id": "id", "#until": "until"},
            ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
        )
        return token if written else None

    def release(self, group: str, token: str, settle_seconds: float = 0.0) -> None:
        """Let the contact go now, or after `settle_seconds` (a write whose outcome is unknown may still land)."""
        key = {"id": {"S": f"contact-lease#{group}"}}
        condition = {"ConditionExpression": "#holder = :token", "ExpressionAttributeNames": {"#holder": "holder"}}
        if settle_seconds <= 0:
            write_if(
                self.client.delete_item,
                TableName=self.table_name,
                Key=key,
                ExpressionAttributeValues={":token": {"S": token}},
                **condition,
            )
            return
        until = self.clock() + settle_seconds
        write_if(
            self.client.update_item,
            TableName=self.table_name,
            Key=key,
            UpdateExpression="SET #until = :until",
            ExpressionAttributeNames={"#holder": "holder", "#until": "until"},
            ConditionExpression="#holder = :token",
            ExpressionAttributeValues={":token": {"S": token}, ":until": {"N": f"{until:.3f}"}},
        )
