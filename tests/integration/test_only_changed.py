"""Only what changed (docs/contract.md, "Only what changed"): against the sandbox and moto's DynamoDB,
asserting what Engage received, and that the end state is what sending everything would have made."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from engage_contact.errors import ContactNotFound, EngageUnavailable

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.lambda_runtime import LocalContext

from ..conftest import REGION, load_function

ANNA = DEMO_CONTACTS[0]["id"]
DAY = 24 * 3600
SHOP_CUSTOMER = "shopify:shop.myshopify.com:42"  # a platform's own id of the customer (a shop's commands carry it)


@pytest.fixture
def invoke(functions):
    def call(command, name="update_contact"):
        return functions[name](command, LocalContext())

    return call


def changed(**attributes):
    return {"contactId": ANNA, "attributes": attributes, "sendOnlyChanged": True}


def updates(sandbox):
    """What Engage received on its update route, applied or not, in order."""
    return [json.loads(r["body"]) for r in sandbox.state.request_log("update")]


def record_item(contact=ANNA):
    table = boto3.client("dynamodb", region_name=REGION)
    return table.get_item(TableName="idempotency", Key={"id": {"S": f"sent#{contact}"}}).get("Item")


def metric_names(capsys):
    return {m["Name"] for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
            for d in json.loads(line)["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}  # fmt: skip


def test_an_update_with_nothing_new_is_not_sent_and_says_unchanged(invoke, sandbox, capsys):
    first = invoke(changed(firstName="Anna", city="Lund"))
    assert first["sent"] == {"firstName": "Anna", "city": "Lund"} and first["droppedUnchanged"] == []
    capsys.readouterr()
    again = invoke(changed(firstName=" Anna ", city="Lund", street=""))
    assert updates(sandbox) == [{"firstName": "Anna", "city": "Lund"}]  # one Engage call, not two
    assert again["unchanged"] is True and again["sent"] == {} and again["contact"] is None
    assert again["droppedUnchanged"] == ["firstName", "city"] and again["droppedEmpty"] == ["street"]
    assert {"UpdatesSkippedUnchanged", "AttributesDroppedUnchanged"} <= metric_names(capsys)


def test_only_the_changed_attributes_and_preference_fields_go_out(invoke, sandbox):
    invoke(changed(firstName="Anna", city="Lund", preferences={"acceptsEmail": True, "acceptsSms": False}))
    result = invoke(changed(firstName="Anna", city="Malmö", preferences={"acceptsEmail": True, "acceptsSms": True}))
    assert updates(sandbox)[-1] == {"city": "Malmö", "preferences": {"acceptsSms": True}}
    assert result["sent"] == updates(sandbox)[-1]
    assert result["droppedUnchanged"] == ["firstName", "preferences.acceptsEmail"]
    anna = sandbox.state.get_contact(ANNA)
    assert (anna["city"], anna["preferences"]["acceptsEmail"], anna["preferences"]["acceptsSms"]) == (
        "Malmö", True, True)  # fmt: skip


def test_clear_names_always_go_out(invoke, sandbox):
    invoke({**changed(city="Lund"), "clear": ["careOf"]})
    result = invoke({**changed(city="Lund"), "clear": ["careOf"]})
    assert updates(sandbox) == [{"city": "Lund", "careOf": ""}, {"careOf": ""}]
    assert result["sent"] == {"careOf": ""} and result["droppedUnchanged"] == ["city"] and "unchanged" not in result


def test_a_plain_keyed_update_in_between_is_never_hidden(invoke, sandbox):
    invoke(changed(city="Lund"))
    invoke({"contactId": ANNA, "attributes": {"city": "Malmö"}, "idempotencyKey": "plain-1"})  # as SQS, API, ...
    result = invoke(changed(city="Lund"))
    assert result["sent"] == {"city": "Lund"} and sandbox.state.get_contact(ANNA)["city"] == "Lund"


def test_a_promotion_in_between_is_never_hidden(invoke, sandbox):
    invoke(changed(city="Lund"))
    invoke({"contactId": ANNA, "attributes": {"city": "Malmö"}, "idempotencyKey": "p-1"}, "promote_contact")
    result = invoke(changed(city="Lund"))
    assert result["sent"] == {"city": "Lund"} and sandbox.state.get_contact(ANNA)["city"] == "Lund"


def test_an_update_whose_answer_was_lost_leaves_nothing_that_hides_the_next(invoke, sandbox):
    invoke(changed(city="Lund"))
    sandbox.state.add_faults([Fault.from_json({"kind": "apply_then_status", "route": "update", "status": 503})])
    with pytest.raises(EngageUnavailable):
        invoke(changed(city="Malmö"))  # applied by Engage, never confirmed (and then given up, dead-lettered)
    sandbox.state.clear_faults()
    assert sandbox.state.get_contact(ANNA)["city"] == "Malmö"
    result = invoke(changed(city="Lund"))
    assert result["sent"] == {"city": "Lund"} and sandbox.state.get_contact(ANNA)["city"] == "Lund"


def test_the_record_holds_digests_never_values_and_expires(invoke, sandbox):
    invoke(changed(firstName="Annabelle", city="Lund", preferences={"acceptsSms": True}))
    item = record_item()
    assert "Annabelle" not in json.dumps(item) and "Lund" not in json.dumps(item)
    assert {k for k in item if k.startswith("d:")} == {"d:firstName", "d:city", "d:preferences.acceptsSms"}
    assert abs(int(item["expiration"]["N"]) - (time.time() + 30 * DAY)) < 120


def test_an_entry_older_than_its_lifetime_is_sent_again(invoke, sandbox):
    invoke(changed(city="Lund", firstName="Anna"))
    item = record_item()
    digest, _, _at = item["d:city"]["S"].partition("@")
    item["d:city"] = {"S": f"{digest}@{int(time.time() - 31 * DAY)}"}  # as if confirmed 31 days ago
    boto3.client("dynamodb", region_name=REGION).put_item(TableName="idempotency", Item=item)
    result = invoke(changed(city="Lund", firstName="Anna"))
    assert result["sent"] == {"city": "Lund"} and result["droppedUnchanged"] == ["firstName"]


def test_a_created_contact_is_recorded_with_what_the_create_sent(invoke, sandbox):
    command = {"lookup": {"email": "nora@example.com"}, "attributes": {"firstName": "Nora", "city": "Lund"},
               "createIfMissing": {"contactType": "Contact"}, "sendOnlyChanged": True,
               "sourceCustomer": SHOP_CUSTOMER}  # fmt: skip
    created = invoke(command)
    assert created["created"] is True and created["droppedUnchanged"] == []
    again = invoke(command)
    assert again["unchanged"] is True and again["contactId"] == created["contactId"]
    assert again["droppedUnchanged"] == ["firstName", "city"]
    # the shop customer's contact is remembered too: an unchanged customer costs Engage no call at all
    assert [r["route"] for r in sandbox.state.request_log()] == ["lookup", "create"]


def test_a_remembered_contact_gone_from_engage_is_looked_up_before_one_is_created(invoke, sandbox):
    """Voyado's rule holds with a remembered contact too: a create only ever follows a lookup that missed."""
    command = {"lookup": {"email": "nora@example.com"}, "attributes": {"firstName": "Nora", "city": "Lund"},
               "createIfMissing": {"contactType": "Contact"}, "sendOnlyChanged": True,
               "sourceCustomer": SHOP_CUSTOMER}  # fmt: skip
    first = invoke(command)
    with sandbox.state.lock:  # removed in Engage since
        del sandbox.state.contacts[first["contactId"]]
    again = invoke({**command, "attributes": {"firstName": "Nora", "city": "Malmö"}})
    routes = [(r["route"], r["status"]) for r in sandbox.state.request_log()]
    assert routes == [("lookup", 404), ("create", 201), ("update", 404), ("lookup", 404), ("create", 201)]
    assert again["created"] is True and again["contactId"] != first["contactId"]
    contacts = [c for c in sandbox.state.list_contacts() if c.get("email") == "nora@example.com"]
    assert [c["city"] for c in contacts] == ["Malmö"]  # one key, one contact, with every value


