"""DynamoDB throttling the table's writes: nothing that must happen once is sent to Engage twice (#29, point 13).

moto refuses UpdateItem as DynamoDB does over capacity (`local.moto_faults`). Every record the functions keep
after Engage's answer (the idempotency result, what Engage confirmed, the rate budget's lease) then fails: the
command is still a success, so its message is not handed back and nothing is sent again.
"""

from __future__ import annotations

import json

import pytest

from local import moto_faults
from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import SqsEventSource, send_command

BERTIL = DEMO_CONTACTS[1]["id"]  # a Contact, not a Member

COMMANDS = {
    "promote_contact": ({"contactId": BERTIL, "attributes": {"city": "Lund"}, "idempotencyKey": "t-promote"},
                        "promote"),
    "change_contact_type": ({"contactId": BERTIL, "contactTypeId": "Prospect", "idempotencyKey": "t-type"},
                            "contactType"),
    "update_contact": ({"lookup": {"email": "new.throttled@example.com"}, "attributes": {"city": "Lund"},
                        "createIfMissing": {"contactType": "Contact"}, "idempotencyKey": "t-create"}, "create"),
}  # fmt: skip


def engage_routes(sandbox, route):
    return [r for r in sandbox.state.request_log(route) if r["applied"]]


@pytest.mark.parametrize("function", list(COMMANDS))
def test_under_an_update_item_throttle_a_promote_a_create_or_a_type_change_is_sent_once(
    functions, queues, sandbox, function, log_output
):
    command, route = COMMANDS[function]
    source = SqsEventSource(queues.sqs, queues.urls[function], functions[function])
    send_command(queues.sqs, queues.urls[function], command, group="throttled")
    with moto_faults.throttle("UpdateItem") as throttled:
        source.drain()
    assert throttled["calls"] > 0  # the throttle was met (the idempotency record's completion at least)
    source.skip_backoff()
    source.drain()  # anything handed back would run again here
    assert len(engage_routes(sandbox, route)) == 1
    assert queues.counts(function) == (0, 0) and queues.messages(f"{function}-dlq") == []
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    assert any(line.get("metric") == "IdempotencyRecordNotCompleted" for line in lines)


def test_every_read_a_batch_goes_on_without_is_counted_and_logged_once_without_personal_data(
    functions, queues, sandbox, log_output, capsys
):
    """#29 point 3: a swallowed AWS failure is never silent: a metric, and one line naming it without values."""
    email = "anna@example.com"
    # a shop's customer: the only command that reads the contact remembered for it (a key-only one looks up)
    command = {"lookup": {"email": email}, "attributes": {"city": "Lund"}, "sendOnlyChanged": True,
               "sourceCustomer": "shopify:example.myshopify.com:1001"}  # fmt: skip
    source = SqsEventSource(queues.sqs, queues.urls["update_contact"], functions["update_contact"])
    send_command(queues.sqs, queues.urls["update_contact"], command, group="reads")
    by_id = {"contactId": BERTIL, "attributes": {"city": "Lund"}, "sendOnlyChanged": True}  # read ahead per batch
    send_command(queues.sqs, queues.urls["update_contact"], by_id, group=BERTIL)
    capsys.readouterr()
    # an erasure's mark is no read to go on without (an update must never bring back an erased person): spared
    with moto_faults.throttle("BatchGetItem"), moto_faults.throttle("GetItem", sparing="erased#"):
        source.drain()
    assert len(engage_routes(sandbox, "update")) == 2  # applied all the same
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    said = [line["metric"] for line in lines if line.get("message") == "fallback"]
    assert said.count("SentDigestsReadAheadFailed") == 1 and said.count("RememberedContactUnread") == 1
    out = capsys.readouterr().out
    assert "SentDigestsReadAheadFailed" in out and "RememberedContactUnread" in out
    assert email not in log_output.getvalue() and email not in out
