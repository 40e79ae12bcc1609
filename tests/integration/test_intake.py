"""The intake runs apart from the operation functions: the public webhook routes and the backfill's tasks live
in functions of their own (no Engage client, no Engage key); the update function serves neither."""

from __future__ import annotations

import json

import pytest

from local.lambda_runtime import LocalContext, api_event

from ..conftest import load_function
from .test_ecommerce import SHOPIFY_CUSTOMER, shopify_headers


def test_the_update_function_serves_no_webhook_route(functions):
    raw = json.dumps(SHOPIFY_CUSTOMER).encode()
    answer = functions["update_contact"](api_event("POST", "/webhooks/shopify", raw.decode(), shopify_headers(raw)),
                                         LocalContext())  # fmt: skip
    assert answer["statusCode"] == 404


def test_the_update_function_takes_no_backfill_task(functions, sandbox):
    with pytest.raises(Exception) as refused:
        functions["update_contact"]({"backfillReport": {"id": "bf-x"}}, LocalContext())
    assert type(refused.value).__name__ == "InvalidRequest"
    assert sandbox.state.request_log() == []


def test_the_webhook_intake_takes_api_requests_only(function_env, sandbox):
    function_env("update_contact")
    intake = load_function("intake_webhooks").lambda_handler
    with pytest.raises(Exception) as refused:
        intake({"contactId": "430d3329-7eef-45c0-37f9-ae9300a0dace", "attributes": {"city": "X"}}, LocalContext())
    assert type(refused.value).__name__ == "InvalidRequest"
    assert sandbox.state.request_log() == []


def test_a_backfill_task_of_no_known_shape_is_refused_by_name(function_env, queues, monkeypatch):
    function_env("update_contact")
    monkeypatch.setenv("UPDATE_QUEUE_URL", queues.urls["update_contact"])
    tasks = load_function("intake_backfill").lambda_handler
    with pytest.raises(Exception) as refused:
        tasks({"backfil": {"id": "bf-x"}}, LocalContext())
    assert type(refused.value).__name__ == "InvalidRequest" and "backfillCheck" in str(refused.value)
