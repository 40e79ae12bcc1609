"""Every function through every trigger, against the sandbox and moto: what Engage and the queues hold."""

from __future__ import annotations

import base64
import json

import pytest

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.lambda_runtime import LocalContext, SqsEventSource, api_event, send_command
from local.signing import signed_headers

from ..conftest import REGION

ANNA, BERTIL, CECILIA = (c["id"] for c in DEMO_CONTACTS)
ROUTES = {
    "update_contact": "/contacts/update",
    "promote_contact": "/contacts/promote",
    "change_contact_type": "/contacts/contact-type",
}


def ctx():
    return LocalContext(timeout_seconds=30)


def engage_log(sandbox, route=None):
    return sandbox.state.request_log(route)


def add_fault(sandbox, **spec):
    sandbox.state.add_faults([Fault.from_json(spec)])


@pytest.fixture
def call_api(functions, webhook_secret):
    """Call a function through API Gateway with a request signed by the stack's webhook secret."""

    def call(name, body, *, method="POST", path=None, raw=None, base64_body=False, headers=None):
        text = raw if raw is not None else json.dumps(body)
        signed = headers if headers is not None else signed_headers(webhook_secret[1], text)
        event = api_event(method, path or ROUTES[name], text, {"Content-Type": "application/json", **signed},
                          base64_body=base64_body)  # fmt: skip
        response = functions[name](event, ctx())
        return response["statusCode"], json.loads(response["body"]), response["headers"]

    return call


# --- direct invocation (Step Functions, SDK) --------------------------------------------------------


def test_direct_update_returns_the_contract_result(functions, sandbox):
    result = functions["update_contact"](
        {"contactId": ANNA, "attributes": {"lastName": "Examplesson", "street": ""}, "clear": ["careOf"]}, ctx()
    )
    assert result["contactId"] == ANNA and result["sent"] == {"lastName": "Examplesson", "careOf": ""}
    assert result["droppedEmpty"] == ["street"] and result["contact"]["lastName"] == "Examplesson"
    (request,) = engage_log(sandbox)
    assert json.loads(request["body"]) == {"lastName": "Examplesson", "careOf": ""}
    stored = sandbox.state.get_contact(ANNA)
    assert stored["street"] == "Storgatan 1" and stored["careOf"] == ""


def test_direct_update_by_lookup_resolves_the_contact_first(functions, sandbox):
    result = functions["update_contact"](
        {"lookup": {"email": "bertil@example.com"}, "attributes": {"city": "Lund"}}, ctx()
    )
    assert result["contactId"] == BERTIL
    assert [r["route"] for r in engage_log(sandbox)] == ["lookup", "update"]


def test_direct_promote_and_change_type(functions, sandbox):
    promoted = functions["promote_contact"]({"contactId": BERTIL, "attributes": {"memberNumber": "M2"}}, ctx())
    assert promoted["contact"]["contactType"] == "Member"
    changed = functions["change_contact_type"]({"contactId": CECILIA, "contactTypeId": "Contact"}, ctx())
    assert changed == {"contactId": CECILIA, "contact": None, "sent": {"contactTypeId": "Contact"}, "droppedEmpty": []}
    assert sandbox.state.get_contact(CECILIA)["contactType"] == "Contact"


def test_direct_promote_of_a_member_is_a_success(functions, sandbox):
    result = functions["promote_contact"]({"contactId": ANNA}, ctx())
    assert result["contact"]["contactType"] == "Member"
    assert result["alreadyMember"] is True and result["sent"] == {}
    assert [r["route"] for r in engage_log(sandbox)] == ["promote", "get"]


