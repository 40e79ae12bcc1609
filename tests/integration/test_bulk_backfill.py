"""A backfill through Engage's bulk endpoint: the update function queues chunks, the backfill writer writes them.

The writer is driven by its SQS trigger (moto, a standard queue) against the sandbox, which plays the bulk
endpoints (docs/design.md, "Bulk writes"); every assertion is on what Engage received and holds, and on the
backfill's own report.
"""

from __future__ import annotations

import json

import pytest

from local.lambda_runtime import SqsEventSource

from ..conftest import load_function

MAPPING = {"lookup": {"email": "Email"}, "columns": {"First Name": "firstName", "City": "city"},
           "createIfMissing": {"contactType": "Contact"}}  # fmt: skip


@pytest.fixture
def backfill_queues(queues):
    sqs = queues.sqs
    dlq = sqs.create_queue(QueueName="backfill-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="backfill", Attributes={
        "VisibilityTimeout": "60", "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"}),
    })["QueueUrl"]  # fmt: skip
    return {"queue": url, "dlq": dlq}


@pytest.fixture
def update_function(function_env, backfill_queues, monkeypatch):
    function_env("update_contact")
    monkeypatch.setenv("BACKFILL_QUEUE_URL", backfill_queues["queue"])
    return load_function("intake_backfill").lambda_handler  # the state machine's tasks (check, batch, report)


@pytest.fixture
def writer(function_env, backfill_queues, monkeypatch, update_function):
    function_env("update_contact")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", backfill_queues["dlq"])
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "backfill-writer")
    return load_function("backfill_writer").lambda_handler


def queue_rows(update_function, backfill_id, rows, mapping=MAPPING, first_row=1, batch=100):
    """The Map's batches, handed to the backfill's task function as the state machine does."""
    for start in range(0, len(rows), batch):
        items = [
            {"index": first_row - 1 + start + n, "value": row} for n, row in enumerate(rows[start : start + batch])
        ]
        update_function({"backfill": {"id": backfill_id, "mapping": mapping, "rows": items}}, None)


def drain(queues, url, writer, rounds=20):
    """Deliver until the queue is empty, skipping each backoff (as time passing would)."""
    source = SqsEventSource(queues.sqs, url, writer, batch_size=40, timeout_seconds=60)
    for _ in range(rounds):
        source.drain()
        if not source.skip_backoff():
            return source
    return source


def report(update_function, backfill_id):
    return update_function({"backfillReport": {"id": backfill_id}}, None)


def log(sandbox, route):
    return sandbox.state.request_log(route)


def contacts_by_email(sandbox):
    found = {}
    for contact in sandbox.state.list_contacts():
        if contact.get("email"):
            found.setdefault(contact["email"].lower(), []).append(contact)
    return found


def people(n, domain="bulk.example.com"):
    return [{"Email": f"person{i}@{domain}", "First Name": f"P{i}", "City": "Lund"} for i in range(n)]


def test_new_customers_are_created_a_bulk_request_at_a_time_without_a_lookup_each(
    update_function, writer, backfill_queues, queues, sandbox
):
    queue_rows(update_function, "bulk-new", people(250))
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-new")
    assert (counted["rows"], counted["applied"], counted["deadLettered"], counted["lost"]) == (250, 250, 0, 0)
    assert len(log(sandbox, "bulkCreate")) == 1  # three chunks of one delivery: one request
    assert log(sandbox, "lookup") == [] and log(sandbox, "create") == []
    sent = json.loads(log(sandbox, "bulkCreate")[0]["body"])
    assert sent[0] == {"email": "person0@bulk.example.com", "firstName": "P0", "city": "Lund"}  # the sparse body
    assert log(sandbox, "bulkCreate")[0]["query"] == {"contactType": "Contact"}  # never the tenant's default
    made = contacts_by_email(sandbox)
    assert all(len(made[f"person{i}@bulk.example.com"]) == 1 for i in range(250))
    assert made["person7@bulk.example.com"][0]["contactType"] == "Contact"


def test_a_partial_bulk_failure_applies_the_rest_and_dead_letters_the_refused_row_with_its_reason(
    update_function, writer, backfill_queues, queues, sandbox
):
    sandbox.state.configure({"keyAttribute": "mobilePhone"})  # a tenant keyed by phone: a row without one is refused
    mapping = {**MAPPING, "columns": {**MAPPING["columns"], "Phone": "mobilePhone"}}
    rows = [{"Email": f"p{i}@bulk.example.com", "Phone": f"+4670000000{i}"} for i in range(3)]
    rows += [{"Email": "anna@example.com", "First Name": "Anna", "City": "Visby"},  # exists: refused, then found
             {"Email": "nophone@bulk.example.com", "City": "Lund"}]  # fmt: skip
    queue_rows(update_function, "bulk-partial", rows, mapping)
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-partial")
    assert (counted["applied"], counted["deadLettered"], counted["lost"], counted["complete"]) == (4, 1, 0, True)
    bulk = log(sandbox, "bulkCreate")
    assert len(bulk) == 1 and len(json.loads(bulk[0]["body"])) == 5
    made = contacts_by_email(sandbox)
    assert len(made["anna@example.com"]) == 1 and made["anna@example.com"][0]["city"] == "Visby"  # updated, once
    assert all(len(made[f"p{i}@bulk.example.com"]) == 1 for i in range(3))
    assert "nophone@bulk.example.com" not in made
    dead = queues.sqs.receive_message(QueueUrl=backfill_queues["dlq"], MessageAttributeNames=["All"])["Messages"]
    assert len(dead) == 1 and json.loads(dead[0]["Body"])["idempotencyKey"] == "backfill:bulk-partial:5"
    attributes = dead[0]["MessageAttributes"]
    assert attributes["errorType"]["StringValue"] == "EngageRejected"
    assert "MissingKeyAttribute" in attributes["errorMessage"]["StringValue"]
    assert "nophone" not in attributes["errorMessage"]["StringValue"]


