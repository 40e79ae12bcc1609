"""events/ are real, working events; the state machine names only errors the code raises."""

from __future__ import annotations

import inspect
import json

import pytest
from engage_contact import errors

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import LocalContext

from ..conftest import FUNCTIONS, ROOT, load_function


def workflow():
    return json.loads((ROOT / "statemachine" / "contact_workflow.asl.json").read_text())


def error_names_in(states):
    for state in states.values():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            yield from rule["ErrorEquals"]


def test_every_error_the_workflow_names_is_one_the_code_raises():
    raised = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.EngageContactError) and cls is not errors.EngageContactError
    }
    for name in error_names_in(workflow()["States"]):
        assert name in raised or name.startswith(("States.", "Lambda.")), name


def test_the_workflow_retries_exactly_the_retryable_errors():
    retried = {
        n
        for s in workflow()["States"].values()
        for r in s.get("Retry", [])
        for n in r["ErrorEquals"]
        if not n.startswith(("States.", "Lambda."))
    }
    retryable = {cls.__name__ for cls, policy in errors.ERROR_POLICIES.items() if policy.retryable}
    assert retried == retryable - {"Unauthorized"}


def test_the_workflow_catches_every_error_that_is_not_retried():
    for state in workflow()["States"].values():
        if state["Type"] == "Task":
            caught = {n for c in state["Catch"] for n in c["ErrorEquals"]}
            assert "States.ALL" in caught


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("trigger", ["direct", "api", "sqs"])
def test_each_event_file_is_handled(function_env, sandbox, monkeypatch, function, trigger):
    function_env(function)
    monkeypatch.setenv("WEBHOOK_SIGNING", "off")  # a file's signature cannot be fresh
    handler = load_function(function).lambda_handler
    event = json.loads((ROOT / "events" / function / f"{trigger}.json").read_text())
    result = handler(event, LocalContext())
    if trigger == "api":
        assert result["statusCode"] == 200, result["body"]
    elif trigger == "sqs":
        assert result == {"batchItemFailures": []}
    else:
        assert result["contactId"] in {c["id"] for c in DEMO_CONTACTS}
    assert sandbox.state.request_log()
