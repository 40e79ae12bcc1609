"""A backfill's counters in the idempotency table, under keys of their own (`backfill#<id>`).

rows, invalid and queued are added once per batch (a batch marker makes a retried batch count
nothing twice); applied and deadLettered by the update function as each row's command ends. A row
dead-lettered leaves a marker, so that the same row applied after a redrive moves from
deadLettered to applied (and is counted as redriven), never counted in both.
"""

from __future__ import annotations

import time
from typing import Any

from .table import transact_if, write_if

PREFIX = "backfill#"
EXPIRES_AFTER_SECONDS = 30 * 24 * 60 * 60
COUNTERS = ("rows", "invalid", "queued", "applied", "deadLettered", "redriven")


class BackfillCounters:
    def __init__(self, table_name: str, client: Any) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client

    def _key(self, backfill_id: str, *parts: Any) -> dict[str, Any]:
        return {"id": {"S": "#".join([f"{PREFIX}{backfill_id}", *map(str, parts)])}}

    def _expiry(self) -> dict[str, Any]:
        return {"N": str(int(time.time()) + EXPIRES_AFTER_SECONDS)}

    def _add(self, backfill_id: str, counts: dict[str, int]) -> dict[str, Any]:
        names = {f"#c{i}": name for i, name in enumerate(counts)}
        values = {f":c{i}": {"N": str(n)} for i, n in enumerate(counts.values())}
        adds = ", ".join(f"#c{i} :c{i}" for i in range(len(counts)))
        return {
            "TableName": self.table_name,
            "Key": self._key(backfill_id),
            "UpdateExpression": f"ADD {adds} SET #exp = if_not_exists(#exp, :exp)",
            "ExpressionAttributeNames": {**names, "#exp": "expiration"},
            "ExpressionAttributeValues": {**values, ":exp": self._expiry()},
        }

    def count_batch(self, backfill_id: str, first_row: int, rows: int, invalid: int, queued: int) -> bool:
        """Add a batch's counts once; False when this batch (its first row) was counted before."""
        marker = {
            "TableName": self.table_name,
            "Item": {**self._key(backfill_id, "batch", first_row), "expiration": self._expiry()},
            "ConditionExpression": "attribute_not_exists(id)",
        }
        counts = {"rows": rows, "invalid": invalid, "queued": queued}
        return transact_if(self.client, [{"Put": marker}, {"Update": self._add(backfill_id, counts)}])

    def applied(self, backfill_id: str, row: int) -> None:
        """A row's command succeeded (not a replay); one that was dead-lettered before is moved over.

        The row's dead-letter marker is looked for only while the backfill has dead letters: one write a row.
        """
        now = self.client.update_item(**self._add(backfill_id, {"applied": 1}), ReturnValues="ALL_NEW")
        if int(now.get("Attributes", {}).get("deadLettered", {}).get("N", "0")) <= 0:
            return
        old = self.client.delete_item(
            TableName=self.table_name, Key=self._key(backfill_id, "dead", row), ReturnValues="ALL_OLD"
        ).get("Attributes")
        if old:
            self.client.update_item(**self._add(backfill_id, {"deadLettered": -1, "redriven": 1}))

    def dead_lettered(self, backfill_id: str, row: int) -> None:
        """A row's command was dead-lettered; the same row dead-lettered again (after a redrive) counts once."""
        marker = {**self._key(backfill_id, "dead", row), "expiration": self._expiry()}
        written, _ = write_if(
            self.client.put_item, TableName=self.table_name, Item=marker, ConditionExpression="attribute_not_exists(id)"
        )
        if written:
            self.client.update_item(**self._add(backfill_id, {"deadLettered": 1}))

    def read(self, backfill_id: str) -> dict[str, int]:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(backfill_id), ConsistentRead=True)
        found = item.get("Item") or {}
        return {name: int(found[name]["N"]) if name in found else 0 for name in COUNTERS}
