"""events/ are real, working events; the state machine names only errors the code raises."""

from __future__ import annotations

import inspect
import json
import types

import pytest
from engage_contact import errors

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import LocalContext

from ..conftest import FUNCTIONS, ROOT, load_function

# errors Step Functions and Lambda name themselves (Sandbox.Timedout: Lambda ended the invocation at its timeout)
PLATFORM_ERRORS = ("States.", "Lambda.", "Sandbox.")


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
        assert name in raised or name.startswith(PLATFORM_ERRORS), name


def test_the_workflow_retries_exactly_the_retryable_errors():
    retried = {
        n
        for s in workflow()["States"].values()
        for r in s.get("Retry", [])
        for n in r["ErrorEquals"]
        if not n.startswith(PLATFORM_ERRORS)
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


# --- the state machine, run: moto's interpreter, our functions as its Lambda tasks -----------------------
ANNA, BERTIL = DEMO_CONTACTS[0]["id"], DEMO_CONTACTS[1]["id"]


@pytest.fixture
def run_workflow(functions, monkeypatch):
    """Run statemachine/contact_workflow.asl.json on an input; the retry waits it asked for are in .waits."""
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    from local.workflow import LocalWorkflow

    from ..conftest import REGION

    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    waits = []  # moto's retrier sleeps the interval for real: recorded here instead of waited
    monkeypatch.setattr(retrier_decl, "time", types.SimpleNamespace(sleep=waits.append))
    workflow = LocalWorkflow({"UpdateContactFunction": functions["update_contact"],
                              "PromoteContactFunction": functions["promote_contact"],
                              "ChangeContactTypeFunction": functions["change_contact_type"]}, REGION)  # fmt: skip

    def run(execution_input):
        execution = workflow.run(execution_input)
        execution["waits"] = list(waits)
        execution["history"] = workflow.history(execution["executionArn"])
        scheduled = [json.loads(e["taskScheduledEventDetails"]["parameters"])
                     for e in execution["history"] if e["type"] == "TaskScheduled"]  # fmt: skip
        # each Lambda task the run scheduled: (the function's logical id, the command it was given)
        execution["lambda_calls"] = [
            (p["FunctionName"].rsplit(":", 1)[-1].split("-")[0], p["Payload"]["workflowCommand"]) for p in scheduled
        ]
        return execution

    return run


def sandbox_contact(sandbox, contact_id):
    return sandbox.state.get_contact(contact_id)


def engage_calls(sandbox, route):
    return sandbox.state.request_log(route)


def documented_workflow_input():
    page = (ROOT / "docs" / "getting-started.md").read_text()
    section = page[page.index("## Step Functions") :]
    return json.loads(
        section[section.index("```json") + len("```json") : section.index("```", section.index("```json") + 7)]
    )


@pytest.mark.parametrize("source", ["docs", "events/contact_workflow/input.json"])
def test_the_documented_input_updates_then_promotes(sandbox, run_workflow, source):
    given = documented_workflow_input() if source == "docs" else json.loads(
        (ROOT / "events" / "contact_workflow" / "input.json").read_text())  # fmt: skip
    execution = run_workflow(given)
    assert execution["status"] == "SUCCEEDED", execution
    contact_id = execution["output"]["updated"]["contactId"]
    assert execution["output"]["promoted"]["contactId"] == contact_id
    # Engage's whole contact is kept nowhere in the run's history (90 days): not in a task's answer either
    assert "contact" not in execution["output"]["promoted"] and "contact" not in execution["output"]["updated"]
    history = json.dumps(execution["history"], default=str)
    assert contact_id in history and "contactType" not in history
    contact = sandbox_contact(sandbox, contact_id)
    assert contact["email"] == given["update"]["lookup"]["email"]
    assert contact["city"] == given["update"]["attributes"]["city"] and contact["contactType"] == "Member"
    promotions = engage_calls(sandbox, "promote")
    assert len(promotions) == 1 and json.loads(promotions[0]["body"]) == given["promote"]["attributes"]


def test_a_minimal_input_without_promote_attributes_still_promotes(sandbox, run_workflow):
    given = json.loads((ROOT / "events" / "contact_workflow" / "minimal.json").read_text())
    assert "promote" not in given
    execution = run_workflow(given)
    assert execution["status"] == "SUCCEEDED", execution
    assert sandbox_contact(sandbox, BERTIL)["contactType"] == "Member"
    assert sandbox_contact(sandbox, BERTIL)["city"] == "Lund"


def test_the_whole_promote_command_is_passed_with_the_contact_the_update_found(sandbox, run_workflow):
    given = {"update": {"lookup": {"email": "bertil@example.com"}, "attributes": {"city": "Lund"}},
             "promote": {"idempotencyKey": "workflow-test-1"}}  # fmt: skip
    execution = run_workflow(given)
    assert execution["status"] == "SUCCEEDED", execution
    assert execution["lambda_calls"][1] == (
        "PromoteContactFunction",
        {"idempotencyKey": "workflow-test-1", "contactId": BERTIL},
    )


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ({"update": {"contactId": ANNA, "attributes": {"firstNam": "Anna"}}}, "InvalidRequest"),
        ({"update": {"lookup": {"email": "nobody@example.com"}, "attributes": {"city": "Lund"}}}, "ContactNotFound"),
        ({"promote": {"attributes": {"memberNumber": "M1"}}}, "InvalidRequest"),  # no update at all
        ({}, "InvalidRequest"),
    ],
)
def test_a_refused_command_ends_the_run_with_its_contract_name(sandbox, run_workflow, given, error):
    execution = run_workflow(given)
    assert execution["status"] == "FAILED"
    assert execution["error"] == error, execution
    assert not engage_calls(sandbox, "update") and not engage_calls(sandbox, "promote")
    assert execution["waits"] == []  # refused at once, never retried