def test_a_shop_customer_remembered_is_written_to_without_looking_it_up_again(invoke, sandbox):
    email = DEMO_CONTACTS[0]["attributes"]["email"]
    command = {"lookup": {"email": email}, "attributes": {"city": "Lund"}, "sendOnlyChanged": True,
               "sourceCustomer": SHOP_CUSTOMER}  # fmt: skip
    invoke(command)
    assert invoke(command)["unchanged"] is True
    result = invoke({**command, "attributes": {"city": "Malmö"}})
    assert [r["route"] for r in sandbox.state.request_log()] == ["lookup", "update", "update"]
    assert result["contactId"] == ANNA and sandbox.state.get_contact(ANNA)["city"] == "Malmö"


def test_a_remembered_contact_engage_no_longer_has_is_looked_up_again(invoke, sandbox):
    email = DEMO_CONTACTS[0]["attributes"]["email"]
    command = {"lookup": {"email": email}, "attributes": {"city": "Lund"}, "sendOnlyChanged": True,
               "sourceCustomer": SHOP_CUSTOMER}  # fmt: skip
    invoke(command)
    with sandbox.state.lock:  # merged into another contact in Engage: the old id is gone
        del sandbox.state.contacts[ANNA]
    merged = sandbox.state.add_contact({"contactType": "Contact", "attributes": {"email": email}})
    result = invoke({**command, "attributes": {"city": "Malmö"}})
    log = sandbox.state.request_log()
    assert [(r["route"], r["status"]) for r in log[2:]] == [("update", 404), ("lookup", 200), ("update", 200)]
    assert result["contactId"] == merged and sandbox.state.get_contact(merged)["city"] == "Malmö"
    invoke({**command, "attributes": {"city": "Visby"}})  # and the merged contact is the one remembered now
    assert [r["route"] for r in sandbox.state.request_log()[5:]] == ["update"]
    assert sandbox.state.get_contact(merged)["city"] == "Visby"


