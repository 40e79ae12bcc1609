"""Where each backfill chunk stands with Engage's bulk endpoint: a durable record, written before the bulk request.

One item per chunk (`backfill#<id>#chunk#<firstRow>`, beside the backfill's counters). Its `state`:

- `sending`: claimed, the bulk request about to go (or gone, its answer lost): the outcome is UNKNOWN;
- `sent`: Engage took it; `batchId`, `size` and `places` (each bulk item's row) say how to read its status;
- `single`: the rows in `pending` go the single path (lookup first, then update or create, idempotent);
- `done`: every row of the chunk is counted (applied, dead-lettered);
- `patching`, `patched`: as `sending` and `sent`, for the bulk UPDATE of rows of customers Engage holds
  (`backfill.bulk_update`), claimed from `single`; `pending` keeps the rows still to write.

Written before the bulk request and after each step, so a crash anywhere leaves a state a redelivery
resumes from: never a second bulk request for rows that may be in a batch already.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import DependencyUnavailable
from .backfill_counters import PREFIX
from .table import UNREACHABLE, transact_if, update_if, write_if

EXPIRES_AFTER_SECONDS = 30 * 24 * 60 * 60


@dataclass
class ChunkState:
    state: str  # sending, sent, single, done; patching, patched (a bulk update)
    job: str = ""
    batch_id: str | None = None
    started: float = 0.0  # when the bulk request was claimed (epoch seconds)
    size: int = 0  # items in the bulk request
    places: dict[int, int] = field(default_factory=dict)  # row -> its item's index in the bulk request
    pending: list[int] = field(default_factory=list)  # rows left for the single path


class BulkJobs:
    def __init__(self, table_name: str, client: Any, clock: Any = time.time) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client
        self.clock = clock

    def _key(self, backfill_id: str, first_row: int) -> dict[str, Any]:
        return {"id": {"S": f"{PREFIX}{backfill_id}#chunk#{first_row}"}}

    def read(self, backfill_id: str, first_row: int) -> ChunkState | None:
        item = self._call(
            "get_item", TableName=self.table_name, Key=self._key(backfill_id, first_row), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        text = lambda name: item.get(name, {}).get("S")  # noqa: E731
        number = lambda name: float(item.get(name, {}).get("N", "0"))  # noqa: E731
        return ChunkState(
            state=text("state") or "sending",
            job=text("job") or "",
            batch_id=text("batchId"),
            started=number("started"),
            size=int(number("size")),
            places={int(k): v for k, v in json.loads(text("places") or "{}").items()},
            pending=json.loads(text("pending") or "[]"),
        )

    def claim(self, backfill_id: str, first_row: int, job: str) -> bool:
        """`sending`, before the bulk request; False when another invocation holds the chunk already."""
        item = {
            **self._key(backfill_id, first_row),
            "state": {"S": "sending"},
            "job": {"S": job},
            "started": {"N": f"{self.clock():.3f}"},
            "expiration": self._expiry(),
        }
        written, _ = write_if(
            self.client.put_item, TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(id)"
        )
        return written

    def release(self, backfill_id: str, first_row: int, job: str) -> None:
        """Engage refused the bulk request before taking it (429): the chunk is free to be claimed again."""
        values = {":job": {"S": job}, ":sending": {"S": "sending"}}
        write_if(  # not held any more by this job: nothing to give back
            self.client.delete_item,
            TableName=self.table_name,
            Key=self._key(backfill_id, first_row),
            ConditionExpression="job = :job AND #s = :sending",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=values,
        )

    def claim_update(self, backfill_id: str, first_row: int, job: str, places: dict[int, int]) -> bool:
        """`single` -> `patching`, before a bulk update of the rows in `places`; False when another holds it."""
        values = {":single": {"S": "single"}, ":patching": {"S": "patching"}, ":job": {"S": job},
                  ":started": {"N": f"{self.clock():.3f}"}, ":places": {"S": json.dumps(places)}}  # fmt: skip
        written, _ = update_if(
            self.client,
            TableName=self.table_name,
            Key=self._key(backfill_id, first_row),
            UpdateExpression="SET #s = :patching, job = :job, started = :started, places = :places REMOVE batchId",
            ConditionExpression="#s = :single",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=values,
        )
        return written

    def release_update(self, backfill_id: str, first_row: int, job: str) -> None:
        """Engage refused the bulk update before taking it (429): the chunk is `single` again, as it was."""
        update_if(
            self.client,
            TableName=self.table_name,
            Key=self._key(backfill_id, first_row),
            UpdateExpression="SET #s = :single",
            ConditionExpression="job = :job AND #s = :patching",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":job": {"S": job}, ":patching": {"S": "patching"}, ":single": {"S": "single"}},
        )

    def sent(
        self, backfill_id: str, first_row: int, batch_id: str, size: int, places: dict[int, int], state: str = "sent"
    ) -> None:
        """Engage took the bulk request (`state`: `sent` for a create, `patched` for an update)."""
        self._set(
            backfill_id,
            first_row,
            {
                "state": {"S": state},
                "batchId": {"S": batch_id},
                "size": {"N": str(size)},
                "places": {"S": json.dumps(places)},
            },
        )

    def to_single(self, backfill_id: str, first_row: int, pending: list[int], applied: int) -> bool:
        """The chunk's bulk part is over: `applied` rows counted once (with this change of state), `pending` left.

        False when the chunk had left `sending`/`sent` (`patching`/`patched`) already (another invocation settled it).
        """
        update = {
            "TableName": self.table_name,
            "Key": self._key(backfill_id, first_row),
            "UpdateExpression": "SET #s = :state, pending = :pending",
            "ConditionExpression": "#s IN (:sending, :sent, :patching, :patched)",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": {
                ":state": {"S": "single" if pending else "done"},
                ":pending": {"S": json.dumps(pending)},
                ":sending": {"S": "sending"},
                ":sent": {"S": "sent"},
                ":patching": {"S": "patching"},
                ":patched": {"S": "patched"},
            },
        }
        items = [{"Update": update}]
        if applied:
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"id": {"S": f"{PREFIX}{backfill_id}"}},
                        "UpdateExpression": "ADD applied :n",
                        "ExpressionAttributeValues": {":n": {"N": str(applied)}},
                    }
                }
            )
        return transact_if(self.client, items)

    def done(self, backfill_id: str, first_row: int) -> None:
        self._set(backfill_id, first_row, {"state": {"S": "done"}, "pending": {"S": "[]"}})

    def _set(self, backfill_id: str, first_row: int, values: dict[str, Any]) -> None:
        names = {f"#a{i}": name for i, name in enumerate(values)}
        sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(values)))
        self._call(
            "update_item",
            TableName=self.table_name,
            Key=self._key(backfill_id, first_row),
            UpdateExpression=f"SET {sets}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":a{i}": v for i, v in enumerate(values.values())},
        )

    def _call(self, name: str, **request: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, name)(**request)
        except Exception as exc:
            raise DependencyUnavailable(UNREACHABLE) from exc

    def _expiry(self) -> dict[str, Any]:
        return {"N": str(int(self.clock()) + EXPIRES_AFTER_SECONDS)}
