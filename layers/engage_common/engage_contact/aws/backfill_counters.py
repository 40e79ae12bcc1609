"""A backfill's counters in the idempotency table, under keys of their own (`backfill#<id>`).

rows, invalid and queued are added once per batch (a batch marker makes a retried batch count
nothing twice); applied and deadLettered by the update function (and the backfill writer) as each
row's command ends. Each row's count is exactly once and crash-safe: it is written in one transaction
with a marker of the row (`#applied#<row>`, `#dead#<row>`) under the condition that the marker is new,
so it can be asked again for the same row (a crash between the row's success and its count makes the
redelivery a replay, which asks again) and counts once. A row dead-lettered, then applied after a
redrive, moves from deadLettered to applied (and is counted as redriven) in the same transaction as its
applied marker, never counted in both.
"""

from __future__ import annotations

import time
from typing import Any

from .table import transact, transact_if

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
        """A row's command succeeded: counted once, however often it is asked (a replay asks again); a row that was
        dead-lettered before is moved over.

        One transaction a row (its new applied marker and the counter) while the backfill has no dead letters;
        with some, the row's dead marker is looked for in the same transaction as its count.
        """
        marker = {"Put": self._marker(backfill_id, "applied", row)}
        add = self._add(backfill_id, {"applied": 1})
        while_none_dead = {
            **add,
            "ConditionExpression": "attribute_not_exists(deadLettered) OR deadLettered <= :none",
            "ExpressionAttributeValues": {**add["ExpressionAttributeValues"], ":none": {"N": "0"}},
        }
        if transact(self.client, [marker, {"Update": while_none_dead}]) != 1:  # counted now (None) or before (0)
            return
        dead = {
            "Delete": {
                "TableName": self.table_name,
                "Key": self._key(backfill_id, "dead", row),
                "ConditionExpression": "attribute_exists(id)",
            }
        }
        moved = {"Update": self._add(backfill_id, {"applied": 1, "deadLettered": -1, "redriven": 1})}
        if transact(self.client, [marker, dead, moved]) == 1:  # this row was never dead-lettered
            transact(self.client, [marker, {"Update": add}])

    def dead_lettered(self, backfill_id: str, row: int) -> None:
        """A row's command was dead-lettered: counted once, however often it is asked (again after a redrive, or
        after a crash before its count)."""
        marker = {"Put": self._marker(backfill_id, "dead", row)}
        transact(self.client, [marker, {"Update": self._add(backfill_id, {"deadLettered": 1})}])

    def _marker(self, backfill_id: str, kind: str, row: int) -> dict[str, Any]:
        """A row's marker, written only if it is new."""
        return {
            "TableName": self.table_name,
            "Item": {**self._key(backfill_id, kind, row), "expiration": self._expiry()},
            "ConditionExpression": "attribute_not_exists(id)",
        }

    def read(self, backfill_id: str) -> dict[str, int]:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(backfill_id), ConsistentRead=True)
        found = item.get("Item") or {}
        return {name: int(found[name]["N"]) if name in found else 0 for name in COUNTERS}