def test_a_shop_customer_whose_key_changed_in_engage_is_written_to_once_then_looked_up_again(invoke, sandbox, capsys):
    email = DEMO_CONTACTS[0]["attributes"]["email"]
    command = {"lookup": {"email": email}, "attributes": {"city": "Lund"}, "sendOnlyChanged": True,
               "sourceCustomer": SHOP_CUSTOMER}  # fmt: skip
    invoke(command)
    with sandbox.state.lock:  # the customer changed the address in a preference centre
        sandbox.state.contacts[ANNA]["attributes"]["email"] = "anna.elsewhere@example.com"
    other = sandbox.state.add_contact({"contactType": "Contact", "attributes": {"email": email}})
    capsys.readouterr()
    first = invoke({**command, "attributes": {"city": "Malmö"}})
    # written to the contact the shop's customer was found as (the same person), then seen to have moved
    assert first["contactId"] == ANNA and "RememberedContactMoved" in metric_names(capsys)
    second = invoke({**command, "attributes": {"city": "Visby"}})
    assert [r["route"] for r in sandbox.state.request_log()[2:]] == ["update", "lookup", "update"]
    assert second["contactId"] == other and sandbox.state.get_contact(other)["city"] == "Visby"


def test_a_command_known_only_by_its_key_is_looked_up_every_time(invoke, sandbox):
    """Nothing but the key's value names the contact: only Engage's lookup says whose it is now."""
    email = DEMO_CONTACTS[0]["attributes"]["email"]
    command = {"lookup": {"email": email}, "attributes": {"city": "Lund"}, "sendOnlyChanged": True}
    invoke(command)
    assert invoke(command)["unchanged"] is True
    invoke({**command, "attributes": {"city": "Malmö"}})
    assert [r["route"] for r in sandbox.state.request_log()] == ["lookup", "update", "lookup", "lookup", "update"]


def test_a_key_moved_to_another_contact_never_gets_a_key_only_write_to_the_old_one(invoke, sandbox, capsys):
    """docs/contract.md §11: the key's value now belongs to Y; a command known only by that value is Y's."""
    email = DEMO_CONTACTS[0]["attributes"]["email"]
    command = {"lookup": {"email": email}, "attributes": {"city": "Lund"}, "sendOnlyChanged": True}
    invoke(command)
    with sandbox.state.lock:  # in Engage, the address moves from X (Anna) to another contact, Y
        sandbox.state.contacts[ANNA]["attributes"]["email"] = "anna.elsewhere@example.com"
    other = sandbox.state.add_contact({"contactType": "Contact", "attributes": {"email": email}})
    capsys.readouterr()
    result = invoke({**command, "attributes": {"city": "Malmö"}})
    log = sandbox.state.request_log()[2:]
    assert [(r["route"], r.get("contactId")) for r in log] == [("lookup", None), ("update", other)]
    assert result["contactId"] == other and sandbox.state.get_contact(other)["city"] == "Malmö"
    assert sandbox.state.get_contact(ANNA)["city"] == "Lund"  # X received nothing
    assert "RememberedContactMoved" not in metric_names(capsys)


