"""The audit trail: one entry per privacy request handled (each attempt), in a table of its own, kept for a
configurable time, never holding personal data: a keyed digest of the key, the source, what was erased where,
when, and the outcome."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from ..errors import DependencyUnavailable

DEFAULT_RETENTION_DAYS = 3 * 365


class AuditTrail:
    def __init__(
        self, table_name: str, client: Any, retention_days: float = DEFAULT_RETENTION_DAYS, clock: Any = time.time
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.retention_days = retention_days
        self.clock = clock

    def record(self, subject: str, request: str, source: str, outcome: str, **what: str | int) -> str:
        """Write one entry; its id. `what`: what was erased or delivered where (counts and names, no values)."""
        now = self.clock()
        at = dt.datetime.fromtimestamp(now, tz=dt.UTC).isoformat(timespec="milliseconds")
        entry_id = f"{subject}#{at}#{uuid.uuid4().hex[:8]}"
        item = {
            "id": {"S": entry_id},
            "subject": {"S": subject},
            "request": {"S": request},
            "source": {"S": source},
            "at": {"S": at},
            "outcome": {"S": outcome},
            "expiration": {"N": str(int(now + self.retention_days * 86400))},
        }
        for name, value in what.items():
            item[name] = {"N": str(value)} if isinstance(value, int) else {"S": str(value)}
        try:
            self.client.put_item(TableName=self.table_name, Item=item)
        except Exception as exc:
            raise DependencyUnavailable("the audit table cannot be reached") from exc
        return entry_id