def test_promote_of_a_member_still_writes_its_attributes_by_an_update(functions, sandbox):
    command = {"contactId": ANNA, "attributes": {"memberNumber": "M2002", "city": "Uppsala", "careOf": ""}}
    result = functions["promote_contact"](command, ctx())
    assert result["alreadyMember"] is True
    assert result["sent"] == {"memberNumber": "M2002", "city": "Uppsala"} and result["droppedEmpty"] == ["careOf"]
    assert [r["route"] for r in engage_log(sandbox)] == ["promote", "get", "update"]
    assert json.loads(engage_log(sandbox, "update")[0]["body"]) == {"memberNumber": "M2002", "city": "Uppsala"}
    stored = sandbox.state.get_contact(ANNA)
    assert (stored["city"], stored["memberNumber"], stored["careOf"]) == ("Uppsala", "M2002", "Berg")


def test_promote_whose_outcome_was_unknown_and_shows_a_member_writes_the_attributes(functions, sandbox):
    add_fault(sandbox, kind="apply_then_status", route="promote", status=503, count=1)
    result = functions["promote_contact"]({"contactId": BERTIL, "attributes": {"memberNumber": "M2"}}, ctx())
    assert result["alreadyMember"] is True and result["sent"] == {"memberNumber": "M2"}
    assert [r["route"] for r in engage_log(sandbox)] == ["promote", "get", "update"]
    assert sandbox.state.get_contact(BERTIL)["_promotions"] == 1


def test_promote_of_a_new_member_says_nothing_of_already(functions, sandbox):
    result = functions["promote_contact"]({"contactId": BERTIL, "attributes": {"memberNumber": "M2"}}, ctx())
    assert "alreadyMember" not in result and sandbox.state.get_contact(BERTIL)["memberNumber"] == "M2"


@pytest.mark.parametrize(
    ("name", "command", "error"),
    [
        ("update_contact", {"contactId": ANNA, "attributes": {"firstNam": "A"}}, "InvalidRequest"),
        ("update_contact", {"contactId": ANNA, "attributes": {"city": ""}}, "NoData"),
        ("update_contact", {"lookup": {"email": "nobody@example.com"}, "attributes": {"city": "L"}}, "ContactNotFound"),
        ("change_contact_type", {"contactId": ANNA, "contactTypeId": "Member"}, "InvalidRequest"),
        ("promote_contact", {"contactId": ANNA, "clear": ["city"]}, "InvalidRequest"),
        ("update_contact", "not json", "InvalidRequest"),
        ("update_contact", [1, 2], "InvalidRequest"),
    ],
)
def test_direct_errors_carry_the_contract_name(functions, sandbox, name, command, error):
    with pytest.raises(Exception) as raised:
        functions[name](command, ctx())
    assert type(raised.value).__name__ == error
    assert [r["route"] for r in engage_log(sandbox) if r["route"] != "lookup"] == []


def test_direct_engage_outage_is_engage_unavailable(functions, sandbox):
    add_fault(sandbox, kind="status", status=503)
    with pytest.raises(Exception) as raised:
        functions["update_contact"]({"contactId": ANNA, "attributes": {"city": "L"}}, ctx())
    assert type(raised.value).__name__ == "EngageUnavailable"


# --- API Gateway -------------------------------------------------------------------------------


def test_api_update_answers_200_with_the_result(call_api, sandbox):
    status, body, headers = call_api("update_contact", {"contactId": ANNA, "attributes": {"city": "Lund"}})
    assert status == 200 and body["sent"] == {"city": "Lund"} and headers["Content-Type"] == "application/json"
    assert sandbox.state.get_contact(ANNA)["city"] == "Lund"


def test_api_promote_and_change_type_routes(call_api, sandbox):
    assert call_api("promote_contact", {"contactId": BERTIL})[0] == 200
    assert call_api("change_contact_type", {"contactId": CECILIA, "contactTypeId": "Contact"})[0] == 200
    assert sandbox.state.get_contact(BERTIL)["contactType"] == "Member"


def test_api_base64_body_is_decoded(call_api, sandbox):
    raw = json.dumps({"contactId": ANNA, "attributes": {"city": "Malmö"}}).encode()
    status, _body, _ = call_api("update_contact", None, raw=raw, base64_body=True)
    assert status == 200 and sandbox.state.get_contact(ANNA)["city"] == "Malmö"


