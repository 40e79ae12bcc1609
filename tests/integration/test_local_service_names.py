"""Locally, each function logs under its own service name, as deployed (one process holds them all here)."""

from __future__ import annotations

import json

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import LocalContext, SqsEventSource, send_command
from local.stack import LocalFunction
from local.template import read_stack

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
