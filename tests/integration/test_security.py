"""Signed webhooks, idempotency, logs without personal data, and the hard edges (docs/contract.md §4-§6)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import boto3
import pytest
from engage_contact.errors import ConfigurationError, EngageRejected
from engage_contact.settings import Settings

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.lambda_runtime import LocalContext, SqsEventSource, api_event, send_command
from local.signing import new_secret, signed_headers

from ..conftest import REGION, SANDBOX_KEY, load_function

ANNA, BERTIL = DEMO_CONTACTS[0]["id"], DEMO_CONTACTS[1]["id"]
UPDATE = {"contactId": ANNA, "attributes": {"city": "Lund"}}


def post(handler, body, headers, path="/contacts/update"):
    text = body if isinstance(body, str) else json.dumps(body)
    response = handler(api_event("POST", path, text, {"Content-Type": "application/json", **headers}),
                       LocalContext())  # fmt: skip
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def updates(sandbox):
    return sandbox.state.request_log("update")


@pytest.fixture
def update(functions):
    return functions["update_contact"]


# --- signatures ---------------------------------------------------------------------------------


def test_a_correctly_signed_request_is_applied(update, webhook_secret, sandbox):
    body = json.dumps(UPDATE)
    assert post(update, body, signed_headers(webhook_secret[1], body))[0] == 200
    assert len(updates(sandbox)) == 1


def test_a_forged_signature_is_401_and_never_reaches_engage(update, sandbox):
    body = json.dumps(UPDATE)
    status, answer, _ = post(update, body, signed_headers(new_secret(), body))
    assert (status, answer["error"]) == (401, "Unauthorized")
    assert sandbox.state.request_log() == []


def test_a_missing_signature_is_401(update, sandbox):
    status, answer, _ = post(update, UPDATE, {})
    assert (status, answer["error"]) == (401, "Unauthorized") and "webhook-signature" in answer["message"]
    assert sandbox.state.request_log() == []


def test_a_body_changed_after_signing_is_401(update, webhook_secret, sandbox):
    headers = signed_headers(webhook_secret[1], json.dumps(UPDATE))
    tampered = json.dumps({**UPDATE, "attributes": {"city": "Evil"}})
    assert post(update, tampered, headers)[0] == 401
    assert sandbox.state.request_log() == []


@pytest.mark.parametrize("minutes", [-6, 6])
def test_a_timestamp_outside_five_minutes_is_401(update, webhook_secret, sandbox, minutes):
    body = json.dumps(UPDATE)
    when = dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=minutes)
    status, answer, _ = post(update, body, signed_headers(webhook_secret[1], body, timestamp=when))
    assert status == 401 and "timestamp" in answer["message"]
    assert sandbox.state.request_log() == []


def test_a_timestamp_within_five_minutes_is_accepted(update, webhook_secret):
    body = json.dumps(UPDATE)
    when = dt.datetime.now(tz=dt.UTC) - dt.timedelta(minutes=4)
    assert post(update, body, signed_headers(webhook_secret[1], body, timestamp=when))[0] == 200


@pytest.mark.parametrize("signature", ["v1", "v1,", "v1,!!!notbase64", "garbage", "v2,abc", "v1,a,b"])
def test_malformed_signature_headers_are_401_not_500(update, webhook_secret, signature):
    body = json.dumps(UPDATE)
    headers = {**signed_headers(webhook_secret[1], body), "webhook-signature": signature}
    assert post(update, body, headers)[0] == 401


def test_several_signatures_in_one_header_pass_when_one_matches(update, webhook_secret):
    body = json.dumps(UPDATE)
    headers = signed_headers([new_secret(), webhook_secret[1]], body)
    assert " " in headers["webhook-signature"]
    assert post(update, body, headers)[0] == 200


def test_a_rotating_secret_accepts_the_current_and_the_previous_key(function_env, sandbox, webhook_secret):
    function_env("update_contact")
    new = new_secret()
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=webhook_secret[0], SecretString=json.dumps({"current": new, "previous": webhook_secret[1]})
    )
    handler = load_function("update_contact").lambda_handler
    for key in (webhook_secret[1], new):
        body = json.dumps({**UPDATE, "attributes": {"city": key[-6:].strip("=+/") or "x"}})
        assert post(handler, body, signed_headers(key, body))[0] == 200
    body = json.dumps(UPDATE)
    assert post(handler, body, signed_headers(new_secret(), body))[0] == 401


def test_a_signing_secret_mended_after_a_broken_rotation_is_used_at_once(update, sandbox, webhook_secret):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.put_secret_value(SecretId=webhook_secret[0], SecretString='{"current": ')  # a rotation gone wrong
    body = json.dumps(UPDATE)
    status, answer, _ = post(update, body, signed_headers(webhook_secret[1], body))
    assert (status, answer["error"]) == (503, "DependencyUnavailable")  # our outage, not the caller's fault
    secrets.put_secret_value(SecretId=webhook_secret[0], SecretString=webhook_secret[1])
    assert post(update, body, signed_headers(webhook_secret[1], body))[0] == 200  # not after 5 minutes
    assert len(updates(sandbox)) == 1


def test_signing_turned_off_explicitly_accepts_unsigned_requests(function_env, sandbox, monkeypatch):
    function_env("update_contact")
    monkeypatch.setenv("WEBHOOK_SIGNING", "off")
    handler = load_function("update_contact").lambda_handler
    assert post(handler, UPDATE, {})[0] == 200


def test_signing_cannot_be_left_without_a_secret():
    env = {"ENGAGE_BASE_URL": "https://t.voyado.com", "ENGAGE_API_KEY_SECRET_ARN": "arn", "DIGEST_KEY_SECRET_ARN": "d"}
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET_ARN"):
        Settings.from_env(env)
    with pytest.raises(ConfigurationError, match="WEBHOOK_SIGNING"):
        Settings.from_env({**env, "WEBHOOK_SIGNING": "maybe"})
    assert Settings.from_env({**env, "WEBHOOK_SIGNING": "off"}).webhook_signing is False


# --- idempotency ------------------------------------------------------------------------------------


def test_a_repeated_webhook_id_is_answered_from_the_first_result(update, webhook_secret, sandbox):
    body = json.dumps(UPDATE)
    headers = signed_headers(webhook_secret[1], body, msg_id="msg_repeat")
    first = post(update, body, headers)
    sandbox.state.configure({"apiKeys": ["engage-must-not-be-called"]})
    second = post(update, body, signed_headers(webhook_secret[1], body, msg_id="msg_repeat"))
    assert first[0] == second[0] == 200
    assert second[1] == {**first[1], "contact": None, "replayed": True}
    assert len(updates(sandbox)) == 1


def test_the_same_key_with_another_command_is_a_conflict(update, webhook_secret, sandbox):
    body = json.dumps(UPDATE)
    post(update, body, signed_headers(webhook_secret[1], body, msg_id="msg_x"))
    other = json.dumps({**UPDATE, "attributes": {"city": "Malmö"}})
    status, answer, _ = post(update, other, signed_headers(webhook_secret[1], other, msg_id="msg_x"))
    assert (status, answer["error"]) == (409, "IdempotencyConflict")
    assert len(updates(sandbox)) == 1


@pytest.mark.parametrize("own_key", [False, True])
def test_a_signed_request_replayed_to_another_route_is_refused(functions, webhook_secret, sandbox, own_key):
    """docs/contract.md §5: a webhook-id is used once across every route (the signature does not cover it)."""
    command = {"contactId": BERTIL, "attributes": {"city": "Lund"}}
    if own_key:  # a command's own idempotencyKey takes the webhook-id's place as its key: the id is still bound
        command["idempotencyKey"] = "caller-key-1"
    body = json.dumps(command)
    headers = signed_headers(webhook_secret[1], body, msg_id="msg_captured")
    assert post(functions["update_contact"], body, headers)[0] == 200
    status, answer, _ = post(functions["promote_contact"], body, headers, path="/contacts/promote")
    assert (status, answer["error"]) == (409, "IdempotencyConflict") and "route" in answer["message"]
    assert sandbox.state.request_log("promote") == []
    assert sandbox.state.get_contact(BERTIL)["contactType"] != "Member"
    again = post(functions["update_contact"], body, headers)  # the same route again: a replay, as before
    assert again[0] == 200 and again[1]["replayed"] is True


def test_a_repeated_idempotency_key_through_direct_invocation_calls_engage_once(update, sandbox):
    command = {**UPDATE, "idempotencyKey": "shop-42-evt-9"}
    first, replay = update(command, LocalContext()), update(command, LocalContext())
    assert replay == {**first, "contact": None, "replayed": True}
    assert len(updates(sandbox)) == 1


def test_the_idempotency_record_keeps_no_contact_data(update, sandbox, idempotency_table):
    update({**UPDATE, "idempotencyKey": "shop-42-evt-11"}, LocalContext())
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=idempotency_table)["Items"]
    (item,) = [i for i in items if i["id"]["S"] != "rate-budget"]  # the rate budget's own item sits beside it
    stored = json.loads(item["data"]["S"])
    assert stored == {"contactId": ANNA, "sent": {"city": "Lund"}, "droppedEmpty": []}
    assert "anna@example.com" not in json.dumps(item)


def test_a_replay_is_logged_and_counted_as_a_replay_not_a_change(update, sandbox, log_output, capsys):
    command = {**UPDATE, "idempotencyKey": "shop-42-evt-12"}
    update(command, LocalContext())
    capsys.readouterr()
    update(command, LocalContext())
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert [line["message"] for line in lines if "change" in line["message"] or "replay" in line["message"]] == [
        "contact changed",
        "command replayed",
    ]
    names = {
        m["Name"]
        for line in capsys.readouterr().out.splitlines()
        if '"_aws"' in line
        for d in json.loads(line)["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert "CommandsReplayed" in names and "ContactsUpdated" not in names


def test_an_idempotency_record_expires_after_24_hours(update, sandbox, idempotency_table):
    import time

    import boto3

    update({**UPDATE, "idempotencyKey": "shop-42-evt-10"}, LocalContext())
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=idempotency_table)["Items"]
    items = [i for i in items if i["id"]["S"] != "rate-budget"]  # the rate budget's own item sits beside it
    assert len(items) == 1
    assert int(items[0]["expiration"]["N"]) == pytest.approx(time.time() + 24 * 60 * 60, abs=60)


def test_commands_without_a_key_are_always_applied_a_b_a(update, sandbox):
    for city in ("A-town", "B-town", "A-town"):
        update({"contactId": ANNA, "attributes": {"city": city}}, LocalContext())
    assert [json.loads(r["body"])["city"] for r in updates(sandbox)] == ["A-town", "B-town", "A-town"]
    assert sandbox.state.get_contact(ANNA)["city"] == "A-town"


def test_a_redelivered_sqs_message_is_applied_once(update, queues, sandbox):
    send_command(queues.sqs, queues.urls["update_contact"], UPDATE, group=ANNA)
    source = SqsEventSource(queues.sqs, queues.urls["update_contact"], update)
    messages = queues.sqs.receive_message(QueueUrl=queues.urls["update_contact"], AttributeNames=["All"])["Messages"]
    from local.lambda_runtime import sqs_event

    event = sqs_event(messages, source.queue_arn, REGION)
    assert update(event, LocalContext()) == {"batchItemFailures": []}
    assert update(event, LocalContext()) == {"batchItemFailures": []}  # the delete was lost: delivered again
    assert len(updates(sandbox)) == 1


def test_a_failed_first_attempt_does_not_block_the_retry(update, sandbox):
    command = {**UPDATE, "idempotencyKey": "evt-retry"}
    sandbox.state.add_faults([Fault.from_json({"kind": "status", "route": "update", "status": 503})])
    with pytest.raises(Exception, match="503"):
        update(command, LocalContext())
    sandbox.state.clear_faults()
    assert update(command, LocalContext())["contact"]["city"] == "Lund"


def test_a_duplicate_while_the_first_is_in_flight_is_request_in_progress(update, webhook_secret, sandbox):
    sandbox.state.add_faults([Fault.from_json({"kind": "latency", "route": "update", "ms": 1500, "count": 1})])
    body = json.dumps(UPDATE)
    first = {}
    thread = threading.Thread(
        target=lambda: first.update(
            answer=post(update, body, signed_headers(webhook_secret[1], body, msg_id="msg_slow"))
        )
    )
    thread.start()
    import time

    deadline = time.monotonic() + 10
    while not updates(sandbox) and time.monotonic() < deadline:  # the first is now at Engage, marked in progress
        time.sleep(0.01)
    status, answer, headers = post(update, body, signed_headers(webhook_secret[1], body, msg_id="msg_slow"))
    thread.join()
    assert (status, answer["error"]) == (409, "RequestInProgress") and int(headers["Retry-After"]) >= 1
    assert first["answer"][0] == 200 and len(updates(sandbox)) == 1


def test_an_unreachable_idempotency_table_is_dependency_unavailable(function_env, sandbox, monkeypatch):
    function_env("update_contact")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "no-such-table")
    handler = load_function("update_contact").lambda_handler
    with pytest.raises(Exception) as raised:
        handler({**UPDATE, "idempotencyKey": "k"}, LocalContext())
    assert type(raised.value).__name__ == "DependencyUnavailable"
    assert updates(sandbox) == []


# --- hard edges ------------------------------------------------------------------------------------------


def test_a_huge_body_is_refused_before_parsing_or_verifying(update, sandbox):
    huge = json.dumps({**UPDATE, "attributes": {"city": "x" * 100_000}})
    status, answer, _ = post(update, huge, {})
    assert (status, answer["error"]) == (400, "InvalidRequest") and "larger" in answer["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://tenant.voyado.com",
        "ftp://x",
        "https://t.voyado.com/api/v2",
        "nope",
        "https://user:pw@t.voyado.com",
        "https://t.voyado.com?x=1",
    ],
)
def test_engage_base_url_must_be_https_and_bare(url):
    with pytest.raises(ConfigurationError, match="ENGAGE_BASE_URL"):
        Settings.from_env({"ENGAGE_BASE_URL": url, "ENGAGE_API_KEY_SECRET_ARN": "a", "DIGEST_KEY_SECRET_ARN": "d",
                           "WEBHOOK_SIGNING": "off"})  # fmt: skip


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:9", "https://t.staging.voyado.com/"])
def test_loopback_http_and_https_tenants_are_accepted(url):
    env = {"ENGAGE_BASE_URL": url, "ENGAGE_API_KEY_SECRET_ARN": "a", "DIGEST_KEY_SECRET_ARN": "d",
           "WEBHOOK_SIGNING": "off"}  # fmt: skip
    assert Settings.from_env(env).engage_base_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("path", "command"),
    [
        ("/contacts/update", {"contactId": f"{ANNA}/promoteToMember", "attributes": {"city": "L"}}),
        ("/contacts/update", {"contactId": "../../v3/admin", "attributes": {"city": "L"}}),
        ("/contacts/update", {"contactId": f"{ANNA}?x=1", "attributes": {"city": "L"}}),
        ("/contacts/contact-type", {"contactId": ANNA, "contactTypeId": "Contact&contactTypeId=Member"}),
        ("/contacts/contact-type", {"contactId": ANNA, "contactTypeId": "Member"}),
        (
            "/contacts/update",
            {"lookup": {"email": "a@b.se", "contactType": "Member&any=x"}, "attributes": {"city": "L"}},
        ),
    ],
)
def test_no_input_steers_a_call_to_another_engage_path(functions, webhook_secret, sandbox, path, command):
    name = "change_contact_type" if "type" in path else "update_contact"
    body = json.dumps(command)
    status, answer, _ = post(functions[name], body, signed_headers(webhook_secret[1], body), path)
    assert (status, answer["error"]) == (400, "InvalidRequest")
    assert sandbox.state.request_log() == []


def test_a_lookup_value_is_encoded_never_read_as_more_query(update, sandbox):
    with pytest.raises(Exception, match="no such contact"):
        update({"lookup": {"customKey": "M9&any=anna@example.com"}, "attributes": {"city": "L"}}, LocalContext())
    (request,) = sandbox.state.request_log()
    assert request["path"] == "/api/v2/contacts/id"
    assert request["query"] == {"customKey": "M9&any=anna@example.com"}


# --- logs ---------------------------------------------------------------------------------------------------

PERSONAL = {
    "email": "private.person@secret-domain.example",
    "mobilePhone": "+46709998877",
    "firstName": "Gunhild",
    "lastName": "Xylofonsdottir",
    "street": "Hemliga Gatan 77",
    "socialSecurityNumber": "199001011234",
}


def test_logs_hold_no_secret_and_no_personal_data(
    functions, queues, webhook_secret, sandbox, capsys, caplog, log_output
):
    caplog.set_level("DEBUG")
    update, promote = functions["update_contact"], functions["promote_contact"]
    contact = sandbox.state.add_contact({"contactType": "Contact", "attributes": {
        "email": PERSONAL["email"], "mobilePhone": PERSONAL["mobilePhone"]}})  # fmt: skip
    # success through each trigger
    update({"contactId": contact, "attributes": PERSONAL}, LocalContext())
    body = json.dumps({"lookup": {"email": PERSONAL["email"]}, "attributes": {"firstName": PERSONAL["firstName"]}})
    assert post(update, body, signed_headers(webhook_secret[1], body))[0] == 200
    send_command(queues.sqs, queues.urls["update_contact"],
                 {"lookup": {"mobilePhone": PERSONAL["mobilePhone"]}, "attributes": {"street": PERSONAL["street"]}},
                 group=PERSONAL["mobilePhone"])  # fmt: skip
    SqsEventSource(queues.sqs, queues.urls["update_contact"], update).drain()
    # failures: invalid values, unknown names holding values, Engage rejections, lookups of no one, forgery, outages
    for command in (
        {"contactId": contact, "attributes": {"email": PERSONAL["firstName"]}},
        {"contactId": contact, "attributes": {"firstNam": PERSONAL["firstName"], "mobilePhone": "0701"}},
        {"lookup": {"email": "nobody." + PERSONAL["email"]}, "attributes": {"lastName": PERSONAL["lastName"]}},
        {
            "lookup": {"socialSecurityNumber": PERSONAL["socialSecurityNumber"], "contactType": "Member"},
            "attributes": {"city": "L"},
        },
    ):
        with pytest.raises(Exception):
            update(command, LocalContext())
    sandbox.state.add_contact({"contactType": "Contact", "attributes": {"firstName": PERSONAL["firstName"]}})
    body = json.dumps({"contactId": contact, "attributes": {"lastName": PERSONAL["lastName"]}})
    assert post(update, body, signed_headers(new_secret(), body))[0] == 401
    sandbox.state.add_faults([Fault.from_json({"kind": "status", "status": 503, "body": PERSONAL})])
    with pytest.raises(Exception):
        promote({"lookup": {"email": PERSONAL["email"]}, "attributes": PERSONAL}, LocalContext())
    sandbox.state.clear_faults()
    send_command(
        queues.sqs,
        queues.urls["update_contact"],
        {"contactId": contact, "attributes": {"birthDay": PERSONAL["socialSecurityNumber"]}},
        group=contact,
    )
    SqsEventSource(queues.sqs, queues.urls["update_contact"], update).drain()

    captured = capsys.readouterr()
    # `responses` logs only because moto patches requests in-process here; it is not in a deployed function
    records = [r for r in caplog.records if r.name != "responses"]
    everything = (
        log_output.getvalue()
        + captured.out
        + captured.err
        + "\n".join(r.getMessage() + str(r.__dict__) for r in records)
    )
    assert '"message":"contact changed"' in everything and '"message":"command failed"' in everything
    assert '"message":"record dead-lettered"' in everything  # every path above was logged and is checked
    for value in [SANDBOX_KEY, webhook_secret[1], webhook_secret[1].removeprefix("whsec_"), *PERSONAL.values()]:
        assert value not in everything, value


def test_value_like_names_and_engages_echoed_values_reach_no_log_and_no_dead_letter(
    functions, queues, sandbox, log_output, capsys
):
    """docs/contract.md §6: an unknown name that is a value, and Engage's 400 text quoting a value, are named
    as problems without the value (in the dead letter's attributes, the logs, and the API's details)."""
    update = functions["update_contact"]
    email, phone = "maja.karlsson@example.org", "+46701239876"
    command = {"contactId": ANNA, "attributes": {email: "x", phone: "y", "firstNam": "Maja"}}
    send_command(queues.sqs, queues.urls["update_contact"], command, group=ANNA)
    sandbox.state.add_faults([Fault.from_json({"kind": "status", "status": 400, "route": "update", "body": {
        "errorCode": "InvalidValue", "message": f"The value '{email}' is not valid, nor {phone}"}})])  # fmt: skip
    send_command(queues.sqs, queues.urls["update_contact"], {"contactId": BERTIL, "attributes": {"city": "Lund"}},
                 group=BERTIL)  # fmt: skip
    SqsEventSource(queues.sqs, queues.urls["update_contact"], update).drain()
    sandbox.state.clear_faults()
    dead = queues.messages("update_contact-dlq")
    reasons = {m["MessageAttributes"]["errorType"]["StringValue"]: m["MessageAttributes"]["errorMessage"]["StringValue"]
               for m in dead}  # fmt: skip
    assert set(reasons) == {"InvalidRequest", "EngageRejected"}
    assert "did you mean 'firstName'" in reasons["InvalidRequest"]  # a name is still named
    assert "value-like name of 25 characters" in reasons["InvalidRequest"]
    with pytest.raises(Exception) as caught:
        update({"contactId": ANNA, "attributes": {email: "x"}}, LocalContext())
    sandbox.state.add_faults([Fault.from_json({"kind": "status", "status": 400, "route": "update", "count": 1,
        "body": {"errorCode": "InvalidValue", "message": f"The value '{email}' is not valid"}})])  # fmt: skip
    with pytest.raises(EngageRejected) as rejected:
        update({"contactId": ANNA, "attributes": {"city": "Lund"}}, LocalContext())
    assert rejected.value.details["engage"] == {"errorCode": "InvalidValue", "message": "The value … is not valid"}
    everything = log_output.getvalue() + "".join(capsys.readouterr()) + json.dumps(reasons) + str(caught.value)
    for value in (email, phone, "maja.karlsson", "1239876"):
        assert value not in everything


def test_log_lines_carry_a_correlation_id(update, webhook_secret, log_output):
    body = json.dumps(UPDATE)
    post(update, body, signed_headers(webhook_secret[1], body, msg_id="msg_corr"))
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    changed = [line for line in lines if line.get("message") == "contact changed"]
    assert changed[0]["correlation_id"] == "msg_corr" and changed[0]["attributesSent"] == ["city"]


def test_metrics_are_published_for_each_outcome(update, capsys):
    update({"contactId": ANNA, "attributes": {"city": "Lund", "street": ""}}, LocalContext())
    with pytest.raises(Exception):
        update({"contactId": ANNA, "attributes": {"firstNam": "x"}}, LocalContext())
    out = capsys.readouterr().out
    names = {
        m["Name"]
        for line in out.splitlines()
        if '"_aws"' in line
        for d in json.loads(line)["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert {"ContactsUpdated", "AttributesDroppedEmpty", "EngageLatency", "UnknownNamesRefused"} <= names


def test_the_tests_themselves_cannot_look_up_any_host_but_loopback():
    import socket

    with pytest.raises(OSError, match=r"tests reach only 127\.0\.0\.1"):
        socket.getaddrinfo("engage.invalid", 443)  # a reserved name: never a real address
    assert socket.getaddrinfo("127.0.0.1", 80)