def test_two_rows_for_one_customer_never_make_two_contacts(update_function, writer, backfill_queues, queues, sandbox):
    rows = [{"Email": "twice@bulk.example.com", "First Name": "One"}, *people(2),
            {"Email": "TWICE@bulk.example.com", "City": "Malmö"}]  # fmt: skip
    queue_rows(update_function, "bulk-twice", rows, batch=2)  # in two chunks of one delivery
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-twice")
    assert (counted["applied"], counted["lost"]) == (4, 0)
    twice = contacts_by_email(sandbox)["twice@bulk.example.com"]
    assert len(twice) == 1 and (twice[0]["firstName"], twice[0]["city"]) == ("One", "Malmö")  # in file order


def test_email_only_rows_with_create_if_missing_are_created_or_left_unchanged_never_no_data(
    update_function, writer, backfill_queues, queues, sandbox
):
    mapping = {"lookup": {"email": "Email"}, "createIfMissing": {"contactType": "Contact"}}
    rows = [{"Email": "only.key@bulk.example.com"}, {"Email": "bertil@example.com"}]
    queue_rows(update_function, "bulk-key-only", rows, mapping)
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-key-only")
    assert (counted["invalid"], counted["applied"], counted["deadLettered"]) == (0, 2, 0)
    assert len(contacts_by_email(sandbox)["only.key@bulk.example.com"]) == 1
    assert log(sandbox, "update") == []  # bertil exists: nothing to write, and that is no NoData


def test_a_bulk_request_answered_429_is_sent_again_and_creates_each_contact_once(
    update_function, writer, backfill_queues, queues, sandbox
):
    sandbox.state.add_faults([_fault(kind="status", route="bulkCreate", status=429, count=1)])
    queue_rows(update_function, "bulk-429", people(5, "r429.example.com"))
    drain(queues, backfill_queues["queue"], writer)
    assert report(update_function, "bulk-429")["applied"] == 5
    assert [r["status"] for r in log(sandbox, "bulkCreate")] == [None, 202]  # the 429 answered by the fault
    assert all(len(c) == 1 for c in contacts_by_email(sandbox).values())


@pytest.mark.parametrize("kind", ["apply_then_status", "apply_then_drop"])
def test_a_bulk_request_taken_but_answered_5xx_or_not_at_all_is_never_sent_again(
    update_function, writer, backfill_queues, queues, sandbox, kind
):
    sandbox.state.add_faults([_fault(kind=kind, route="bulkCreate", status=503, count=1)])
    queue_rows(update_function, "bulk-5xx", people(5, "r5xx.example.com"))
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-5xx")
    assert (counted["applied"], counted["deadLettered"], counted["lost"]) == (5, 0, 0)
    assert len(log(sandbox, "bulkCreate")) == 1  # the batch Engage took is not sent blind a second time
    made = contacts_by_email(sandbox)
    assert all(len(made[f"person{i}@r5xx.example.com"]) == 1 for i in range(5))  # made by the batch, once


def test_a_status_that_never_completes_loses_no_row_and_creates_none_twice(
    update_function, writer, backfill_queues, queues, sandbox
):
    sandbox.state.configure({"bulkDelayMs": -1})  # Engage never processes the batch
    writer.writer = writer.build_writer(patience=0, sleep=lambda seconds: None)
    queue_rows(update_function, "bulk-stuck", people(3, "stuck.example.com"))
    source = drain(queues, backfill_queues["queue"], writer, rounds=2)
    counted = report(update_function, "bulk-stuck")
    # the rows went the single way: each create answered 409 (its key is held by the batch), nothing created
    assert counted["applied"] == 0 and counted["lost"] == 3
    codes = {r["errorCode"] for r in log(sandbox, "create")}
    assert codes == {"ContactWithKeyIsBeingCreated"}
    assert "person0@stuck.example.com" not in contacts_by_email(sandbox)
    for batch in sandbox.state.batches.values():  # Engage processes it after all, late
        batch["ready"] = 0
    source.skip_backoff()
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-stuck")
    assert (counted["applied"], counted["lost"]) == (3, 0)
    made = contacts_by_email(sandbox)
    assert all(len(made[f"person{i}@stuck.example.com"]) == 1 for i in range(3))


