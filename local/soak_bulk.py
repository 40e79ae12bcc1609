"""The soak's bulk kind: a backfill through the backfill queue and its writer, alongside the live commands.

Its rows are queued as the backfill state machine's batch task queues them (the backfill intake function,
`{"backfill": ...}`: chunks on the backfill's own queue), before the live commands start, and the writer drains
them while the live queues are drained: the same Engage and its faults, the same rate budget, table and faults
of Secrets Manager and DynamoDB. Most rows are new customers (the writer sends them to Engage's bulk endpoint,
then the single way what the bulk refused), a quarter are contacts that exist already (the single way), one in
20 is invalid. The contacts are the backfill's own: the live commands' end check reads their contacts' update
order, which a backfill's writes would mix into.

The end check: every valid row is in Engage exactly once (one contact for its email, holding the row's values;
an existing contact updated, not made again) or on the backfill's dead-letter queue with its reason; the
backfill's counters account for every row once (applied + dead-lettered + invalid = rows, invalid as planned);
nothing is lost.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

BACKFILL_ID = "soak-bulk"
MAPPING = {
    "lookup": {"email": "Email"},
    "columns": {"First": "firstName", "Store": "favoriteStore"},
    "createIfMissing": {"contactType": "Contact"},
}
BATCH_ROWS = 100  # rows per batch task, as the state machine hands them out
INVALID_EVERY = 20
EXISTING_EVERY = 4


@dataclass
class BulkRow:
    index: int
    values: dict[str, str]
    valid: bool = True
    existing: str | None = None  # the contact id the row's email already has

    @property
    def email(self) -> str:
        return self.values["Email"].lower()


def plan(seed: int, rows: int, existing: dict[str, str]) -> list[BulkRow]:
    """New customers, some rows for `existing` contacts (email -> id), and invalid rows (a bad email)."""
    rng = random.Random(seed * 104729)
    known = sorted(existing)
    planned = []
    for n in range(rows):
        values = {"First": f"bulk-{n}", "Store": f"store-{rng.randrange(1000)}"}
        if n % INVALID_EVERY == INVALID_EVERY - 1:
            planned.append(BulkRow(n, {**values, "Email": f"not-an-email-{n}"}, valid=False))
        elif n % EXISTING_EVERY == 1 and known:
            email = known.pop(0)
            planned.append(BulkRow(n, {**values, "Email": email}, existing=existing[email]))
        else:
            planned.append(BulkRow(n, {**values, "Email": f"bulk-{n}@example.com"}))
    return planned


def seed_contacts(state: Any, rows: int) -> dict[str, str]:
    """The contacts the backfill's existing rows update (email -> id)."""
    emails = [f"bulk-existing-{n}@example.com" for n in range(rows // EXISTING_EVERY + 1)]
    return {
        e: state.add_contact({"contactType": "Contact", "attributes": {"email": e, "firstName": "seed"}})
        for e in emails
    }


def queue(stack: Any, rows: list[BulkRow]) -> dict[str, int]:
    """Every row through the backfill intake's batch task, a batch at a time; the intake's totals."""
    from .lambda_runtime import LocalContext

    intake = stack.functions[stack.spec.function_named("intake_backfill").logical_id]
    totals = {"queued": 0, "invalid": 0}
    for start in range(0, len(rows), BATCH_ROWS):
        items = [{"index": r.index, "value": r.values} for r in rows[start : start + BATCH_ROWS]]
        answer = intake({"backfill": {"id": BACKFILL_ID, "mapping": MAPPING, "rows": items}}, LocalContext())
        totals = {k: totals[k] + int(answer.get(k, 0)) for k in totals}
    return totals


def dead_letters(stack: Any) -> dict[int, str]:
    """Row index -> the reason each dead-lettered row (or chunk's row) gives; read and removed."""
    from engage_contact.backfill.bulk_writer import read_chunk
    from engage_contact.backfill.rows import backfill_row

    spec = stack.spec.function_named("backfill_writer")
    url = stack.queue_urls[stack.spec.queues[spec.queue].dead_letter]
    sqs = stack.client("sqs")
    found: dict[int, str] = {}
    while messages := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages", []):
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
        )
        for message in messages:
            reason = (message.get("MessageAttributes") or {}).get("errorType", {}).get("StringValue", "")
            body = json.loads(message["Body"])
            chunk = read_chunk(message["MessageId"], body)
            named = backfill_row(body.get("idempotencyKey")) if chunk is None else None
            rows = list(chunk.rows) if chunk is not None else [named[1]] if named else []
            found.update(dict.fromkeys(rows, reason))
    return found


def check(stack: Any, rows: list[BulkRow], by_email: dict[str, list[str]]) -> tuple[dict[str, int], list[str]]:
    """The figures (rows, applied, dead-lettered, invalid, lost) and what went wrong, row by row."""
    from .lambda_runtime import LocalContext

    intake = stack.functions[stack.spec.function_named("intake_backfill").logical_id]
    report = intake({"backfillReport": {"id": BACKFILL_ID}}, LocalContext())
    dead = dead_letters(stack)
    state = stack.sandbox.state
    violations = []
    applied = lost = 0
    for row in (r for r in rows if r.valid):
        ids = by_email.get(row.email, [])
        if len(ids) > 1:
            violations.append(f"backfill row {row.index}: {len(ids)} contacts hold its email (made more than once)")
        if row.index in dead:
            if not dead[row.index]:
                violations.append(f"backfill row {row.index} was dead-lettered without a reason")
            continue
        contact = state.get_contact(ids[0]) if ids else None
        held = (contact or {}).get("firstName"), (contact or {}).get("favoriteStore")
        if contact is None or held != (row.values["First"], row.values["Store"]):
            lost += 1
            violations.append(f"backfill row {row.index}: neither applied (Engage holds {held}) nor dead-lettered")
        elif row.existing is not None and ids != [row.existing]:
            violations.append(f"backfill row {row.index}: its existing contact was made again, not updated")
        else:
            applied += 1
    invalid = sum(1 for r in rows if not r.valid)
    figures = {
        "rows": len(rows),
        "applied": applied,
        "deadLettered": len(dead),
        "invalid": invalid,
        "lost": lost,
        "bulkRequests": len(state.request_log("bulkCreate")),
    }
    if figures["bulkRequests"] == 0 and any(r.valid and r.existing is None for r in rows):
        violations.append("the backfill's new customers never reached Engage's bulk endpoint")
    counted = {k: int(report.get(k, 0)) for k in ("rows", "applied", "deadLettered", "invalid")}
    if counted["rows"] != len(rows) or counted["invalid"] != invalid:
        violations.append(f"the backfill's counters say {counted}, planned {len(rows)} rows, {invalid} invalid")
    if counted["applied"] + counted["deadLettered"] + counted["invalid"] != counted["rows"]:
        violations.append(f"the backfill's counters do not add up (each row once): {counted}")
    return figures, violations


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make soak (python -m local.soak), whose bulk part this is")