def test_a_refused_promotion_ends_with_its_contract_name_after_the_update(sandbox, run_workflow):
    given = {"update": {"contactId": ANNA, "attributes": {"city": "Lund"}}, "promote": {"attributes": {"age": 3}}}
    execution = run_workflow(given)
    assert execution["status"] == "FAILED" and execution["error"] == "InvalidRequest", execution
    assert sandbox_contact(sandbox, ANNA)["city"] == "Lund" and not engage_calls(sandbox, "promote")


def test_engage_unavailable_through_one_invocation_is_retried_by_the_workflow(sandbox, run_workflow):
    # as many 503s as one invocation tries: the function gives up with EngageUnavailable, the workflow retries it
    from local.engage_sandbox.state import Fault

    sandbox.state.add_faults([Fault(kind="status", route="update", status=503, count=4)])
    execution = run_workflow(json.loads((ROOT / "events" / "contact_workflow" / "minimal.json").read_text()))
    assert execution["status"] == "SUCCEEDED", execution
    assert len(execution["waits"]) == 1 and 0 <= execution["waits"][0] <= 10  # IntervalSeconds, full jitter
    assert [name for name, _ in execution["lambda_calls"]] == ["UpdateContactFunction"] * 2 + ["PromoteContactFunction"]
    assert [r["applied"] for r in engage_calls(sandbox, "update")] == [False] * 4 + [True]


def test_every_task_retries_lambda_failures_and_timeouts():
    for state in workflow()["States"].values():
        if state["Type"] == "Task":
            retried = {n for r in state["Retry"] for n in r["ErrorEquals"]}
            assert {"Lambda.Unknown", "Sandbox.Timedout", "Lambda.ServiceException"} <= retried


def documented_create_then_promote_input():
    page = (ROOT / "docs" / "getting-started.md").read_text()
    start = page.index("## Step Functions")
    end = min(i for i in (page.find("\n### ", start + 1), page.find("\n## ", start + 1)) if i > 0)
    section = page[start:end]
    blocks = section.split("```json")[1:]
    (block,) = [b for b in blocks if "createIfMissing" in b.split("```")[0]]
    return json.loads(block.split("```")[0])


@pytest.mark.parametrize("source", ["docs", "events/contact_workflow/create_then_promote.json"])
def test_update_or_create_then_promote_creates_the_contact_then_promotes_it(sandbox, run_workflow, source):
    given = documented_create_then_promote_input() if source == "docs" else json.loads(
        (ROOT / "events" / "contact_workflow" / "create_then_promote.json").read_text())  # fmt: skip
    email = given["update"]["lookup"]["email"]
    assert not [c for c in sandbox.state.list_contacts() if c.get("email") == email]
    execution = run_workflow(given)
    assert execution["status"] == "SUCCEEDED", execution
    assert execution["lambda_calls"][0] == ("UpdateContactFunction", given["update"])  # createIfMissing passed through
    (created,) = [c for c in sandbox.state.list_contacts() if c.get("email") == email]
    assert execution["output"]["updated"]["contactId"] == created["id"] == execution["output"]["promoted"]["contactId"]
    (create,) = engage_calls(sandbox, "create")
    body = json.loads(create["body"])
    assert body["contactType"] == given["update"]["createIfMissing"]["contactType"]  # created as asked, not a Member
    assert {k: body[k] for k in given["update"]["attributes"]} == given["update"]["attributes"]
    promotions = engage_calls(sandbox, "promote")
    assert [p["contactId"] for p in promotions] == [created["id"]]
    assert json.loads(promotions[0]["body"]) == given["promote"]["attributes"]
    stored = sandbox_contact(sandbox, created["id"])
    assert stored["contactType"] == "Member"
    assert stored["memberNumber"] == given["promote"]["attributes"]["memberNumber"]
    assert stored["city"] == given["update"]["attributes"]["city"] and not engage_calls(sandbox, "update")


def test_a_second_run_of_update_or_create_finds_the_contact_the_first_created(sandbox, run_workflow):
    given = json.loads((ROOT / "events" / "contact_workflow" / "create_then_promote.json").read_text())
    first, second = run_workflow(given), run_workflow(given)
    assert first["status"] == second["status"] == "SUCCEEDED", (first, second)
    email = given["update"]["lookup"]["email"]
    (created,) = [c for c in sandbox.state.list_contacts() if c.get("email") == email]  # one key, one contact
    assert second["output"]["updated"]["contactId"] == created["id"]
    assert len(engage_calls(sandbox, "create")) == 1
    assert {r["contactId"] for r in engage_calls(sandbox, "update")} == {created["id"]}  # the second run's update
    assert sandbox_contact(sandbox, created["id"])["_promotions"] == 1  # a Member already: promoted once