def test_api_http_api_v2_event_is_handled(functions, webhook_secret, sandbox):
    body = json.dumps({"contactId": ANNA, "attributes": {"city": "Umeå"}})
    event = {
        "version": "2.0",
        "routeKey": "POST /contacts/update",
        "rawPath": "/contacts/update",
        "headers": {"content-type": "application/json", **signed_headers(webhook_secret[1], body)},
        "isBase64Encoded": False,
        "requestContext": {"http": {"method": "POST", "path": "/contacts/update"}, "requestId": "r1"},
        "body": body,
    }
    response = functions["update_contact"](event, ctx())
    assert response["statusCode"] == 200 and sandbox.state.get_contact(ANNA)["city"] == "Umeå"


@pytest.mark.parametrize(
    ("body", "raw", "status", "error"),
    [
        (None, "{not json", 400, "InvalidRequest"),
        (None, "", 400, "InvalidRequest"),
        ([1], None, 400, "InvalidRequest"),
        ({"contactId": ANNA, "attributes": {"firstNam": "A"}}, None, 400, "InvalidRequest"),
        ({"contactId": ANNA, "attributes": {"city": None}}, None, 400, "NoData"),
        (
            {"contactId": "00000000-0000-0000-0000-000000000000", "attributes": {"city": "L"}},
            None,
            404,
            "ContactNotFound",
        ),
        ({"contactId": ANNA, "attributes": {"email": "x@y"}}, None, 400, "InvalidRequest"),
    ],
)
def test_api_errors_have_the_contract_status_and_body(call_api, sandbox, body, raw, status, error):
    got_status, got, _ = call_api("update_contact", body, raw=raw)
    assert (got_status, got["error"]) == (status, error)
    assert set(got) == {"error", "message", "details"}


def test_api_multiple_matches_is_409(call_api, sandbox):
    sandbox.state.add_contact({"attributes": {"email": "anna@example.com"}})
    status, body, _ = call_api("update_contact", {"lookup": {"email": "anna@example.com"}, "attributes": {"city": "L"}})
    assert (status, body["error"]) == (409, "MultipleMatches")


def test_api_engage_rejection_is_422_with_engage_body(call_api, sandbox):
    cid = sandbox.state.add_contact({"contactType": "Contact"})
    status, body, _ = call_api("promote_contact", {"contactId": cid})
    assert status == 422 and body["error"] == "EngageRejected"
    assert body["details"]["engage"]["errorCode"] == "MissingRequiredAttributes"


def test_api_rate_limit_is_503_with_retry_after(call_api, sandbox):
    add_fault(sandbox, kind="status", status=429, headers={"Retry-After": "1"})
    status, body, headers = call_api("update_contact", {"contactId": ANNA, "attributes": {"city": "L"}})
    assert (status, body["error"], headers["Retry-After"]) == (503, "EngageRateLimited", "1")


def test_api_engage_down_is_503(call_api, sandbox):
    add_fault(sandbox, kind="drop")
    status, body, _ = call_api("update_contact", {"contactId": ANNA, "attributes": {"city": "L"}})
    assert (status, body["error"]) == (503, "EngageUnavailable")


def test_api_engage_refusing_the_key_after_a_reread_is_502(call_api, sandbox):
    sandbox.state.configure({"apiKeys": ["some-other-key"]})
    status, body, _ = call_api("update_contact", {"contactId": ANNA, "attributes": {"city": "L"}})
    assert (status, body["error"]) == (502, "EngageAuthError")


@pytest.mark.parametrize("secret", ["api_key_secret", "webhook_secret"])
def test_api_secrets_manager_without_the_secret_is_503_not_401(call_api, sandbox, request, secret):
    import boto3

    arn = request.getfixturevalue(secret)
    arn = arn[0] if isinstance(arn, tuple) else arn
    boto3.client("secretsmanager", region_name=REGION).delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    status, body, _ = call_api("update_contact", {"contactId": ANNA, "attributes": {"city": "L"}})
    assert (status, body["error"]) == (503, "DependencyUnavailable")
    assert sandbox.state.request_log() == []


