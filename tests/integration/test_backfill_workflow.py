"""statemachine/backfill.asl.json in moto's Step Functions interpreter, the backfill function as its Lambda task.

moto's interpreter (5.2) has no ItemBatcher and no JSONL ItemReader, so the Distributed Map itself does not
run there: its ItemProcessor is run as a state machine of its own on the batch input the Map would hand it
({"Items": [{"index", "value"}], "BatchInput": {"id", "mapping"}}), and the states after the Map (the
wait-and-check loop and the report written to S3) are run from CountRows on. Between the two, the queued
commands are applied by the update function through its SQS trigger, against the sandbox.
"""

from __future__ import annotations

import json
import types

import boto3
import pytest

from local.lambda_runtime import LocalContext, SqsEventSource
from local.workflow import LocalWorkflow

from ..conftest import REGION, ROOT, load_function

DEFINITION = json.loads((ROOT / "statemachine" / "backfill.asl.json").read_text())
BUCKET = "backfill-bucket"
REPORTS = "backfill/reports/"
MAPPING = {"preset": "shopify", "createIfMissing": {"contactType": "Contact"}}


def rows(*emails):
    return [{"Email": e, "First Name": f"Name{i}", "Last Name": "", "Default Address Address1": "",
             "Default Address City": "Lund", "Default Address Zip": "", "Default Address Country Code": "SE",
             "Phone": "", "Accepts Email Marketing": "yes", "Accepts SMS Marketing": ""}
            for i, e in enumerate(emails)]  # fmt: skip


@pytest.fixture
def update_function(function_env, queues, monkeypatch):
    function_env("update_contact")
    monkeypatch.setenv("UPDATE_QUEUE_URL", queues.urls["update_contact"])
    return load_function("update_contact").lambda_handler


@pytest.fixture
def backfill_function(update_function):
    """The backfill's own function (intake: it reads rows and queues commands, with no Engage client)."""
    return load_function("intake_backfill").lambda_handler


@pytest.fixture
def machine(backfill_function, monkeypatch, tmp_path):
    """A part of the backfill state machine, created in moto with the template's substitutions."""
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    monkeypatch.setattr(retrier_decl, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )

    def make(definition):
        text = json.dumps(definition).replace("${BackfillBucket}", BUCKET).replace("${BackfillReportPrefix}", REPORTS)
        path = tmp_path / "part.asl.json"
        path.write_text(text)
        return LocalWorkflow({"IntakeBackfillFunction": backfill_function}, REGION, definition=path)

    return make


def item_processor(format_state="QueueRowsCsv"):
    return {"StartAt": "QueueBatch", **{k: v for k, v in DEFINITION["States"][format_state]["ItemProcessor"].items()
                                        if k == "States"}}  # fmt: skip


def after_the_map():
    """The states from CountRows on: the wait-and-check loop and the report (the states they can reach)."""
    states, todo = {}, ["CountRows"]
    while todo:
        name = todo.pop()
        if name in states:
            continue
        states[name] = state = DEFINITION["States"][name]
        todo += [c["Next"] for c in state.get("Choices", [])] + [state[k] for k in ("Next", "Default") if k in state]
    return {"StartAt": "CountRows", "States": states}


def batch_input(backfill_id, values, first_index=0):
    return {"Items": [{"index": first_index + i, "value": v} for i, v in enumerate(values)],
            "BatchInput": {"id": backfill_id, "mapping": MAPPING}}  # fmt: skip


def apply_queued(queues, update_function):
    source = SqsEventSource(queues.sqs, queues.urls["update_contact"], update_function, batch_size=10)
    while source.poll_once(wait_seconds=0) is not None:
        pass


