"""Reliability: the soak's reconciliation, a catalogue of hostile input, fuzzing, fail-closed settings."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import boto3
import pytest
from engage_contact.domain.attributes import AttributeCatalogue
from engage_contact.domain.command import Operation, parse_command
from engage_contact.errors import ConfigurationError, InvalidRequest, NoData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.lambda_runtime import LocalContext, SqsEventSource, api_event
from local.signing import signed_headers

from ..conftest import REGION, load_function

ANNA = DEMO_CONTACTS[0]["id"]
U, P, T = "update", "promote", "contact-type"
FUNCTION = {U: "update_contact", P: "promote_contact", T: "change_contact_type"}
PATH = {U: "/contacts/update", P: "/contacts/promote", T: "/contacts/contact-type"}


def cmd(**fields):
    return json.dumps(fields)


def upd(**attributes):
    return cmd(contactId=ANNA, attributes=attributes)


BAD = "InvalidRequest"
# (operation, body as sent, the contract's error); all answered without a call to Engage.
CATALOGUE = [
    (U, "{", BAD),
    (U, "", BAD),
    (U, "null", BAD),
    (U, "[]", BAD),
    (U, '"text"', BAD),
    (U, "12", BAD),
    (U, "NaN", BAD),
    (U, '{"contactId": Infinity}', BAD),
    (U, '{"contactId": 1e999}', BAD),
    (U, "{" + '"a":' * 50_000 + "1", BAD),
    (U, "[" * 100_000, BAD),
    (U, upd(city="x" * 100_000), BAD),
    (U, upd(favoriteStore=json.loads('{"a":' * 20 + "1" + "}" * 20)), BAD),
    (U, "{}", BAD),
    (U, cmd(contactId=ANNA), "NoData"),
    (U, upd(), "NoData"),
    (U, upd(city=""), "NoData"),
    (U, upd(city=None, street="  "), "NoData"),
    (U, upd(preferences={}), "NoData"),
    (U, upd(preferences=[]), "NoData"),
    (U, upd(city="\u00a0\u2003"), "NoData"),
    (U, cmd(contactId="", attributes={"city": "L"}), BAD),
    (U, cmd(contactId="../admin", attributes={"city": "L"}), BAD),
    (U, cmd(contactId="%2e%2e", attributes={"city": "L"}), BAD),
    (U, cmd(contactId=f"{ANNA}/promoteToMember", attributes={"city": "L"}), BAD),
    (U, cmd(contactId=f"{ANNA}?x=1", attributes={"city": "L"}), BAD),
    (U, cmd(contactId=f"{ANNA}#x", attributes={"city": "L"}), BAD),
    (U, cmd(contactId=ANNA[:-1] + "\u0435", attributes={"city": "L"}), BAD),
    (U, cmd(contactId=ANNA + "\u0000", attributes={"city": "L"}), BAD),
    (U, cmd(contactId=[ANNA], attributes={"city": "L"}), BAD),
    (U, cmd(contactId={"id": ANNA}, attributes={"city": "L"}), BAD),
    (U, cmd(contactId="a" * 65, attributes={"city": "L"}), BAD),
    (U, cmd(contactId="-", attributes={"city": "L"}), BAD),
    (U, cmd(contactId=ANNA, lookup={"email": "a@b.se"}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={"email": "a@b.se", "mobilePhone": "+46701234567"}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={"email": "not-an-email"}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={"email": "a@b.se\r\nX-Injected: 1"}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={"mobilePhone": "0701234567"}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={"socialSecurityNumber": "abc"}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={"customKey": ""}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={"customKey": "x" * 300}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={"email": "a@b.se", "contactType": "Member&any=1"}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup={"any": "x"}, attributes={"city": "L"}), BAD),
    (U, cmd(lookup="anna@example.com", attributes={"city": "L"}), BAD),
    (U, cmd(contactId=ANNA, attributes=["city", "L"]), BAD),
    (U, upd(firstNam="x"), BAD),
    (U, upd(contactType="Member"), BAD),
    (U, upd(id="x"), BAD),
    (U, upd(**{"nps.score": 5}), BAD),
    (U, upd(rfm="x"), BAD),
    (U, upd(email="bad"), BAD),
    (U, upd(mobilePhone="+46 70"), BAD),
    (U, upd(birthDay="2024-02-30"), BAD),
    (U, upd(preferences={"acceptsSms": "yes"}), BAD),
    (U, upd(preferences={"acceptSms": True}), BAD),
    (U, upd(firstName={"a": 1}), BAD),
    (U, upd(**{"\u0000": "x"}), BAD),
    (U, upd(**{"firstName\u200b": "x"}), BAD),
    (U, upd(**{"\U0001f44d": 1}), BAD),
    (U, upd(**{"n" * 1000: 1}), BAD),
    (U, cmd(contactId=ANNA, attributes={"careOf": "x"}, clear=["careOf"]), BAD),
    (U, cmd(contactId=ANNA, clear="careOf"), BAD),
    (U, cmd(contactId=ANNA, clear=["preferences"]), BAD),
    (U, cmd(contactId=ANNA, clear=["contactType"]), BAD),
    (U, cmd(contactId=ANNA, clear=[1]), BAD),
    (U, cmd(contactId=ANNA, clear=["careof"]), BAD),
    (U, cmd(contactId=ANNA, attributes={"city": "L"}, idempotencyKey=5), BAD),
    (U, cmd(contactId=ANNA, attributes={"city": "L"}, idempotencyKey=""), BAD),
    (U, cmd(contactId=ANNA, attributes={"city": "L"}, contactTypeId="Prospect"), BAD),
    (P, cmd(contactId=ANNA, clear=["city"]), BAD),
    (P, cmd(contactId=ANNA, attributes={"contactType": "Member"}), BAD),
    (P, cmd(contactId=ANNA, contactTypeId="Member"), BAD),
    (P, cmd(contactId="nope"), BAD),
    (P, "[]", BAD),
    (P, cmd(lookup={"email": "x"}), BAD),
    (P, cmd(contactId=ANNA, attributes={"memberNumbr": "1"}), BAD),
    (T, cmd(contactId=ANNA, contactTypeId="Member"), BAD),
    (T, cmd(contactId=ANNA, contactTypeId="member"), BAD),
    (T, cmd(contactId=ANNA, contactTypeId="MEMBER"), BAD),
    (T, cmd(contactId=ANNA), BAD),
    (T, cmd(contactId=ANNA, contactTypeId=""), BAD),
    (T, cmd(contactId=ANNA, contactTypeId="Prospect?x"), BAD),
    (T, cmd(contactId=ANNA, contactTypeId="Prospect/../Member"), BAD),
    (T, cmd(contactId=ANNA, contactTypeId="Prospect", attributes={"city": "L"}), BAD),
    (T, cmd(lookup={"email": "bad"}, contactTypeId="Prospect"), BAD),
    (T, cmd(contactId=ANNA, contactTypeId=7), BAD),
]


def test_the_catalogue_is_large_and_covers_every_operation():
    assert len(CATALOGUE) >= 60 and {op for op, _, _ in CATALOGUE} == {U, P, T}


def _check(sandbox, mismatches, case, got):
    if got != case[2]:
        mismatches.append((case[0], case[1][:80], case[2], got))
    calls = [r for r in sandbox.state.request_log() if r["route"] != "lookup"]
    if calls:
        mismatches.append((case[0], case[1][:80], "no Engage call", [r["route"] for r in calls]))
    sandbox.state.requests.clear()


def test_hostile_input_through_direct_invocation(functions, sandbox):
    mismatches = []
    for case in CATALOGUE:
        try:
            functions[FUNCTION[case[0]]](case[1], LocalContext())
            got = "success"
        except (InvalidRequest, NoData) as error:
            got = error.name
        _check(sandbox, mismatches, case, got)
    assert mismatches == []


def test_hostile_input_through_the_api(functions, sandbox, webhook_secret):
    mismatches = []
    for case in [*CATALOGUE, (U, "\udcff", BAD)]:
        raw = case[1].encode("utf-8", "surrogateescape") if case[1] != "\udcff" else b"\xff\xfe{}"
        event = api_event("POST", PATH[case[0]], base64.b64encode(raw).decode(), {
            "Content-Type": "application/json", **signed_headers(webhook_secret[1], raw.decode("utf-8", "replace"))},
            )  # fmt: skip
        event["isBase64Encoded"] = True
        response = functions[FUNCTION[case[0]]](event, LocalContext())
        body = json.loads(response["body"])
        status = {"InvalidRequest": 400, "NoData": 400}.get(case[2])
        if len(raw) > 64 * 1024 or case[1] == "\udcff":
            got = body["error"]  # refused before verification, or not UTF-8 (cannot be signed as text)
            got = BAD if got in (BAD, "Unauthorized") else got
        else:
            got = body["error"] if response["statusCode"] == status else f"{response['statusCode']} {body['error']}"
        _check(sandbox, mismatches, case if case[1] != "\udcff" else (U, "non-utf8", BAD), got)
    assert mismatches == []


def test_hostile_input_through_sqs_goes_to_the_dead_letter_queue_with_its_reason(functions, queues, sandbox):
    mismatches = []
    for n, case in enumerate(CATALOGUE):
        name = FUNCTION[case[0]]
        queues.sqs.send_message(QueueUrl=queues.urls[name], MessageBody=case[1] or " ", MessageGroupId=f"g{n}",
                                MessageDeduplicationId=f"d{n}")  # fmt: skip
        result = SqsEventSource(queues.sqs, queues.urls[name], functions[name]).poll_once()
        dead = queues.sqs.receive_message(QueueUrl=queues.urls[f"{name}-dlq"], MessageAttributeNames=["All"])
        messages = dead.get("Messages", [])
        got = (
            messages[0]["MessageAttributes"]["errorType"]["StringValue"] if messages else f"not dead-lettered {result}"
        )
        for message in messages:
            queues.sqs.delete_message(QueueUrl=queues.urls[f"{name}-dlq"], ReceiptHandle=message["ReceiptHandle"])
        _check(sandbox, mismatches, case, got)
        assert queues.counts(name) == (0, 0), case
    assert mismatches == []


# --- event times: an older command never overwrites a newer one ---------------------------------------


def test_a_command_older_than_the_newest_applied_is_a_stale_success_without_engage(functions, sandbox):
    update = functions["update_contact"]
    newer = {"contactId": ANNA, "attributes": {"city": "Newer"}, "eventTime": "2026-11-27T12:00:00+01:00"}
    older = {"contactId": ANNA, "attributes": {"city": "Older"}, "eventTime": "2026-11-27T10:00:00Z"}
    assert "stale" not in update(newer, LocalContext())
    result = update(older, LocalContext())
    assert result["stale"] is True and result["sent"] == {} and result["contact"] is None
    same = {**newer, "attributes": {"city": "Same"}}  # an equal time is not older
    assert "stale" not in update(same, LocalContext())
    assert [json.loads(r["body"])["city"] for r in sandbox.state.request_log("update")] == ["Newer", "Same"]


@pytest.mark.parametrize(("fault", "error"), [({"kind": "status", "status": 503}, "EngageUnavailable"),
                                              ({"kind": "status", "status": 400}, "EngageRejected")])  # fmt: skip
def test_an_event_whose_engage_call_failed_makes_no_older_event_stale(functions, sandbox, fault, error):
    """The event time is taken before the Engage call and given back when it fails: an older event that comes
    before the failed one's retry is applied (not skipped for an event never applied), and the retry of the
    failed one still passes and wins (docs/contract.md §9)."""
    update = functions["update_contact"]
    newer = {"contactId": ANNA, "attributes": {"city": "Newer"}, "eventTime": "2026-11-27T12:00:00Z"}
    older = {"contactId": ANNA, "attributes": {"street": "Older 1"}, "eventTime": "2026-11-27T10:00:00Z"}
    sandbox.state.add_faults([Fault.from_json({**fault, "route": "update"})])
    with pytest.raises(Exception) as failed:
        update(newer, LocalContext())
    assert type(failed.value).__name__ == error
    sandbox.state.clear_faults()
    assert "stale" not in update(older, LocalContext())
    assert "stale" not in update(newer, LocalContext())  # the retry of the failed event
    stored = sandbox.state.get_contact(ANNA)
    assert (stored["city"], stored["street"]) == ("Newer", "Older 1")
    assert "stale" in update({**older, "attributes": {"street": "Oldest"}}, LocalContext())  # order still kept


def test_a_contact_frozen_by_a_future_event_time_kept_earlier_takes_new_events_again(functions, sandbox):
    """An event time a year ahead, kept before such times were refused, no longer makes every later one stale."""
    boto3.client("dynamodb", region_name=REGION).put_item(TableName="idempotency", Item={
        "id": {"S": f"event-time#{ANNA}"},
        "at": {"N": str((dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=365)).timestamp())}})  # fmt: skip
    result = functions["update_contact"](
        {"contactId": ANNA, "attributes": {"city": "Now"}, "eventTime": dt.datetime.now(tz=dt.UTC).isoformat()},
        LocalContext())  # fmt: skip
    assert "stale" not in result and sandbox.state.get_contact(ANNA)["city"] == "Now"


def _signed_update(handler, secret, city, msg_id):
    body = json.dumps({"contactId": ANNA, "attributes": {"city": city}})
    answer = handler(api_event("POST", "/contacts/update", body, {"Content-Type": "application/json",
                                                                  **signed_headers(secret, body, msg_id=msg_id)}),
                     LocalContext())  # fmt: skip
    return answer["statusCode"], json.loads(answer["body"])


def test_a_write_engage_applies_after_we_gave_up_is_never_overtaken_by_a_newer_one(functions, sandbox, webhook_secret):
    """docs/contract.md §5: Engage slower than our timeout answers the caller 503, but still applies the write; the
    contact's next write waits until that one has landed (409 RequestInProgress before), so the newer value wins."""
    update = functions["update_contact"]
    sandbox.state.add_faults([Fault.from_json({"kind": "latency", "route": "update", "ms": 3000, "count": 2})])
    status, answer = _signed_update(update, webhook_secret[1], "Older", "msg-a")
    assert (status, answer["error"]) == (503, "EngageUnavailable")
    assert len(sandbox.state.request_log("update")) == 2  # two tries within the API's answer, not four
    answers = []
    for attempt in range(40):  # the caller retries B as told (409 with Retry-After) until it is taken
        status, answer = _signed_update(update, webhook_secret[1], "Newer", f"msg-b-{attempt}")
        answers.append(status)
        if status != 409:
            break
        time.sleep(0.25)
    assert answers[0] == 409 and answers[-1] == 200
    time.sleep(1.5)  # anything still in flight has landed
    assert sandbox.state.get_contact(ANNA)["city"] == "Newer"
    cities = [json.loads(r["body"])["city"] for r in sandbox.state.request_log("update") if r["applied"]]
    assert cities == ["Older", "Older", "Newer"]