def test_api_answer_to_a_defect_of_ours_is_500_without_its_message():
    from engage_contact.triggers.api_gateway import error_response

    answer = error_response(KeyError("anna@example.com"))
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"]) == {"error": "InternalError", "message": "an unexpected error occurred",
                                          "details": {}}  # fmt: skip
    assert "anna" not in answer["body"] and "Retry-After" not in answer["headers"]


def test_api_unknown_route_is_404_and_wrong_method_405(call_api):
    assert call_api("update_contact", {}, path="/contacts/nope")[0] == 404
    assert call_api("update_contact", {}, path="/contacts/promote")[0] == 404
    status, _, headers = call_api("update_contact", {}, method="GET")
    assert status == 405 and headers["Allow"] == "POST"


# --- SQS -------------------------------------------------------------------------------------------


def source(functions, queues, name):
    return SqsEventSource(queues.sqs, queues.urls[name], functions[name])


def test_sqs_commands_are_applied_and_deleted(functions, queues, sandbox):
    for city in ("Lund", "Malmö", "Ystad"):
        send_command(
            queues.sqs, queues.urls["update_contact"], {"contactId": ANNA, "attributes": {"city": city}}, group=ANNA
        )
    result = source(functions, queues, "update_contact").poll_once()
    assert result == {"batchItemFailures": []}
    assert [json.loads(r["body"])["city"] for r in engage_log(sandbox)] == ["Lund", "Malmö", "Ystad"]
    assert sandbox.state.get_contact(ANNA)["city"] == "Ystad"
    assert queues.counts("update_contact") == (0, 0)


def test_sqs_unmendable_failure_goes_to_the_dead_letter_queue_at_once_with_its_reason(functions, queues, sandbox):
    message_id = send_command(
        queues.sqs,
        queues.urls["update_contact"],
        {"contactId": ANNA, "attributes": {"firstNam": "A"}},
        group=ANNA,
        dedup_id="evt-1",
    )
    send_command(
        queues.sqs, queues.urls["update_contact"], {"contactId": ANNA, "attributes": {"city": "Lund"}}, group=ANNA
    )
    result = source(functions, queues, "update_contact").poll_once()
    assert result == {"batchItemFailures": []}
    (dead,) = queues.messages("update_contact-dlq")
    assert json.loads(dead["Body"]) == {"contactId": ANNA, "attributes": {"firstNam": "A"}}
    assert dead["MessageAttributes"]["errorType"]["StringValue"] == "InvalidRequest"
    assert "firstName" in dead["MessageAttributes"]["errorMessage"]["StringValue"]
    assert dead["Attributes"]["MessageGroupId"] == ANNA
    assert dead["Attributes"]["MessageDeduplicationId"] == message_id  # the message id, as the contract says
    assert dead["MessageAttributes"]["sourceMessageId"]["StringValue"] == message_id  # the id its sender saw
    assert queues.counts("update_contact") == (0, 0)
    assert sandbox.state.get_contact(ANNA)["city"] == "Lund"  # the next one of its group went on


def test_sqs_mendable_failure_holds_back_its_group_only_with_backoff(functions, queues, sandbox):
    add_fault(sandbox, kind="status", route="update", status=503, count=4, contact=ANNA)  # every attempt
    url = queues.urls["update_contact"]
    first = send_command(queues.sqs, url, {"contactId": ANNA, "attributes": {"city": "Lund"}}, group=ANNA)
    held = send_command(queues.sqs, url, {"contactId": ANNA, "attributes": {"city": "Ystad"}}, group=ANNA)
    send_command(queues.sqs, url, {"contactId": BERTIL, "attributes": {"city": "Kiruna"}}, group=BERTIL)
    result = source(functions, queues, "update_contact").poll_once()
    assert {i["itemIdentifier"] for i in result["batchItemFailures"]} == {first, held}
    assert sandbox.state.get_contact(BERTIL)["city"] == "Kiruna"
    assert sandbox.state.get_contact(ANNA)["city"] == "Stockholm"
    assert queues.counts("update_contact") == (0, 2)
    assert queues.messages("update_contact-dlq") == []
    assert visibility_seconds(queues, "update_contact") == pytest.approx({first: 10, held: 10}, abs=2)


