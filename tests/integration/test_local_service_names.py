"""Locally, each function logs and publishes its metrics under its own service name, as deployed (one process
holds them all here)."""

# ruff: noqa: F811 - `secrets_env` is test_ecommerce's fixture, imported to be used here

from __future__ import annotations

import json

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import LocalContext, SqsEventSource, send_command
from local.stack import LocalFunction
from local.template import read_stack

from ..conftest import ROOT
from .test_ecommerce import secrets_env  # noqa: F401

ANNA, BERTIL = DEMO_CONTACTS[0]["id"], DEMO_CONTACTS[1]["id"]


def local_function(function_env, name):
    spec = read_stack().function_named(name)
    env = {**function_env(name), "POWERTOOLS_SERVICE_NAME": spec.environment["POWERTOOLS_SERVICE_NAME"]}
    return LocalFunction(spec, env)


def services(log_output, message):
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    return [line["service"] for line in lines if line.get("message") == message]


def test_each_function_logs_under_the_templates_service_name(function_env, sandbox, log_output):
    promote = local_function(function_env, "promote_contact")  # the first loaded: the layer's logger is named so
    update = local_function(function_env, "update_contact")
    promote({"contactId": BERTIL, "attributes": {"memberNumber": "M9"}}, LocalContext())
    update({"contactId": ANNA, "attributes": {"city": "Lund"}}, LocalContext())
    assert services(log_output, "contact changed") == ["promote-contact", "update-contact"]


def test_a_batchs_records_handled_in_threads_log_under_their_functions_name(function_env, sandbox, queues,
                                                                           log_output):  # fmt: skip
    local_function(function_env, "promote_contact")
    update = local_function(function_env, "update_contact")
    for contact in (ANNA, BERTIL):  # two contacts: two message groups, handled side by side in threads
        send_command(queues.sqs, queues.urls["update_contact"], {"contactId": contact, "attributes": {"city": "Visby"}},
                     group=contact)  # fmt: skip
    source = SqsEventSource(queues.sqs, queues.urls["update_contact"], update)
    source.drain()
    assert not source.handed_back
    assert services(log_output, "contact changed") == ["update-contact", "update-contact"]


def emitted(capsys):
    """Each metric name in the EMF lines printed so far, with the services it was published under."""
    found = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    found.setdefault(metric["Name"], set()).add(blob.get("service"))
    return found


def test_each_function_publishes_its_metrics_under_the_templates_service_name(function_env, sandbox, capsys):
    promote = local_function(function_env, "promote_contact")
    update = local_function(function_env, "update_contact")
    capsys.readouterr()
    promote({"contactId": BERTIL, "attributes": {"memberNumber": "M9"}}, LocalContext())
    update({"contactId": ANNA, "attributes": {"city": "Lund"}}, LocalContext())
    promote({"contactId": ANNA, "attributes": {"memberNumber": "M10"}}, LocalContext())
    metrics = emitted(capsys)
    assert metrics["ContactsPromoted"] == {"promote-contact"} and metrics["ContactsUpdated"] == {"update-contact"}
    assert metrics["EngageLatency"] == {"promote-contact", "update-contact"}  # each flush its own function's


def test_a_count_under_a_dimension_of_its_own_carries_its_functions_service(secrets_env, function_env, capsys):
    """The Shopify API versions are counted by the webhook intake: under its name, not the update function's."""
    local_function(function_env, "update_contact")
    spec = read_stack().function_named("intake_webhooks")
    intake = LocalFunction(spec, {**function_env("update_contact"),
                                  "POWERTOOLS_SERVICE_NAME": spec.environment["POWERTOOLS_SERVICE_NAME"]})  # fmt: skip
    capsys.readouterr()
    event = json.loads((ROOT / "events" / "update_contact" / "shopify-2025-10-customer.json").read_text())
    assert json.loads(intake(event, LocalContext())["body"])["queued"] is True
    assert emitted(capsys)["WebhookApiVersions"] == {"intake-webhooks"}