def test_a_remembered_contact_of_another_type_than_the_lookup_asks_is_looked_up_again(invoke, sandbox):
    email = DEMO_CONTACTS[0]["attributes"]["email"]
    lookup = {"email": email, "contactType": sandbox.state.get_contact(ANNA)["contactType"]}
    shop = {"sendOnlyChanged": True, "sourceCustomer": SHOP_CUSTOMER}
    invoke({"lookup": lookup, "attributes": {"city": "Lund"}, **shop})
    with sandbox.state.lock:
        sandbox.state.contacts[ANNA]["contactType"] = "Prospect" if lookup["contactType"] != "Prospect" else "Contact"
    invoke({"lookup": lookup, "attributes": {"city": "Malmö"}, **shop})
    with pytest.raises(ContactNotFound):  # looked up again, with its type: Engage finds no one of that type
        invoke({"lookup": lookup, "attributes": {"city": "Visby"}, **shop})
    assert [r["route"] for r in sandbox.state.request_log()] == ["lookup", "update", "update", "lookup"]


def test_an_update_that_changes_the_lookup_key_forgets_what_the_lookup_found(invoke, sandbox):
    email = DEMO_CONTACTS[0]["attributes"]["email"]
    shop = {"sendOnlyChanged": True, "sourceCustomer": SHOP_CUSTOMER}
    invoke({"lookup": {"email": email}, "attributes": {"city": "Lund"}, **shop})
    invoke({"lookup": {"email": email}, "attributes": {"email": "anna.new@example.com"}, **shop})
    sandbox.state.add_contact({"contactType": "Contact", "attributes": {"email": email, "city": "Lund"}})
    other = invoke({"lookup": {"email": email}, "attributes": {"city": "Lund"}, **shop})
    assert other["contactId"] != ANNA  # looked up again: the address now names someone else


def test_a_replay_answers_what_was_dropped(invoke, sandbox):
    invoke(changed(city="Lund"))
    command = {**changed(city="Lund", firstName="Ann"), "idempotencyKey": "k-1"}
    first = invoke(command)
    replay = invoke(command)
    assert replay["replayed"] is True and replay["droppedUnchanged"] == first["droppedUnchanged"] == ["city"]
    assert replay["sent"] == first["sent"] == {"firstName": "Ann"}


def test_by_lookup_the_same_record_is_used(invoke, sandbox):
    invoke(changed(city="Lund"))
    result = invoke({"lookup": {"email": DEMO_CONTACTS[0]["attributes"]["email"]}, "attributes": {"city": "Lund"},
                     "sendOnlyChanged": True})  # fmt: skip
    assert result["unchanged"] is True and result["contactId"] == ANNA


def test_without_the_table_everything_is_sent(function_env, sandbox, monkeypatch):
    function_env("update_contact")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "")
    handler = load_function("update_contact").lambda_handler
    for _ in range(2):
        result = handler(changed(city="Lund"), LocalContext())
        assert result["sent"] == {"city": "Lund"} and "droppedUnchanged" not in result
    assert len(updates(sandbox)) == 2


def test_a_ttl_of_zero_keeps_no_record(function_env, sandbox, monkeypatch):
    function_env("update_contact")
    monkeypatch.setenv("SENT_DIGESTS_TTL_DAYS", "0")
    handler = load_function("update_contact").lambda_handler
    for _ in range(2):
        handler(changed(city="Lund"), LocalContext())
    assert len(updates(sandbox)) == 2 and record_item() is None