def test_a_crash_between_the_bulk_request_and_reading_its_status_loses_no_row_and_creates_none_twice(
    update_function, writer, backfill_queues, queues, sandbox, monkeypatch
):
    from engage_contact.aws.bulk_jobs import BulkJobs
    from engage_contact.backfill import bulk_writer

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash("the container died after Engage took the batch, before its id was recorded")

    queue_rows(update_function, "bulk-crash", people(4, "crash.example.com"))
    source = SqsEventSource(queues.sqs, backfill_queues["queue"], writer, batch_size=40)
    with monkeypatch.context() as patched:
        patched.setattr(BulkJobs, "sent", crash)
        assert source.poll_once()["raised"]  # the whole delivery failed: it comes back
    assert len(log(sandbox, "bulkCreate")) == 1
    monkeypatch.setattr(bulk_writer, "CLAIM_SECONDS", 0)  # the claim's invocation is gone
    source.skip_backoff()
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-crash")
    assert (counted["applied"], counted["deadLettered"], counted["lost"]) == (4, 0, 0)
    assert len(log(sandbox, "bulkCreate")) == 1  # the rows went the single way, looked up first
    made = contacts_by_email(sandbox)
    assert all(len(made[f"person{i}@crash.example.com"]) == 1 for i in range(4))


def test_a_crash_after_the_batch_id_is_recorded_reads_the_same_batch_again(
    update_function, writer, backfill_queues, queues, sandbox
):
    sandbox.state.add_faults([_fault(kind="drop", route="bulkStatus", count=8)])  # the status cannot be read
    queue_rows(update_function, "bulk-resume", people(4, "resume.example.com"))
    source = drain(queues, backfill_queues["queue"], writer, rounds=1)
    assert report(update_function, "bulk-resume")["applied"] == 0
    source.skip_backoff()
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-resume")
    assert (counted["applied"], counted["lost"]) == (4, 0)
    assert len(log(sandbox, "bulkCreate")) == 1 and log(sandbox, "create") == []  # the same batch, read again


def _fault(**fields):
    from local.engage_sandbox.state import Fault

    return Fault.from_json(fields)


def test_a_dead_lettered_row_sent_back_by_a_redrive_is_applied_and_counted_once(
    update_function, writer, backfill_queues, queues, sandbox
):
    mapping = {"lookup": {"email": "Email"}, "columns": {"City": "city"}}  # no createIfMissing
    queue_rows(update_function, "bulk-redrive", [{"Email": "later@bulk.example.com", "City": "Lund"}, *people(1)],
               mapping)  # fmt: skip
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-redrive")
    assert (counted["applied"], counted["deadLettered"]) == (0, 2)  # ContactNotFound: at once, with its reason
    dead = queues.sqs.receive_message(QueueUrl=backfill_queues["dlq"], MaxNumberOfMessages=10,
                                      MessageAttributeNames=["All"])["Messages"]  # fmt: skip
    assert {m["MessageAttributes"]["errorType"]["StringValue"] for m in dead} == {"ContactNotFound"}
    sandbox.state.add_contact({"contactType": "Contact", "attributes": {"email": "later@bulk.example.com"}})
    later = next(m for m in dead if "later@" in m["Body"])
    queues.sqs.send_message(QueueUrl=backfill_queues["queue"], MessageBody=later["Body"])  # the redrive
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-redrive")
    assert (counted["applied"], counted["deadLettered"], counted["redriven"]) == (1, 1, 1)
    assert contacts_by_email(sandbox)["later@bulk.example.com"][0]["city"] == "Lund"


def test_a_crash_between_a_single_rows_success_and_its_count_counts_the_row_once_on_redelivery(
    update_function, writer, backfill_queues, queues, sandbox
):
    """The writer's single way (a row of a known contact): its container dies after the row succeeded and before its
    count was written (DynamoDB refusing the count, a real fault); the chunk comes back, the row counts once."""
    from local import moto_faults

    mapping = {"lookup": {"email": "Email"}, "columns": {"City": "city"}}  # no createIfMissing: the single way
    queue_rows(update_function, "bulk-crash", [{"Email": "anna@example.com", "City": "Crashed"}], mapping)

    def crashing(event, context):  # the function did its work, then its container died before answering
        writer(event, context)
        raise RuntimeError("the container died")

    source = SqsEventSource(queues.sqs, backfill_queues["queue"], crashing, batch_size=40, timeout_seconds=60)
    with moto_faults.throttle("TransactWriteItems", only="backfill#bulk-crash#applied") as refused, \
            moto_faults.throttle("UpdateItem", only="backfill#bulk-crash") as refused_update:  # fmt: skip
        assert source.poll_once()["raised"]
    assert refused["calls"] + refused_update["calls"] >= 1
    source.skip_backoff()
    drain(queues, backfill_queues["queue"], writer)
    counted = report(update_function, "bulk-crash")
    assert (counted["rows"], counted["applied"], counted["deadLettered"], counted["lost"]) == (1, 1, 0, 0)
    updates = [r for r in log(sandbox, "update") if "Crashed" in r["body"]]
    assert len(updates) == 1  # Engage saw the row once: the redelivery was a replay