def test_without_a_table_event_times_are_not_checked(function_env, sandbox, monkeypatch):
    function_env("update_contact")
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    update = load_function("update_contact").lambda_handler
    for city, at in (("Newer", "2026-11-27T12:00:00Z"), ("Older", "2026-11-27T10:00:00Z")):
        update({"contactId": ANNA, "attributes": {"city": city}, "eventTime": at}, LocalContext())
    assert sandbox.state.get_contact(ANNA)["city"] == "Older"


# --- fuzzing the parser ----------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)  # fmt: skip
known_keys = st.sampled_from(["contactId", "lookup", "attributes", "clear", "contactTypeId", "idempotencyKey"])
commands = st.one_of(json_values, st.dictionaries(known_keys, json_values, max_size=5))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=commands, operation=st.sampled_from(list(Operation)))
def test_the_parser_never_fails_otherwise_than_by_the_contract(data, operation):
    catalogue = AttributeCatalogue(frozenset({"favoriteStore"}))
    try:
        command = parse_command(data, operation, catalogue)
    except (InvalidRequest, NoData):
        return
    assert (command.contact_id is None) != (command.lookup is None)
    if command.payload is not None:
        assert set(command.payload.sent) <= catalogue.known
        assert all(v != "" or k in data.get("clear", []) for k, v in command.payload.sent.items())


