"""The time of the newest event accepted per customer, so an older delivery is refused."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from ..errors import DependencyUnavailable

LAST_APPLIED_DAYS = 400  # how long the last-applied time of a customer is kept


class LastApplied:
    """The time of the newest event accepted per customer, in the idempotency table, so older ones are refused."""

    def __init__(self, table_name: str, client: Any) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client

    def accept(self, platform: str, email: str, at: dt.datetime) -> bool:
        """True when `at` is not older than the last accepted event of this customer (and records it)."""
        from botocore.exceptions import BotoCoreError, ClientError

        expires = int((dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=LAST_APPLIED_DAYS)).timestamp())
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()  # no address in the table's keys
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": f"last-applied#{platform}#{digest}"}},
                UpdateExpression="SET #at = :at, expiration = :exp",
                ConditionExpression="attribute_not_exists(#at) OR #at <= :at",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":at": {"N": str(at.timestamp())}, ":exp": {"N": str(expires)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise DependencyUnavailable("the idempotency table cannot be reached") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("the idempotency table cannot be reached") from exc
        return True