def test_the_map_hands_each_batch_to_the_backfill_function_which_queues_its_commands(machine, queues):
    batch = rows("new.one@example.com", "", "new.two@example.com")
    execution = machine(item_processor()).run(batch_input("bf-a", batch, first_index=100))
    assert execution["status"] == "SUCCEEDED", execution
    invalid = [{"row": 102, "reason": "the key column 'Email' is empty"}]
    assert execution["output"] == {"rows": 3, "queued": 2, "invalid": 1, "invalidRows": invalid}
    queued = [json.loads(m["Body"]) for m in queues.messages("update_contact")]
    assert [c["idempotencyKey"] for c in queued] == ["backfill:bf-a:101", "backfill:bf-a:103"]
    assert queued[0]["lookup"] == {"email": "new.one@example.com"} and queued[0]["createIfMissing"]


def test_a_batch_handed_over_twice_is_counted_and_applied_once(machine, queues, update_function, sandbox):
    batch = batch_input("bf-b", rows("twice@example.com"))
    processor = machine(item_processor())
    assert processor.run(batch)["status"] == processor.run(batch)["status"] == "SUCCEEDED"
    apply_queued(queues, update_function)
    assert len([r for r in sandbox.state.request_log("create") if r["status"] == 201]) == 1
    report = machine(after_the_map()).run({"id": "bf-b", "maxWaitMinutes": 0, "checks": {"n": 0}})
    assert report["output"]["rows"] == 1 and report["output"]["applied"] == 1


def test_after_the_map_every_row_is_accounted_for_and_the_report_is_written_to_s3(
    machine, queues, update_function, sandbox
):
    batch = rows("first@example.com", "not-an-email", "second@example.com", "third@example.com")
    batch[3]["First Name"] = ""  # only a key and a city left: still a change
    batch[2]["Accepts Email Marketing"] = "perhaps"  # invalid: not yes or no
    assert machine(item_processor()).run(batch_input("bf-c", batch))["status"] == "SUCCEEDED"
    apply_queued(queues, update_function)
    execution = machine(after_the_map()).run({"id": "bf-c", "maxWaitMinutes": 0, "checks": {"n": 0}})
    assert execution["status"] == "SUCCEEDED", execution
    report = json.loads(boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=f"{REPORTS}bf-c.json")[
        "Body"].read())  # fmt: skip
    assert report == execution["output"]
    assert {k: report[k] for k in ("rows", "invalid", "queued", "applied", "deadLettered", "lost", "complete")} == {
        "rows": 4, "invalid": 2, "queued": 2, "applied": 2, "deadLettered": 0, "lost": 0, "complete": True}  # fmt: skip
    created = {json.loads(r["body"])["email"] for r in sandbox.state.request_log("create") if r["status"] == 201}
    assert created == {"first@example.com", "third@example.com"}


def test_rows_not_yet_applied_when_the_wait_ends_fail_the_run_with_the_report_written(machine, queues):
    assert machine(item_processor()).run(batch_input("bf-d", rows("late@example.com")))["status"] == "SUCCEEDED"
    execution = machine(after_the_map()).run({"id": "bf-d", "maxWaitMinutes": 0, "checks": {"n": 0}})
    assert execution["status"] == "FAILED" and execution["error"] == "RowsLost"
    report = json.loads(boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=f"{REPORTS}bf-d.json")[
        "Body"].read())  # fmt: skip
    assert report["rows"] == 1 and report["lost"] == 1 and report["complete"] is False


def test_a_dead_lettered_row_is_counted_and_a_redriven_one_moves_to_applied(machine, queues, update_function, sandbox):
    mapping_without_create = {"preset": "shopify"}
    batch = {"Items": [{"index": 0, "value": rows("nobody@example.com")[0]}],
             "BatchInput": {"id": "bf-e", "mapping": mapping_without_create}}  # fmt: skip
    assert machine(item_processor()).run(batch)["status"] == "SUCCEEDED"
    apply_queued(queues, update_function)  # ContactNotFound: dead-lettered at once
    counted = machine(after_the_map())
    assert counted.run({"id": "bf-e", "maxWaitMinutes": 0, "checks": {"n": 0}})["output"]["deadLettered"] == 1
    sandbox.state.configure({"keyAttribute": "email"})
    dead = queues.messages("update_contact-dlq")
    sandbox_seed = {"id": "0a1b2c3d-0000-4000-8000-00000000beef", "contactType": "Contact",
                    "attributes": {"email": "nobody@example.com"}}  # fmt: skip
    import requests

    requests.post(f"{sandbox.url}/_sandbox/contacts", json=sandbox_seed, timeout=5)  # the cause, fixed
    queues.sqs.send_message(QueueUrl=queues.urls["update_contact"], MessageBody=dead[0]["Body"],
                            MessageGroupId="redrive", MessageDeduplicationId="redrive-1")  # fmt: skip
    apply_queued(queues, update_function)
    report = counted.run({"id": "bf-e", "maxWaitMinutes": 0, "checks": {"n": 0}})["output"]
    assert (report["applied"], report["deadLettered"], report["redriven"], report["complete"]) == (1, 0, 1, True)


