"""Security and reliability edges (issue 20): secrets that cannot be used, defects that must not leak, time headroom."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from engage_contact.container import Container
from engage_contact.domain.command import Operation
from engage_contact.engage.client import EngageClient
from engage_contact.handler import ContactFunction
from engage_contact.settings import Settings

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import LocalContext, SqsEventSource, api_event, send_command
from local.signing import signed_headers

from ..conftest import REGION, load_function

ANNA = DEMO_CONTACTS[0]["id"]
UPDATE = {"contactId": ANNA, "attributes": {"city": "Lund"}}
LEAKY_KEY = "leaky-key-7f3a\nX-Injected: yes"  # a key secret someone pasted with a line break in it


def everything_logged(log_output, capsys, caplog) -> str:
    captured = capsys.readouterr()
    records = [r for r in caplog.records if r.name != "responses"]  # moto's in-process patching, not ours
    return (log_output.getvalue() + captured.out + captured.err
            + "\n".join(r.getMessage() + str(r.__dict__) for r in records))  # fmt: skip


def assert_no_trace_of(key: str, *texts: str) -> None:
    for text in texts:
        for part in key.splitlines():
            assert part not in text, part


def put_secret(arn: str, value: str) -> None:
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=arn, SecretString=value)


# --- 12: the API key never leaks ------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [LEAKY_KEY, json.dumps({"apiKey": LEAKY_KEY}), "key with space", "k\u00e9y"])
def test_a_key_an_http_header_cannot_carry_is_refused_when_read(
    function_env, api_key_secret, sandbox, log_output, capsys, caplog, secret
):
    caplog.set_level("DEBUG")
    function_env("update_contact")
    put_secret(api_key_secret, secret)
    update = load_function("update_contact").lambda_handler
    with pytest.raises(Exception) as raised:
        update(UPDATE, LocalContext())
    assert type(raised.value).__name__ == "DependencyUnavailable"
    assert "HTTP header" in str(raised.value)
    assert sandbox.state.request_log() == []
    assert_no_trace_of(json.loads(secret)["apiKey"] if secret.startswith("{") else secret,
                       str(raised.value), everything_logged(log_output, capsys, caplog))  # fmt: skip


def test_a_leaky_key_through_sqs_leaves_no_trace(function_env, api_key_secret, queues, sandbox, log_output, capsys,
                                                 caplog):  # fmt: skip
    caplog.set_level("DEBUG")
    function_env("update_contact")
    put_secret(api_key_secret, LEAKY_KEY)
    update = load_function("update_contact").lambda_handler
    send_command(queues.sqs, queues.urls["update_contact"], UPDATE, group=ANNA)
    result = SqsEventSource(queues.sqs, queues.urls["update_contact"], update).poll_once()
    assert len(result["batchItemFailures"]) == 1  # our outage: kept for another try
    assert_no_trace_of(LEAKY_KEY, everything_logged(log_output, capsys, caplog))


class KeyAsStored:
    """A key source that hands the key on as stored, unchecked: how a defect of ours could meet requests."""

    def get(self, *, refresh: bool = False) -> str:
        return LEAKY_KEY


@pytest.fixture
def defective_update(function_env, sandbox):
    """The update function with an Engage client whose key source skips the check (a defect of ours)."""
    settings = Settings.from_env(function_env("update_contact"))
    engage = EngageClient(settings.engage_base_url, KeyAsStored(), settings.timeout_seconds)
    return ContactFunction(Operation.UPDATE, Container(settings, engage=engage))


def test_a_defect_in_a_direct_invocation_is_internal_error_without_its_text(
    defective_update, sandbox, log_output, capsys, caplog
):
    caplog.set_level("DEBUG")
    with pytest.raises(Exception) as raised:
        defective_update(UPDATE, LocalContext())
    error = raised.value
    assert (type(error).__name__, str(error)) == ("InternalError", "an unexpected error occurred")
    assert error.__cause__ is None and error.__context__ is None  # nothing chained for the runtime to print
    logged = everything_logged(log_output, capsys, caplog)
    assert '"errorType":"InvalidHeader"' in logged  # the defect is logged, by its type
    assert_no_trace_of(LEAKY_KEY, str(error), logged)


def test_a_defect_through_the_api_and_sqs_leaves_no_text(
    defective_update, webhook_secret, queues, sandbox, log_output, capsys, caplog
):
    caplog.set_level("DEBUG")
    body = json.dumps(UPDATE)
    event = api_event("POST", "/contacts/update", body, {"Content-Type": "application/json",
                                                         **signed_headers(webhook_secret[1], body)})  # fmt: skip
    answer = defective_update(event, LocalContext())
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"]) == {"error": "InternalError", "message": "an unexpected error occurred",
                                          "details": {}}  # fmt: skip
    send_command(queues.sqs, queues.urls["update_contact"], UPDATE, group=ANNA)
    result = SqsEventSource(queues.sqs, queues.urls["update_contact"], defective_update).poll_once()
    assert len(result["batchItemFailures"]) == 1
    assert_no_trace_of(LEAKY_KEY, answer["body"], everything_logged(log_output, capsys, caplog))


# --- 11: a signing secret that cannot be used is our outage, never a 500 nor a different key ---------------


def post(handler, body: str, headers: dict[str, str]) -> tuple[int, dict]:
    event = api_event("POST", "/contacts/update", body, {"Content-Type": "application/json", **headers})
    answer = handler(event, LocalContext())
    return answer["statusCode"], json.loads(answer["body"])


def published_metrics(out: str) -> set[str]:
    return {m["Name"] for line in out.splitlines() if '"_aws"' in line
            for d in json.loads(line)["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}  # fmt: skip


@pytest.mark.parametrize("broken", ["whsec_", "whsec_ab!c" + "A" * 40, "whsec_" + base64.b64encode(b"short").decode(),
                                    "whsec_\u00e5\u00e4\u00f6", '{"current": "whsec_"}'])  # fmt: skip
def test_a_malformed_webhook_secret_is_503_and_counted(function_env, webhook_secret, sandbox, capsys, broken):
    function_env("update_contact")
    put_secret(webhook_secret[0], broken)
    update = load_function("update_contact").lambda_handler
    body = json.dumps(UPDATE)
    capsys.readouterr()
    status, answer = post(update, body, signed_headers(webhook_secret[1], body))
    assert (status, answer["error"]) == (503, "DependencyUnavailable")
    assert "SecretsUnusable" in published_metrics(capsys.readouterr().out)
    assert sandbox.state.request_log() == []


def test_characters_outside_base64_never_make_a_different_key(function_env, webhook_secret, sandbox):
    # the scheme's library drops what is not base64: this secret would have verified the original key's signatures
    function_env("update_contact")
    key = webhook_secret[1].removeprefix("whsec_")
    put_secret(webhook_secret[0], f"whsec_{key[:10]}!{key[10:]}")
    update = load_function("update_contact").lambda_handler
    body = json.dumps(UPDATE)
    assert post(update, body, signed_headers(webhook_secret[1], body))[0] == 503
    assert sandbox.state.request_log() == []


@pytest.mark.parametrize("form", ["bare", "unpadded"])
def test_the_templates_bare_key_and_unpadded_base64_are_read(function_env, webhook_secret, sandbox, form):
    function_env("update_contact")
    key = webhook_secret[1].removeprefix("whsec_")
    put_secret(webhook_secret[0], key if form == "bare" else "whsec_" + key.rstrip("="))
    update = load_function("update_contact").lambda_handler
    body = json.dumps(UPDATE)
    assert post(update, body, signed_headers(webhook_secret[1], body))[0] == 200


# --- 14: whatever Retry-After Engage sends, the answer is no 500 and comes within the deadline --------------


@pytest.mark.parametrize("retry_after", ["nan", "inf", "-inf", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "1e308", "99999"])
def test_any_retry_after_from_engage_is_answered_without_a_500_in_time(functions, webhook_secret, sandbox,
                                                                        retry_after):  # fmt: skip
    from local.engage_sandbox.state import Fault

    sandbox.state.add_faults(
        [Fault.from_json({"kind": "status", "status": 429, "headers": {"Retry-After": retry_after}})]
    )
    body = json.dumps(UPDATE)
    context = LocalContext()
    event = api_event("POST", "/contacts/update", body, {"Content-Type": "application/json",
                                                         **signed_headers(webhook_secret[1], body)})  # fmt: skip
    answer = functions["update_contact"](event, context)
    assert (answer["statusCode"], json.loads(answer["body"])["error"]) == (503, "EngageRateLimited")
    assert int(answer["headers"]["Retry-After"]) >= 1
    assert context.get_remaining_time_in_millis() > 0  # never waited past the invocation's end
    assert 1 <= len(sandbox.state.request_log("update")) <= 4


def test_a_429_with_a_nonsense_retry_after_is_retried_and_applied(functions, sandbox):
    from local.engage_sandbox.state import Fault

    sandbox.state.add_faults([Fault.from_json({"kind": "status", "status": 429, "count": 1,
                                               "headers": {"Retry-After": "nan"}})])  # fmt: skip
    result = functions["update_contact"](UPDATE, LocalContext())
    assert result["sent"] == {"city": "Lund"} and len(sandbox.state.request_log("update")) == 2


# --- 16: the time kept after the last Engage call covers the AWS calls made then ------------------------


def test_a_batch_whose_engage_calls_run_to_the_deadline_still_dead_letters_and_reports_in_time(
    functions, queues, sandbox
):
    from engage_contact.aws.clients import AWS_RESERVE_SECONDS

    from local.engage_sandbox.state import Fault
    from local.lambda_runtime import sqs_event

    update = functions["update_contact"]
    bertil = DEMO_CONTACTS[1]["id"]
    for contact in (ANNA, bertil):
        send_command(queues.sqs, queues.urls["update_contact"], {**UPDATE, "contactId": contact}, group=contact)
    messages = queues.sqs.receive_message(QueueUrl=queues.urls["update_contact"], MaxNumberOfMessages=10,
                                          AttributeNames=["All"])["Messages"]  # fmt: skip
    for message in messages:  # Bertil's message is on its last receive: it is dead-lettered, not handed back
        message["Attributes"]["ApproximateReceiveCount"] = "5" if bertil in message["Body"] else "1"
    arn = queues.sqs.get_queue_attributes(QueueUrl=queues.urls["update_contact"], AttributeNames=["QueueArn"])
    event = sqs_event(messages, arn["Attributes"]["QueueArn"], REGION)
    sandbox.state.add_faults([Fault.from_json({"kind": "hang", "route": "update", "seconds": 30})])
    context = LocalContext(timeout_seconds=AWS_RESERVE_SECONDS + 2)  # two seconds for Engage, then the reserve

    after_engage = []  # (operation, seconds left when it started)
    for client in (update.container.dynamodb(), update.container.sqs()):  # the light clients: each call seen
        call = client.call

        def seen(operation, params, call=call):
            after_engage.append((operation, context.get_remaining_time_in_millis() / 1000))
            return call(operation, params)

        client.call = seen

    result = update(event, context)
    [failed] = [m for m in messages if bertil not in m["Body"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": failed["MessageId"]}]}
    assert [json.loads(m["Body"])["contactId"] for m in queues.messages("update_contact-dlq")] == [bertil]
    tail = [(name, left) for name, left in after_engage if name not in ("PutItem", "GetItem")]
    assert {"DeleteItem", "SendMessage", "ChangeMessageVisibilityBatch"} <= {name for name, _ in tail}
    # every call after Engage started with (about) the whole reserve still ahead of it
    assert min(left for _, left in tail) >= AWS_RESERVE_SECONDS - 1
    assert context.get_remaining_time_in_millis() > 0
