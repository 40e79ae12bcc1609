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