def test_the_mapping_is_checked_against_the_files_header_before_any_row(backfill_function):
    check = {"id": "bf-f", "mapping": "shopify", "format": "csv", "head": "\ufeffEmail,First Name\nx@example.com,X\n"}
    with pytest.raises(Exception) as refused:
        backfill_function({"backfillCheck": check}, LocalContext())
    assert type(refused.value).__name__ == "InvalidRequest" and "Last Name" in str(refused.value)
    check["mapping"] = {"lookup": {"email": "Email"}, "columns": {"First Name": "firstName"}}
    assert backfill_function({"backfillCheck": check}, LocalContext())["checked"] is True


def test_a_crash_between_a_rows_success_and_its_count_counts_the_row_once_on_redelivery(
    backfill_function, queues, update_function, sandbox
):
    """The container dies after a row's command succeeded (its idempotency record completed) and before its count was
    written (DynamoDB refusing the count, a real fault): the redelivered row is a replay, and is counted, once."""
    from local import moto_faults

    create = {
        "id": "bf-crash",
        "mapping": MAPPING,
        "rows": [
            {"index": i, "value": row}
            for i, row in enumerate(rows("crash.one@example.com", "crash.two@example.com", ""))
        ],
    }
    unknown = {"id": "bf-crash", "mapping": {"preset": "shopify"},
               "rows": [{"index": 9, "value": rows("crash.nobody@example.com")[0]}]}  # fmt: skip
    for batch in (create, unknown):
        backfill_function({"backfill": batch}, LocalContext())

    def crashing(event, context):  # the function did its work, then its container died before answering
        update_function(event, context)
        raise RuntimeError("the container died")

    source = SqsEventSource(queues.sqs, queues.urls["update_contact"], crashing, batch_size=10)
    # the counts refused by DynamoDB, however they are written
    with moto_faults.throttle("TransactWriteItems", only="backfill#") as refused, \
            moto_faults.throttle("UpdateItem", only="backfill#") as refused_update:  # fmt: skip
        assert source.poll_once()["raised"]
    assert refused["calls"] + refused_update["calls"] >= 3  # each row's count was tried, and refused
    bodies = [record["body"] for record in source.last_event["Records"]]
    source.skip_backoff()
    apply_queued(queues, update_function)  # redelivered: the two rows are replays, the unknown one dead again
    for n, body in enumerate(bodies):  # and once more, as SQS may deliver twice
        group = json.loads(body)["idempotencyKey"]
        queues.sqs.send_message(QueueUrl=queues.urls["update_contact"], MessageBody=body, MessageGroupId=group,
                                MessageDeduplicationId=f"again-{n}")  # fmt: skip
    apply_queued(queues, update_function)
    counted = backfill_function({"backfillReport": {"id": "bf-crash"}}, LocalContext())
    assert (counted["rows"], counted["invalid"], counted["applied"], counted["deadLettered"]) == (4, 1, 2, 1)
    assert counted["applied"] == counted["rows"] - counted["invalid"] - counted["deadLettered"]
    assert counted["lost"] == 0 and counted["complete"] is True
    created = [r for r in sandbox.state.request_log("create") if "crash." in r["body"]]
    assert len(created) == 2  # Engage saw each row once: the redeliveries were replays