# --- fail-closed settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"ENGAGE_BASE_URL": None}, "ENGAGE_BASE_URL"),
        ({"ENGAGE_BASE_URL": "http://tenant.voyado.com"}, "ENGAGE_BASE_URL"),
        ({"ENGAGE_API_KEY_SECRET_ARN": None}, "ENGAGE_API_KEY_SECRET_ARN"),
        ({"DIGEST_KEY_SECRET_ARN": None}, "DIGEST_KEY_SECRET_ARN"),
        ({"ENGAGE_TIMEOUT_SECONDS": "soon"}, "ENGAGE_TIMEOUT_SECONDS"),
        ({"ENGAGE_TIMEOUT_SECONDS": "0"}, "ENGAGE_TIMEOUT_SECONDS"),
        ({"ENGAGE_CUSTOM_ATTRIBUTES": "ok,not ok"}, "ENGAGE_CUSTOM_ATTRIBUTES"),
        ({"ENGAGE_CUSTOM_ATTRIBUTES": "firstName"}, "ENGAGE_CUSTOM_ATTRIBUTES"),
        ({"WEBHOOK_SECRET_ARN": None}, "WEBHOOK_SECRET_ARN"),
        ({"WEBHOOK_SIGNING": "sometimes"}, "WEBHOOK_SIGNING"),
        ({"SQS_MAX_RECEIVE_COUNT": "-1"}, "SQS_MAX_RECEIVE_COUNT"),
        ({"QUEUE_OUTAGE_TOLERANCE_HOURS": "48"}, "QUEUE_OUTAGE_TOLERANCE_HOURS"),
        ({"QUEUE_OUTAGE_TOLERANCE_HOURS": "6", "SQS_MAX_RECEIVE_COUNT": "5"}, "QUEUE_OUTAGE_TOLERANCE_HOURS"),
        ({"SQS_BATCH_CONCURRENCY": "many"}, "SQS_BATCH_CONCURRENCY"),
        ({"ENGAGE_REQUESTS_PER_SECOND": "0"}, "ENGAGE_REQUESTS_PER_SECOND"),
        ({"ENGAGE_CONTAINERS_AT_ONCE": "none"}, "ENGAGE_CONTAINERS_AT_ONCE"),
    ],
)
def test_bad_configuration_stops_the_function_at_start_naming_the_variable(function_env, monkeypatch, change, named):
    function_env("update_contact")
    for key, value in change.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError, match=named):
        load_function("update_contact")


