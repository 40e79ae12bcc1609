"""A v3 deployment end to end: every operation, find-or-create and the e-commerce route reach Engage through v3 only.

The sandbox's request log is the witness: a v3 deployment that let one call slip through a v2 path
(`/api/v2/…`) would still work against a tenant that has both, and no other test would notice.
"""

# ruff: noqa: F811 - `secrets_env` is test_ecommerce's fixture, imported to be used here

from __future__ import annotations

import pytest

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.lambda_runtime import LocalContext, SqsEventSource

from ..conftest import FUNCTIONS, load_function, load_webhooks_and_update
from .test_ecommerce import SHOPIFY_CUSTOMER, deliver, secrets_env, shopify_headers  # noqa: F401

ANNA, BERTIL, CECILIA = (c["id"] for c in DEMO_CONTACTS)  # a Member, a Contact, a Prospect
NEW_SHOPPER = {**SHOPIFY_CUSTOMER, "id": 2, "email": "v3.shopper@example.com", "first_name": "Vera",
               "last_name": "Tre", "state": "enabled"}  # fmt: skip


def v2_paths(sandbox):
    return [r["path"] for r in sandbox.state.request_log() if "/api/v2/" in r["path"]]


def routes(sandbox):
    return {r["route"] for r in sandbox.state.request_log()}


@pytest.fixture
def v3(secrets_env, queues, monkeypatch):
    """The three functions' handlers deployed with ENGAGE_API_VERSION=v3, Shopify creating unknown customers."""
    monkeypatch.setenv("ENGAGE_API_VERSION", "v3")
    secrets_env.set("shopify", "createIfMissing", {"contactType": "Contact", "source": "ECOM"})
    secrets_env.set("shopify", "promoteOnAccount", True)
    monkeypatch.setenv("PROMOTE_QUEUE_URL", queues.urls["promote_contact"])
    return {name: load_function(name).lambda_handler for name in FUNCTIONS}


def test_every_operation_of_a_v3_deployment_goes_through_v3_paths_only(v3, sandbox, queues):
    # each invocation its own context, as Lambda gives it (one shared would leave the last ones no time)
    v3["update_contact"]({"lookup": {"email": "bertil@example.com"}, "attributes": {"city": "Lund"}}, LocalContext())
    v3["promote_contact"]({"contactId": BERTIL, "attributes": {"memberNumber": "M3001"}}, LocalContext())
    v3["change_contact_type"]({"contactId": CECILIA, "contactTypeId": "Contact"}, LocalContext())
    created = v3["update_contact"]({"lookup": {"email": "new.v3@example.com"}, "attributes": {"firstName": "Nova"},
                                    "createIfMissing": {"contactType": "Contact", "source": "ECOM"}},
                                   LocalContext())  # fmt: skip
    member = v3["promote_contact"]({"lookup": {"email": "new.member.v3@example.com"},
                                    "attributes": {"memberNumber": "M3002"}, "createIfMissing": {}},
                                   LocalContext())  # fmt: skip
    assert created["created"] is True and member["created"] is True
    assert sandbox.state.get_contact(BERTIL)["contactType"] == "Member"
    assert sandbox.state.get_contact(CECILIA)["contactType"] == "Contact"
    assert sandbox.state.get_contact(member["contactId"])["contactType"] == "Member"
    (create, _) = sandbox.state.request_log("create")
    assert create["query"].get("source") == "ECOM"  # v3: the create's options as query parameters
    assert {"lookup", "update", "get", "contactType", "create"} <= routes(sandbox)
    assert v2_paths(sandbox) == [] and "promote" not in routes(sandbox)


def test_a_v3_create_whose_outcome_is_unknown_is_looked_up_through_v3(v3, sandbox):
    sandbox.state.add_faults([Fault.from_json({"kind": "apply_then_status", "route": "create", "status": 503,
                                               "count": 1})])  # fmt: skip
    result = v3["update_contact"]({"lookup": {"email": "unknown.outcome@example.com"}, "attributes": {"city": "Ystad"},
                                   "createIfMissing": {"contactType": "Prospect"}}, LocalContext())  # fmt: skip
    contacts = [c for c in sandbox.state.list_contacts() if c.get("email") == "unknown.outcome@example.com"]
    assert [c["id"] for c in contacts] == [result["contactId"]]  # one key, one contact
    assert [r["route"] for r in sandbox.state.request_log()][:3] == ["lookup", "create", "lookup"]
    assert v2_paths(sandbox) == []


def test_shopify_deliveries_through_the_queue_reach_engage_through_v3_only(v3, sandbox, queues):
    update = load_webhooks_and_update()  # the intake takes the deliveries, the update function its queue (v3 too)
    known = {**SHOPIFY_CUSTOMER, "state": "disabled"}  # Anna, no account: an update only
    assert deliver(update, "shopify", known, shopify_headers)[0] == 200
    created = deliver(update, "shopify", NEW_SHOPPER, lambda raw: shopify_headers(raw, "customers/create", "v3-new"))
    assert created[0] == 200
    SqsEventSource(queues.sqs, queues.urls["update_contact"], update).drain()
    SqsEventSource(queues.sqs, queues.urls["promote_contact"], v3["promote_contact"]).drain()  # account: promoted
    assert sandbox.state.get_contact(ANNA)["city"] == "Uppsala"
    (vera,) = [c for c in sandbox.state.list_contacts() if c.get("email") == "v3.shopper@example.com"]
    assert sandbox.state.get_contact(vera["id"])["firstName"] == "Vera"
    assert sandbox.state.get_contact(vera["id"])["contactType"] == "Member"  # v3: updateContactType, no promoteToMember
    assert queues.messages("update_contact-dlq") == []
    assert {"lookup", "update", "create", "contactType"} <= routes(sandbox)
    assert v2_paths(sandbox) == [] and sandbox.state.request_log(version="v3")