def test_an_unreachable_table_sends_everything_logged_once_and_counted(invoke, sandbox, log_output, capsys):
    invoke(changed(city="Lund"))
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName="idempotency")
    capsys.readouterr()
    result = invoke(changed(city="Lund"))  # no key: nothing else needs the table
    assert result["sent"] == {"city": "Lund"} and result["droppedUnchanged"] == []
    assert len(updates(sandbox)) == 2
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert len([line for line in lines if line["message"].startswith("sent digests unavailable")]) == 1
    assert "SentDigestsUnavailable" in metric_names(capsys)


def test_a_plain_update_of_a_contact_without_record_makes_none(invoke, sandbox):
    invoke({"contactId": ANNA, "attributes": {"city": "Lund"}, "idempotencyKey": "plain-2"})
    assert record_item() is None


def test_a_plain_update_through_sqs_is_never_hidden(functions, queues, sandbox):
    from local.lambda_runtime import SqsEventSource, send_command

    functions["update_contact"](changed(city="Lund"), LocalContext())
    url = queues.urls["update_contact"]
    send_command(queues.sqs, url, {"contactId": ANNA, "attributes": {"city": "Malmö"}}, ANNA)  # no key of its own
    send_command(queues.sqs, url, changed(city="Lund"), ANNA)
    SqsEventSource(queues.sqs, url, functions["update_contact"]).drain()
    assert updates(sandbox)[-1] == {"city": "Lund"} and sandbox.state.get_contact(ANNA)["city"] == "Lund"


def test_in_one_batch_a_contact_recorded_since_the_batch_began_is_forgotten_before_its_next_write(
    functions, queues, sandbox
):
    from local.lambda_runtime import SqsEventSource, send_command

    # no record when the batch begins (read once for the batch); its first command records one
    assert record_item() is None
    url = queues.urls["update_contact"]
    for command in (changed(city="Lund"), {"contactId": ANNA, "attributes": {"city": "Malmö"}}, changed(city="Lund")):
        send_command(queues.sqs, url, command, ANNA)
    assert SqsEventSource(queues.sqs, url, functions["update_contact"]).poll_once() == {"batchItemFailures": []}
    assert [u["city"] for u in updates(sandbox)] == ["Lund", "Malmö", "Lund"]
    assert sandbox.state.get_contact(ANNA)["city"] == "Lund"


@pytest.mark.parametrize(
    "write",
    [
        pytest.param({"contactId": ANNA, "attributes": {"city": "Malmö"}}, id="plain-update"),
        pytest.param(
            {"contactId": ANNA, "attributes": {"firstName": "Ann"}, "clear": ["city"], "sendOnlyChanged": True},
            id="only-changed-clearing",
        ),
    ],
)
def test_what_another_container_records_while_a_batch_writes_unseen_never_hides_a_later_change(
    functions, function_env, queues, sandbox, monkeypatch, write
):
    """The batch reads ahead that the contact has no record, so its command forgets nothing before its call.
    Another container (the API path) writes and records the contact just before Engage applies the batch's
    write: what it recorded is untrue once the batch's write lands, and must not hide a later change."""
    from local.lambda_runtime import SqsEventSource, send_command

    function_env("update_contact")
    api = load_function("update_contact").lambda_handler  # another container of the update function
    assert record_item() is None  # what the batch will read ahead
    draw_faults, interleaved = sandbox.state.draw_faults, []

    def meanwhile(route, contact_id=None, version=None):  # the sandbox, as the batch's write reaches it
        if route == "update" and not interleaved:
            interleaved.append("started")  # the other container's own update passes straight through
            interleaved.append(api(changed(city="Lund"), LocalContext()))
        return draw_faults(route, contact_id, version)

    monkeypatch.setattr(sandbox.state, "draw_faults", meanwhile)
    url = queues.urls["update_contact"]
    send_command(queues.sqs, url, write, ANNA)
    assert SqsEventSource(queues.sqs, url, functions["update_contact"]).poll_once() == {"batchItemFailures": []}
    monkeypatch.setattr(sandbox.state, "draw_faults", draw_faults)
    assert interleaved[1]["sent"] == {"city": "Lund"} and record_item() is not None  # recorded in between
    assert sandbox.state.get_contact(ANNA)["city"] != "Lund"  # and the batch's write landed after it
    result = api(changed(city="Lund"), LocalContext())
    assert result["sent"] == {"city": "Lund"} and sandbox.state.get_contact(ANNA)["city"] == "Lund"