def test_a_function_that_cannot_start_leaves_its_messages_in_the_queue(function_env, queues, monkeypatch):
    function_env("update_contact")
    monkeypatch.delenv("ENGAGE_BASE_URL")

    def handler_that_fails_at_init(event, context):
        return load_function("update_contact").lambda_handler(event, context)  # Lambda's init runs here

    queues.sqs.send_message(QueueUrl=queues.urls["update_contact"], MessageBody=json.dumps({"contactId": ANNA}),
                            MessageGroupId=ANNA, MessageDeduplicationId="x")  # fmt: skip
    result = SqsEventSource(queues.sqs, queues.urls["update_contact"], handler_that_fails_at_init).poll_once()
    assert result["raised"] and queues.counts("update_contact") == (0, 1)
    assert queues.messages("update_contact-dlq") == []


def test_an_unreadable_secret_leaves_the_message_in_the_queue_with_backoff(functions, queues, sandbox, aws,
                                                                          api_key_secret):  # fmt: skip
    import boto3

    boto3.client("secretsmanager").delete_secret(SecretId=api_key_secret, ForceDeleteWithoutRecovery=True)
    queues.sqs.send_message(QueueUrl=queues.urls["update_contact"],
                            MessageBody=json.dumps({"contactId": ANNA, "attributes": {"city": "L"}}),
                            MessageGroupId=ANNA, MessageDeduplicationId="y")  # fmt: skip
    result = SqsEventSource(queues.sqs, queues.urls["update_contact"], functions["update_contact"]).poll_once()
    assert len(result["batchItemFailures"]) == 1 and queues.counts("update_contact") == (0, 1)
    assert queues.messages("update_contact-dlq") == [] and sandbox.state.request_log() == []