def visibility_seconds(queues, name):
    """How long SQS was told to hide each message (read from moto's queue)."""
    import time

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[f"{name}.fifo"]
    now = time.time() * 1000
    return {m.id: round((m.visible_at - now) / 1000) for m in queue._messages}


def test_sqs_backoff_follows_the_receive_count(functions, queues, sandbox):
    from engage_contact.triggers.sqs import backoff_for

    assert [backoff_for(n) for n in (1, 2, 3, 4, 5, 9)] == [10, 30, 60, 300, 900, 900]
    add_fault(sandbox, kind="status", route="update", status=503)
    url = queues.urls["update_contact"]
    message_id = send_command(queues.sqs, url, {"contactId": ANNA, "attributes": {"city": "Lund"}}, group=ANNA)
    events = source(functions, queues, "update_contact")
    seen = []
    for _ in range(3):
        events.poll_once()
        seen.append(visibility_seconds(queues, "update_contact")[message_id])
        make_visible_again(events)
    assert seen == pytest.approx([10, 30, 60], abs=2)


def make_visible_again(events):
    """Skip the backoff's wait: what the last batch handed back becomes visible now."""
    for record in events.last_event["Records"]:
        events.sqs.change_message_visibility(
            QueueUrl=events.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
        )


def test_sqs_last_receive_goes_to_the_dead_letter_queue_with_its_reason(functions, queues, sandbox):
    add_fault(sandbox, kind="status", route="update", status=503)
    url = queues.urls["update_contact"]
    send_command(queues.sqs, url, {"contactId": ANNA, "attributes": {"city": "Lund"}}, group=ANNA)
    events = source(functions, queues, "update_contact")
    for _ in range(5):
        events.poll_once()
        if queues.counts("update_contact") != (0, 0):
            make_visible_again(events)
    (dead,) = queues.messages("update_contact-dlq")
    assert dead["MessageAttributes"]["errorType"]["StringValue"] == "EngageUnavailable"
    assert queues.counts("update_contact") == (0, 0)


def test_sqs_promote_and_change_type(functions, queues, sandbox):
    send_command(queues.sqs, queues.urls["promote_contact"], {"contactId": BERTIL}, group=BERTIL)
    send_command(
        queues.sqs,
        queues.urls["change_contact_type"],
        {"contactId": CECILIA, "contactTypeId": "Contact"},
        group=CECILIA,
    )
    source(functions, queues, "promote_contact").drain()
    source(functions, queues, "change_contact_type").drain()
    assert sandbox.state.get_contact(BERTIL)["contactType"] == "Member"
    assert sandbox.state.get_contact(CECILIA)["contactType"] == "Contact"


def test_sqs_body_that_is_not_json_is_dead_lettered(functions, queues, sandbox):
    queues.sqs.send_message(
        QueueUrl=queues.urls["update_contact"], MessageBody="<xml/>", MessageGroupId="g", MessageDeduplicationId="d1"
    )
    source(functions, queues, "update_contact").drain()
    (dead,) = queues.messages("update_contact-dlq")
    assert dead["Body"] == "<xml/>" and dead["MessageAttributes"]["errorType"]["StringValue"] == "InvalidRequest"


def test_sqs_without_a_reachable_dead_letter_queue_keeps_the_message(functions, queues, sandbox):
    queues.sqs.delete_queue(QueueUrl=queues.urls["update_contact-dlq"])
    send_command(
        queues.sqs, queues.urls["update_contact"], {"contactId": ANNA, "attributes": {"firstNam": "A"}}, group=ANNA
    )
    result = source(functions, queues, "update_contact").poll_once()
    assert len(result["batchItemFailures"]) == 1
    assert queues.counts("update_contact") == (0, 1)


