"""A batch of a backfill's rows queued as update commands and counted; the backfill's check and report.

The three direct-invocation shapes the update function recognises (Step Functions' backfill):
`{"backfill": {"id", "mapping", "rows", "firstRow"}}` (rows as objects numbered from firstRow, or as
`{"index", "value"}` items numbered index + 1), `{"backfillCheck": {"id", "mapping", "format", "head"}}`
and `{"backfillReport": {"id"}}`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..aws.backfill_counters import BackfillCounters
from ..domain.attributes import AttributeCatalogue
from ..errors import InvalidRequest
from .mapping import BACKFILL_ID, RowMapping, parse_mapping
from .rows import InvalidRow, RowCommand, row_command

MAX_BATCH_ROWS = 1000
FORMATS = ("csv", "jsonl")


def backfill_id(data: Mapping[str, Any]) -> str:
    value = data.get("id")
    if not isinstance(value, str) or not BACKFILL_ID.fullmatch(value):
        raise InvalidRequest("a backfill's 'id' must be 1-64 letters, digits, '-' or '_'", {"field": "id"})
    return value


def numbered_rows(data: Mapping[str, Any]) -> Iterator[tuple[int, Any]]:
    """(row number, the row's values): items `{"index", "value"}` (Step Functions' Map), or rows from firstRow."""
    rows = data.get("rows")
    if not isinstance(rows, list) or len(rows) > MAX_BATCH_ROWS:
        raise InvalidRequest(f"a backfill batch's 'rows' must be a list of at most {MAX_BATCH_ROWS}", {"field": "rows"})
    first = data.get("firstRow", 1)
    if not isinstance(first, int) or isinstance(first, bool) or first < 1:
        raise InvalidRequest("a backfill batch's 'firstRow' must be a row number from 1", {"field": "firstRow"})
    for offset, item in enumerate(rows):
        if isinstance(item, dict) and set(item) == {"index", "value"} and isinstance(item["index"], int):
            yield item["index"] + 1, item["value"]
        else:
            yield first + offset, item


@dataclass
class BatchOutcome:
    commands: list[RowCommand]
    invalid: list[InvalidRow]


def commands_of(
    mapping: RowMapping, rows: Iterator[tuple[int, Any]], backfill: str, catalogue: AttributeCatalogue
) -> BatchOutcome:
    """Each row into its command, or an invalid row with its reason (the one implementation, local and deployed)."""
    outcome = BatchOutcome([], [])
    for row, values in rows:
        if isinstance(values, InvalidRow):  # found invalid by the file's reader (too many fields, ...)
            outcome.invalid.append(values)
            continue
        try:
            if not isinstance(values, dict):
                raise InvalidRow(row, "the row is not an object of column: value")
            outcome.commands.append(row_command(mapping, values, backfill, row, catalogue))
        except InvalidRow as invalid:
            outcome.invalid.append(invalid)
    return outcome


class Backfill:
    """What the update function does for a backfill: queue a batch, check a mapping, report the counts."""

    def __init__(
        self,
        catalogue: AttributeCatalogue,
        send: Callable[[list[RowCommand]], None],
        counters: Callable[[], BackfillCounters | None],
    ) -> None:
        self.catalogue = catalogue
        self.send = send  # puts commands on the update FIFO queue (their group, their key as deduplication id)
        self.counters = counters

    def queue(self, data: Any) -> dict[str, Any]:
        """A batch of rows: commands queued, invalid rows counted; counts added once per batch."""
        if not isinstance(data, dict):
            raise InvalidRequest("'backfill' must be an object")
        backfill = backfill_id(data)
        mapping = parse_mapping(data.get("mapping"), self.catalogue)
        rows = list(numbered_rows(data))
        outcome = commands_of(mapping, iter(rows), backfill, self.catalogue)
        self.send(outcome.commands)  # a retried batch sends again: SQS deduplicates, the key replays
        counters = self.counters()
        if counters is not None and rows:
            counters.count_batch(backfill, rows[0][0], len(rows), len(outcome.invalid), len(outcome.commands))
        return {
            "id": backfill,
            "rows": len(rows),
            "queued": len(outcome.commands),
            "invalid": len(outcome.invalid),
            "invalidRows": [i.report() for i in outcome.invalid],
        }

    def check(self, data: Any) -> dict[str, Any]:
        """Before any row is read: the mapping checked, and (CSV) the file's header holding every column it names."""
        if not isinstance(data, dict):
            raise InvalidRequest("'backfillCheck' must be an object")
        backfill_id(data)
        mapping = parse_mapping(data.get("mapping"), self.catalogue)
        file_format = data.get("format", "csv")
        if file_format not in FORMATS:
            raise InvalidRequest(f"'format' must be one of {', '.join(FORMATS)}", {"field": "format"})
        if file_format == "csv":
            head = data.get("head")
            if not isinstance(head, str) or not head.strip():
                raise InvalidRequest("the file is empty: a CSV backfill needs a header row", {"field": "head"})
            missing = mapping.missing_columns(header_of(head))
            if missing:
                raise InvalidRequest(
                    f"the header lacks the column(s) the mapping names: {missing}", {"missing": missing}
                )
        return {"id": data["id"], "checked": True, "columns": mapping.column_names}

    def report(self, data: Any) -> dict[str, Any]:
        """The counters, and whether every row is accounted for: applied + dead-lettered + invalid = rows."""
        if not isinstance(data, dict):
            raise InvalidRequest("'backfillReport' must be an object")
        backfill = backfill_id(data)
        counters = self.counters()
        if counters is None:
            raise InvalidRequest("a backfill needs the idempotency table (IDEMPOTENCY_TABLE) for its counters")
        counts = counters.read(backfill)
        settled = counts["applied"] + counts["deadLettered"] + counts["invalid"]
        lost = max(counts["rows"] - settled, 0)
        return {"id": backfill, **counts, "lost": lost, "complete": settled >= counts["rows"]}


def header_of(head: str) -> list[str]:
    """The header row of a CSV file's first bytes (a byte order mark accepted)."""
    first = next(csv.reader(io.StringIO(head.lstrip("\ufeff"))), [])
    return [name.strip() for name in first]