# --- the soak, small -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_soak_reconciles_with_nothing_lost():
    from local.soak import run

    report = run(commands=150, seed=7)
    assert report.violations == []
    assert report.lost == 0 and report.applied + report.dead_lettered == report.commands == 150
    assert report.faults > 0 and report.retries > 0 and report.dead_lettered > 0
    assert report.creates > 0 and report.created > 0  # new customers were created, one contact per key


@pytest.mark.slow
def test_the_soak_reconciles_under_engage_v3_through_v3_paths_only():
    from local.soak import run

    report = run(commands=120, seed=11, api_version="v3")
    assert report.api_version == "v3" and report.violations == []
    assert report.lost == 0 and report.applied + report.dead_lettered == report.commands == 120
    assert report.creates > 0 and report.faults > 0
    assert report.api_prefixes == ["/api/v3"]  # every request the sandbox received


@pytest.mark.slow
def test_queued_work_survives_an_engage_outage_of_six_hours():
    from local.soak import run

    report = run(commands=16, seed=5, contacts=3, outage_hours=6)  # the template's default tolerance: 6 hours
    assert report.violations == [] and report.lost == 0
    assert report.applied + report.dead_lettered == report.commands == 16
    assert report.simulated_hours >= 6 and report.faults > 0


@pytest.mark.slow
def test_an_outage_longer_than_the_tolerance_ends_in_the_dead_letter_queues():
    from local.soak import run

    report = run(commands=8, seed=5, contacts=2, outage_hours=2, tolerance_hours="1")
    assert report.dead_lettered > 0 and any("during the outage" in v for v in report.violations)
    assert report.lost == 0
