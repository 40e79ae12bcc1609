"""API Gateway's 29 seconds: an API request is answered before them whatever Engage does, and the local API
stand-in answers 504 at them as API Gateway does (contract: API Gateway)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from local.engage_sandbox import DEMO_CONTACTS
from local.send import find_stack, send_api
from local.stack import LocalStack
from local.template import read_stack

from .test_local_stack import contact, start_stack

pytestmark = pytest.mark.slow
CECILIA = DEMO_CONTACTS[2]["id"]
API_GATEWAY_LIMIT = 29.0  # API Gateway's integration timeout for a REST API: a protocol limit, not a speed goal


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    started = start_stack(tmp_path_factory.mktemp("stack"))
    yield started
    if started["process"].poll() is None:
        started["process"].kill()


@pytest.fixture
def engage_faults(stack):
    url = f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/faults"

    def add(*faults):
        requests.post(url, json=list(faults), timeout=5).raise_for_status()

    yield add
    requests.delete(url, timeout=5).raise_for_status()


def timed_update(stack, command):
    """The API's answer to a signed update, and how long it took (signed with the stack's own secret)."""
    target = find_stack(stack["file"])
    started = time.monotonic()
    status, text = send_api(target, "update", json.dumps(command))
    return status, json.loads(text), time.monotonic() - started


def test_engage_asking_for_30_seconds_is_answered_503_with_retry_after_before_29_s(stack, engage_faults):
    engage_faults({"kind": "status", "status": 429, "headers": {"Retry-After": "30"}, "contact": CECILIA})
    target = find_stack(stack["file"])
    from local.signing import signed_headers

    body = json.dumps({"contactId": CECILIA, "attributes": {"city": "Kiruna"}})
    secret = target.client("secretsmanager").get_secret_value(SecretId=target.webhook_secret)["SecretString"]
    started = time.monotonic()
    response = requests.post(f"{target.api}/contacts/update", data=body.encode(), timeout=60,
                             headers={"Content-Type": "application/json", **signed_headers(secret, body)})  # fmt: skip
    elapsed = time.monotonic() - started
    assert (response.status_code, response.json()["error"]) == (503, "EngageRateLimited")
    assert int(response.headers["Retry-After"]) >= 30  # Engage's own wish is passed on
    assert elapsed < API_GATEWAY_LIMIT, elapsed
    assert contact(stack, CECILIA).get("city") != "Kiruna"


def test_engage_hanging_is_answered_503_before_29_s(stack, engage_faults):
    engage_faults({"kind": "hang", "seconds": 60, "contact": CECILIA})
    status, body, elapsed = timed_update(stack, {"contactId": CECILIA, "attributes": {"city": "Abisko"}})
    assert (status, body["error"]) == (503, "EngageUnavailable")
    assert elapsed < API_GATEWAY_LIMIT, elapsed


def test_the_local_api_answers_504_at_the_integration_timeout_as_api_gateway_does():
    """The stand-in itself: a function that has not answered by the route's timeout gets API Gateway's 504."""
    spec = read_stack().function_named("update_contact")
    assert spec.integration_timeout == API_GATEWAY_LIMIT  # the template sets it explicitly
    released = threading.Event()

    class Slow:
        def __init__(self, seconds):
            self.spec = type(spec)(**{**spec.__dict__, "integration_timeout": seconds})

        def __call__(self, event, context):
            released.wait(5)
            return {"statusCode": 200, "body": "{}"}

    started = time.monotonic()
    assert LocalStack.invoke_for_api(Slow(0.3), {}) is None  # 504: the function has not answered
    assert time.monotonic() - started < 5
    released.set()
    assert LocalStack.invoke_for_api(Slow(1.0), {}) == {"statusCode": 200, "body": "{}"}
