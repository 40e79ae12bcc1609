"""An API request is answered before API Gateway's 29 s whatever AWS does before and after Engage is called
(contract: API Gateway): DynamoDB answering late (moto's server, `local.moto_faults.slow`) cannot push the
answer past it, since every AWS call of an API request ends by the request's answer time."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import LocalContext, api_event
from local.signing import new_secret, signed_headers

from ..conftest import DIGEST_KEY, REGION, SANDBOX_KEY, load_function

pytestmark = pytest.mark.slow
ANNA = DEMO_CONTACTS[0]["id"]
API_GATEWAY_LIMIT = 29.0  # API Gateway's integration timeout for a REST API: a protocol limit, not a speed goal


@pytest.fixture
def moto_server(monkeypatch):
    """moto's server on 127.0.0.1 (a real socket: a late answer meets the clients' read timeouts)."""
    from moto.server import ThreadedMotoServer

    from local import moto_fixes

    moto_fixes.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    for name, value in {"AWS_ENDPOINT_URL": url, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    yield url
    server.stop()


@pytest.fixture
def update(moto_server, sandbox, monkeypatch):
    """The update function with a table and signed requests, against moto's server and the sandbox."""
    secrets, webhook, unique = boto3.client("secretsmanager"), new_secret(), uuid.uuid4().hex  # moto's state lives on
    table = f"idempotency-{unique}"
    boto3.client("dynamodb").create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])  # fmt: skip
    for name, value in {
        "ENGAGE_BASE_URL": sandbox.url,
        "ENGAGE_API_KEY_SECRET_ARN": secrets.create_secret(Name=f"key-{unique}", SecretString=SANDBOX_KEY)["ARN"],
        "WEBHOOK_SECRET_ARN": secrets.create_secret(Name=f"webhook-{unique}", SecretString=webhook)["ARN"],
        "DIGEST_KEY_SECRET_ARN": secrets.create_secret(Name=f"digest-{unique}", SecretString=DIGEST_KEY)["ARN"],
        "WEBHOOK_SIGNING": "required",
        "IDEMPOTENCY_TABLE": table,
        "ENGAGE_TIMEOUT_SECONDS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    handler = load_function("update_contact").lambda_handler

    def call(command):
        body = json.dumps(command)
        event = api_event("POST", "/contacts/update", body, {"Content-Type": "application/json",
                                                               **signed_headers(webhook, body)})  # fmt: skip
        started = time.monotonic()
        answer = handler(event, LocalContext(timeout_seconds=60))
        return answer, time.monotonic() - started

    return call


def test_aws_answering_late_cannot_push_an_api_answer_past_29_s(update, sandbox):
    """Secrets Manager and the table's claims answer in 2.9 s (just within a read's timeout), every other table
    call 10 s late (each fails after its two attempts, and the request goes on without it: the sent-digest read,
    the rate budget's lease, the contact's lease let go, the idempotency record completed). One after the other
    they took 31 s, and API Gateway would have answered 504; now each is cut to the time left before the answer
    is due."""
    from local import moto_faults

    with (
        moto_faults.slow("GetSecretValue", 2.9),
        moto_faults.slow("PutItem", 2.9),
        moto_faults.slow("GetItem", 10),
        moto_faults.slow("BatchGetItem", 10),
        moto_faults.slow("UpdateItem", 10),
        moto_faults.slow("DeleteItem", 10),
    ):
        answer, elapsed = update({"contactId": ANNA, "attributes": {"city": "Slowtown"}})
    assert elapsed < API_GATEWAY_LIMIT, elapsed
    assert answer["statusCode"] in (200, 503), answer
    if answer["statusCode"] == 503:
        assert int(answer["headers"]["Retry-After"]) >= 1
    else:  # Engage was called in time: the change is applied
        assert sandbox.state.get_contact(ANNA)["city"] == "Slowtown"


def test_a_claim_the_table_cannot_answer_in_time_is_answered_503_with_retry_after(update, sandbox):
    """The table's claims answer 30 s late: the request is answered 503 DependencyUnavailable with Retry-After
    before 29 s, and Engage is never called."""
    from local import moto_faults

    with moto_faults.slow("PutItem", 30) as slowed:
        answer, elapsed = update({"contactId": ANNA, "attributes": {"city": "Neverland"}})
    assert elapsed < API_GATEWAY_LIMIT, elapsed
    assert answer["statusCode"] == 503 and json.loads(answer["body"])["error"] == "DependencyUnavailable"
    assert int(answer["headers"]["Retry-After"]) >= 1
    assert slowed["calls"] >= 1 and sandbox.state.request_log() == []