def test_base64_helper_roundtrip():
    assert base64.b64decode(api_event("POST", "/x", "é", base64_body=True)["body"]).decode() == "é"


def test_sqs_batch_runs_contacts_concurrently_and_each_contact_in_order(functions, queues, sandbox):
    add_fault(sandbox, kind="latency", route="update", ms=200)
    contacts = [sandbox.state.add_contact({"contactType": "Contact"}) for _ in range(5)]
    url = queues.urls["update_contact"]
    for step in range(2):
        for contact in contacts:
            send_command(queues.sqs, url, {"contactId": contact, "attributes": {"city": f"step-{step}"}}, group=contact)
    assert source(functions, queues, "update_contact").poll_once() == {"batchItemFailures": []}
    log = engage_log(sandbox, "update")
    for contact in contacts:
        cities = [json.loads(r["body"])["city"] for r in log if r["path"].endswith(contact)]
        assert cities == ["step-0", "step-1"]
        assert sandbox.state.get_contact(contact)["city"] == "step-1"
    first_wave = sorted(r["time"] for r in log)[:5]
    # one after another, five calls of 200 ms would span at least 0.8 s; together they start at once
    assert first_wave[-1] - first_wave[0] < 0.5


def test_a_cold_batch_reads_the_key_once_however_many_records_start_together(functions, queues, sandbox):
    from ..conftest import SecretReadCounter

    handler = functions["update_contact"]
    counter = SecretReadCounter(handler.container.secrets)
    contacts = [sandbox.state.add_contact({"contactType": "Contact"}) for _ in range(10)]
    for contact in contacts:
        send_command(queues.sqs, queues.urls["update_contact"], {"contactId": contact, "attributes": {"city": "C"}},
                     group=contact)  # fmt: skip
    assert source(functions, queues, "update_contact").poll_once() == {"batchItemFailures": []}
    assert counter.count == 1


def test_a_container_holds_one_family_of_aws_clients_built_once_and_failing_fast(functions, queues, sandbox):
    from engage_contact.aws.clients import AWS_ATTEMPTS
    from engage_contact.aws.dynamodb_light import LightDynamoDb
    from engage_contact.aws.json_protocol import attempt_timeouts
    from engage_contact.aws.sqs_light import LightSqs

    handler = functions["update_contact"]
    aws = handler.container.aws
    url = queues.urls["update_contact"]
    send_command(queues.sqs, url, {"contactId": ANNA, "attributes": {"city": "Lund"}}, group=ANNA)
    send_command(queues.sqs, url, {"contactId": "not a contact id"}, group="g")
    assert source(functions, queues, "update_contact").poll_once() == {"batchItemFailures": []}
    assert sandbox.state.get_contact(ANNA)["city"] == "Lund" and len(queues.messages("update_contact-dlq")) == 1
    # the dead letter went through the container's one SQS client and the idempotency store (the message id is
    # the key) through its one DynamoDB client: both of the light family (aws.json_protocol), no boto3 client
    assert aws.built == {}
    container = handler.container
    assert isinstance(container.sqs(), LightSqs) and container.queues.sqs is container.sqs()
    assert isinstance(container.dynamodb(), LightDynamoDb)
    assert container.idempotency_guard().client is container.dynamodb() is container.dynamodb()
    assert container.backfill_counters().client is container.dynamodb()
    assert (attempt_timeouts(), AWS_ATTEMPTS) == ((2, 3), 2)


def test_api_change_type_answer_names_the_type_it_set(call_api, sandbox):
    status, body, _ = call_api("change_contact_type", {"contactId": CECILIA, "contactTypeId": "Contact"})
    assert status == 200 and body["sent"] == {"contactTypeId": "Contact"} and body["contactId"] == CECILIA
