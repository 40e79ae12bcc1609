# ruff: noqa: F811 - the fixtures shared with test_bulk_backfill are imported, and pytest passes them as arguments
"""A backfill's rows of customers Engage holds, through Engage's bulk update (`PATCH /contacts/bulk`).

Driven as tests/integration/test_bulk_backfill.py drives the bulk create: the backfill's task queues chunks,
the writer takes them from its SQS queue (moto), the sandbox plays Engage; assertions are on what Engage
received and holds, and on the backfill's own report.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from local.lambda_runtime import SqsEventSource

from ..conftest import load_function
from .test_bulk_backfill import (  # noqa: F401 - fixtures
    MAPPING,
    _fault,
    backfill_queues,
    contacts_by_email,
    drain,
    log,
    queue_rows,
    report,
    update_function,
    writer,
)

# createIfMissing with a `source`: a create the bulk endpoint cannot express, so no bulk create comes first and
# the rows' customers are known by type (Contact) for the bulk update
NO_BULK_CREATE = {**MAPPING, "createIfMissing": {"contactType": "Contact", "source": "ECOM"}}


def seed(sandbox, emails, contact_type="Contact"):
    return {e: sandbox.state.add_contact({"contactType": contact_type,
                                          "attributes": {"email": e, "firstName": "Old", "city": "Ystad"}})
            for e in emails}  # fmt: skip


def rows_for(emails, city="Lund"):
    return [{"Email": e, "First Name": f"New{n}", "City": city} for n, e in enumerate(emails)]


def emails(n, domain="upd.example.com"):
    return [f"known{i}@{domain}" for i in range(n)]


def test_customers_engage_holds_are_updated_by_one_bulk_update_of_their_type_with_only_what_changed(
    update_function, writer, backfill_queues, queues, sandbox
):
    known = seed(sandbox, emails(6))
    seed(sandbox, ["member@upd.example.com"], "Member")
    new = ["new0@upd.example.com", "new1@upd.example.com"]
    queue_rows(update_function, "upd-mix", rows_for([*known, "member@upd.example.com", *new]))
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "upd-mix")
    assert (counted["rows"], counted["applied"], counted["deadLettered"], counted["lost"]) == (9, 9, 0, 0)
    assert len(log(sandbox, "bulkCreate")) == 1
    patch = log(sandbox, "bulkUpdate")
    assert len(patch) == 1 and patch[0]["query"] == {"contactType": "Contact"}  # never the tenant's default
    items = json.loads(patch[0]["body"])
    assert sorted(i["contactId"] for i in items) == sorted(known.values())
    assert items[0] == {"contactId": known["known0@upd.example.com"], "firstName": "New0", "city": "Lund"}
    typed = [r for r in log(sandbox, "lookup") if r["query"].get("contactType") == "Contact"]
    assert len(typed) == 7  # the six, and the Member who is not found as a Contact
    # the Member is not found as a Contact: it takes the single path (one update), and stays a Member
    assert len(log(sandbox, "update")) == 1
    made = contacts_by_email(sandbox)
    assert made["member@upd.example.com"][0]["contactType"] == "Member"
    assert [made[e][0]["firstName"] for e in known] == [f"New{n}" for n in range(6)]
    assert all(len(made[e]) == 1 for e in new)

    # the same rows again (another backfill): Engage holds all of it, nothing is sent but the lookups
    before = len(log(sandbox, "update"))
    queue_rows(update_function, "upd-mix-again", rows_for(list(known)))
    drain(queues, backfill_queues["queue"], writer)
    assert report(update_function, "upd-mix-again")["applied"] == 6
    assert len(log(sandbox, "bulkUpdate")) == 1 and len(log(sandbox, "update")) == before


def test_avoid_triggering_export_is_asked_for_when_the_deployment_sets_it(
    function_env, backfill_queues, queues, sandbox, monkeypatch, update_function
):
    function_env("update_contact")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", backfill_queues["dlq"])
    monkeypatch.setenv("BACKFILL_AVOID_TRIGGERING_EXPORT", "true")
    handler = load_function("backfill_writer").lambda_handler
    known = seed(sandbox, emails(3, "export.example.com"))
    queue_rows(update_function, "upd-export", rows_for(known), NO_BULK_CREATE)
    drain(queues, backfill_queues["queue"], handler)
    assert report(update_function, "upd-export")["applied"] == 3
    assert log(sandbox, "bulkUpdate")[0]["query"] == {"avoidTriggeringExport": "true", "contactType": "Contact"}


def test_a_partial_bulk_update_failure_writes_the_refused_row_the_single_way_or_dead_letters_it_with_its_reason(
    update_function, writer, backfill_queues, queues, sandbox
):
    known = seed(sandbox, emails(4, "partial.example.com"))
    once, always = known["known1@partial.example.com"], known["known2@partial.example.com"]
    sandbox.state.add_faults([_fault(kind="status", route="update", contact=once, status=503, count=1),
                              _fault(kind="status", route="update", contact=always, status=400,
                                     code="InvalidAttributeValue", count=10)])  # fmt: skip
    queue_rows(update_function, "upd-partial", rows_for(known), NO_BULK_CREATE)
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "upd-partial")
    assert (counted["applied"], counted["deadLettered"], counted["lost"], counted["complete"]) == (3, 1, 0, True)
    assert len(log(sandbox, "bulkUpdate")) == 1
    singles = log(sandbox, "update")  # the two refused rows, one by one
    assert sorted(r["contactId"] for r in singles) == sorted([once, always])
    made = contacts_by_email(sandbox)
    assert made["known1@partial.example.com"][0]["city"] == "Lund"  # refused in the batch, written by itself
    assert made["known2@partial.example.com"][0]["city"] == "Ystad"
    dead = queues.sqs.receive_message(QueueUrl=backfill_queues["dlq"], MessageAttributeNames=["All"])["Messages"]
    assert len(dead) == 1 and json.loads(dead[0]["Body"])["idempotencyKey"] == "backfill:upd-partial:3"
    reason = dead[0]["MessageAttributes"]["errorMessage"]["StringValue"]
    assert "InvalidAttributeValue" in reason and "partial.example.com" not in reason


def test_a_bulk_update_answered_429_is_sent_again_and_applies_each_row_once(
    update_function, writer, backfill_queues, queues, sandbox
):
    known = seed(sandbox, emails(4, "u429.example.com"))
    sandbox.state.add_faults([_fault(kind="status", route="bulkUpdate", status=429, count=3)])
    queue_rows(update_function, "upd-429", rows_for(known), NO_BULK_CREATE)
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "upd-429")
    assert (counted["applied"], counted["lost"]) == (4, 0)
    statuses = [r["status"] for r in log(sandbox, "bulkUpdate")]
    assert statuses[-1] == 202 and statuses.count(202) == 1  # taken once, after the refusals
    assert log(sandbox, "update") == []  # nothing written twice, nothing the single way
    assert [c[0]["city"] for c in contacts_by_email(sandbox).values() if c[0]["email"] in known] == ["Lund"] * 4


@pytest.mark.parametrize("kind", ["apply_then_status", "apply_then_drop"])
def test_a_bulk_update_taken_but_answered_5xx_or_not_at_all_is_read_back_never_written_twice(
    update_function, writer, backfill_queues, queues, sandbox, kind, monkeypatch
):
    from engage_contact.backfill import bulk_writer

    monkeypatch.setattr(bulk_writer, "CLAIM_SECONDS", 0)  # read back on the chunk's next delivery
    known = seed(sandbox, emails(4, "u5xx.example.com"))
    sandbox.state.add_faults([_fault(kind=kind, route="bulkUpdate", status=503, count=1)])
    queue_rows(update_function, "upd-5xx", rows_for(known), NO_BULK_CREATE)
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "upd-5xx")
    assert (counted["applied"], counted["deadLettered"], counted["lost"]) == (4, 0, 0)
    assert len(log(sandbox, "bulkUpdate")) == 1  # the batch Engage took is not sent a second time
    assert log(sandbox, "update") == []  # each contact read back (it holds the values): none written twice
    assert len(log(sandbox, "get")) >= 4
    made = contacts_by_email(sandbox)
    assert [made[e][0]["city"] for e in known] == ["Lund"] * 4


def test_a_bulk_update_whose_status_never_completes_loses_no_row(
    update_function, writer, backfill_queues, queues, sandbox
):
    known = seed(sandbox, emails(3, "ustuck.example.com"))
    sandbox.state.configure({"bulkDelayMs": -1})  # Engage never processes the batch
    writer.writer = writer.build_writer(patience=0, sleep=lambda seconds: None)
    queue_rows(update_function, "upd-stuck", rows_for(known), NO_BULK_CREATE)
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "upd-stuck")
    assert (counted["applied"], counted["deadLettered"], counted["lost"]) == (3, 0, 0)
    assert len(log(sandbox, "bulkUpdate")) == 1  # never sent again
    assert len(log(sandbox, "update")) == 3  # read back (not applied), then written the single way, once each
    made = contacts_by_email(sandbox)
    assert [made[e][0]["city"] for e in known] == ["Lund"] * 3


def test_a_crash_between_the_bulk_update_and_reading_its_status_neither_loses_nor_rewrites_a_row(
    update_function, writer, backfill_queues, queues, sandbox, monkeypatch
):
    from engage_contact.aws.bulk_jobs import BulkJobs
    from engage_contact.backfill import bulk_writer

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash("the container died after Engage took the batch, before its id was recorded")

    known = seed(sandbox, emails(4, "ucrash.example.com"))
    queue_rows(update_function, "upd-crash", rows_for(known), NO_BULK_CREATE)
    source = SqsEventSource(queues.sqs, backfill_queues["queue"], writer, batch_size=40)
    with monkeypatch.context() as patched:
        patched.setattr(BulkJobs, "sent", crash)
        source.poll_once()  # the chunk's record stays `patching`: the outcome of its batch is unknown
    assert len(log(sandbox, "bulkUpdate")) == 1
    monkeypatch.setattr(bulk_writer, "CLAIM_SECONDS", 0)  # the claim's invocation is gone
    source.skip_backoff()
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "upd-crash")
    assert (counted["applied"], counted["deadLettered"], counted["lost"]) == (4, 0, 0)
    assert len(log(sandbox, "bulkUpdate")) == 1 and log(sandbox, "update") == []  # read back, not written again
    made = contacts_by_email(sandbox)
    assert [made[e][0]["city"] for e in known] == ["Lund"] * 4


def test_a_live_change_applied_after_the_chunk_was_queued_is_not_overwritten_by_the_bulk_update(
    update_function, writer, backfill_queues, queues, sandbox
):
    known = seed(sandbox, emails(3, "order.example.com"))
    queue_rows(update_function, "upd-order", rows_for(known), NO_BULK_CREATE)
    live = load_function("update_contact").lambda_handler  # a shop's webhook, stamped after the chunk was queued
    live({"lookup": {"email": "known0@order.example.com"}, "attributes": {"city": "Kiruna"},
          "eventTime": dt.datetime.now(tz=dt.UTC).isoformat()}, None)  # fmt: skip
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "upd-order")
    assert (counted["applied"], counted["lost"]) == (3, 0)  # the stale row counts as applied, as a stale command
    made = contacts_by_email(sandbox)
    assert made["known0@order.example.com"][0]["city"] == "Kiruna"  # the live change stands
    assert [made[e][0]["city"] for e in list(known)[1:]] == ["Lund"] * 2
    assert len(json.loads(log(sandbox, "bulkUpdate")[0]["body"])) == 2


def test_a_live_command_for_a_contact_in_a_bulk_update_in_flight_waits_for_it(function_env, sandbox):
    """The hold a bulk update takes makes a live command with an event time wait (retried), never go first."""
    function_env("update_contact")
    from engage_contact.aws.event_times import EventTimes
    from engage_contact.container import Container
    from engage_contact.errors import RequestInProgress

    container = Container.from_env()
    times: EventTimes = container.event_times()
    now = dt.datetime.now(tz=dt.UTC)
    assert times.hold("g-1", now, 60, "job-a") is True
    assert times.hold("g-1", now, 60, "job-b") is None  # another batch's hold: that row waits its turn
    with pytest.raises(RequestInProgress):
        times.claim("g-1", now + dt.timedelta(seconds=1))
    times.release("g-1", "job-a")
    assert times.claim("g-1", now + dt.timedelta(seconds=1)) is not None
    assert times.hold("g-1", now, 60, "job-b") is False  # a newer event was applied: the row is stale
