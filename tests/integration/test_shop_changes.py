"""Shop webhooks send Engage only what changed, and promote a customer who opened an account (off by default).

The promotion goes through the promote function's own queue; whichever of the two runs first, and under
Engage's faults, the end is one contact, a Member, with the customer's attributes.
"""

# ruff: noqa: F811 - `secrets_env` is test_ecommerce's fixture, imported to be used here

from __future__ import annotations

import copy
import json

import pytest
from engage_contact.errors import ConfigurationError

from local.engage_sandbox.state import Fault
from local.lambda_runtime import SqsEventSource

from ..conftest import load_function, load_webhooks_and_update
from .test_ecommerce import (  # noqa: F401
    SHOPIFY_CUSTOMER,
    WOO_CUSTOMER,
    deliver,
    secrets_env,
    shopify_headers,
    woo_headers,
)

BERTIL = "bertil@example.com"  # a demo Contact, not a Member
NORA = "nora@example.com"  # Engage does not know her


def customer(email=BERTIL, **changes):
    return {**copy.deepcopy(SHOPIFY_CUSTOMER), "email": email, **changes}


def applied_updates(sandbox):
    return [json.loads(r["body"]) for r in sandbox.state.request_log("update") if r["applied"]]


def with_email(sandbox, email):
    return [c for c in sandbox.state.list_contacts() if (c.get("email") or "").lower() == email]


@pytest.fixture
def shop(secrets_env, function_env, queues, monkeypatch):
    """The update function (webhooks) and the promote function, their queues, as the template wires them."""

    def build(promote="true", create=None, **settings):
        function_env("promote_contact")
        promoter = load_function("promote_contact").lambda_handler
        function_env("update_contact")
        monkeypatch.setenv("PROMOTE_QUEUE_URL", queues.urls["promote_contact"])
        if promote:
            secrets_env.setting("SHOPIFY_PROMOTE_ON_ACCOUNT", promote)
            secrets_env.setting("WOOCOMMERCE_PROMOTE_ON_ACCOUNT", promote)
        if create:
            secrets_env.set("shopify", "createIfMissing", create)
        for name, value in settings.items():
            secrets_env.setting(name, value)
        updater = load_webhooks_and_update()
        return Shop(queues, updater, promoter)

    return build


class Shop:
    def __init__(self, queues, updater, promoter):
        self.queues = queues
        self.update = updater
        self.sources = {"update": SqsEventSource(queues.sqs, queues.urls["update_contact"], updater),
                        "promote": SqsEventSource(queues.sqs, queues.urls["promote_contact"], promoter)}  # fmt: skip

    def deliver(self, body, platform="shopify"):
        status, answer = deliver(self.update, platform, body, shopify_headers if platform == "shopify" else woo_headers)
        assert status == 200, answer
        return answer

    def drain(self, name):
        self.sources[name].drain()

    def retry(self, name):
        """What was handed back runs again, as if its backoff had passed."""
        self.sources[name].skip_backoff()
        self.sources[name].drain()


# --- only what changed ---------------------------------------------------------------------------------------


def test_shop_deliveries_that_change_nothing_for_engage_call_it_once(shop, sandbox):
    s = shop(promote="false")
    s.deliver(customer(BERTIL))
    for n, stamp in enumerate(["2026-11-27T11:00:00+01:00", "2026-11-27T12:00:00+01:00"], start=4):
        s.deliver(customer(BERTIL, orders_count=n, updated_at=stamp, note=f"order {n}"))
    s.deliver(customer(BERTIL, updated_at="2026-11-27T13:00:00+01:00", last_name="Berglund"))
    s.drain("update")
    first, second = applied_updates(sandbox)
    assert first["lastName"] == "Lindqvist" and second == {"lastName": "Berglund"}
    assert with_email(sandbox, BERTIL)[0]["lastName"] == "Berglund"


def test_a_deployment_may_turn_it_off_per_platform(shop, queues, sandbox):
    s = shop(promote="false", SHOPIFY_SEND_ONLY_CHANGED="false")
    s.deliver(customer(BERTIL))
    (message,) = queues.messages("update_contact")
    assert "sendOnlyChanged" not in json.loads(message["Body"])
    s.deliver(customer(BERTIL, updated_at="2026-11-27T11:00:00+01:00", orders_count=9))
    s.drain("update")
    assert len(applied_updates(sandbox)) == 2
    s.deliver({**copy.deepcopy(WOO_CUSTOMER)}, "woocommerce")
    woo = [json.loads(m["Body"]) for m in queues.messages("update_contact")]
    assert woo[0]["sendOnlyChanged"] is True  # WooCommerce keeps its default


@pytest.mark.parametrize("value", ["yes", "1", "TRUE!"])
def test_a_wrong_send_only_changed_setting_stops_the_function_at_start(secrets_env, monkeypatch, value):
    secrets_env.setting("WOOCOMMERCE_SEND_ONLY_CHANGED", value)
    with pytest.raises(ConfigurationError, match=r"woocommerce shop '.*': 'sendOnlyChanged'"):
        load_function("intake_webhooks")


# --- promote on account: what is queued -----------------------------------------------------------------------


def test_a_customer_with_an_account_is_queued_for_promotion_in_the_same_group(shop, queues):
    s = shop()
    answer = s.deliver(customer(BERTIL))
    (update,) = queues.messages("update_contact")
    (promote,) = queues.messages("promote_contact")
    assert promote["Attributes"]["MessageGroupId"] == update["Attributes"]["MessageGroupId"]
    assert promote["Attributes"]["MessageDeduplicationId"] != update["Attributes"]["MessageDeduplicationId"]
    command, updating = json.loads(promote["Body"]), json.loads(update["Body"])
    assert command["lookup"] == {"email": BERTIL} and command["attributes"] == updating["attributes"]
    assert command["idempotencyKey"] == answer["idempotencyKey"] and command["eventTime"] == updating["eventTime"]
    assert "sendOnlyChanged" not in command and "createIfMissing" not in command


@pytest.mark.parametrize("state", ["disabled", "invited", "declined", None])
def test_a_shopify_customer_without_an_account_is_not_promoted(shop, queues, state):
    shop().deliver(customer(BERTIL, state=state))
    assert len(queues.messages("update_contact")) == 1 and queues.messages("promote_contact") == []


def test_promotion_is_off_by_default(shop, queues):
    shop(promote="").deliver(customer(BERTIL))
    assert queues.messages("promote_contact") == []


@pytest.mark.parametrize(
    ("changes", "promoted"),
    [({}, True), ({"id": 0}, False), ({"username": ""}, False), ({"username": None}, False), ({"id": "25"}, False)],
)
def test_a_woocommerce_customer_is_promoted_when_registered(shop, queues, changes, promoted):
    shop().deliver({**copy.deepcopy(WOO_CUSTOMER), **changes}, "woocommerce")
    assert len(queues.messages("promote_contact")) == (1 if promoted else 0)


def test_the_deployments_member_attributes_are_added_under_the_customers_own(shop, queues):
    shop(promote='{"attributes": {"createdInStore": "WEB", "city": "Nowhere"}}').deliver(customer(BERTIL))
    (promote,) = queues.messages("promote_contact")
    attributes = json.loads(promote["Body"])["attributes"]
    assert attributes["createdInStore"] == "WEB" and attributes["city"] == "Uppsala"


@pytest.mark.parametrize("value", ["maybe", "[1]", '{"attributes": {"firstNam": "x"}}', '{"other": 1}'])
def test_a_wrong_promote_setting_stops_the_function_at_start(secrets_env, monkeypatch, queues, value):
    monkeypatch.setenv("PROMOTE_QUEUE_URL", queues.urls["promote_contact"])
    secrets_env.setting("SHOPIFY_PROMOTE_ON_ACCOUNT", value)
    with pytest.raises(ConfigurationError, match=r"shopify shop '.*': 'promoteOnAccount'"):
        load_function("intake_webhooks")


def test_promotion_without_the_promote_queue_stops_the_function_at_start(secrets_env, monkeypatch):
    monkeypatch.delenv("PROMOTE_QUEUE_URL", raising=False)
    secrets_env.setting("WOOCOMMERCE_PROMOTE_ON_ACCOUNT", "true")
    with pytest.raises(ConfigurationError, match="PROMOTE_QUEUE_URL"):
        load_function("intake_webhooks")


# --- promote on account: it converges ----------------------------------------------------------------------


def assert_one_member(sandbox, email, last_name="Lindqvist"):
    (contact,) = with_email(sandbox, email)
    stored = sandbox.state.get_contact(contact["id"])
    # promoted once, or created a Member by the promotion's own create: never promoted twice
    assert stored["contactType"] == "Member" and stored["_promotions"] <= 1
    assert (stored["firstName"], stored["lastName"], stored["city"], stored["street"]) == (
        "Anna", last_name, "Uppsala", "Drottninggatan 5")  # fmt: skip
    assert stored["preferences"]["acceptsEmail"] is True


@pytest.mark.parametrize("order", [("update", "promote"), ("promote", "update")])
def test_update_and_promotion_in_either_order_end_in_one_member(shop, sandbox, order):
    s = shop()
    s.deliver(customer(BERTIL))
    for name in order:
        s.drain(name)
    assert_one_member(sandbox, BERTIL)


CREATE = {"contactType": "Contact", "source": "ECOM"}


@pytest.mark.parametrize("order", [("update", "promote"), ("promote", "update")])
def test_a_missing_customer_is_created_once_and_ends_a_member_in_either_order(shop, sandbox, order):
    s = shop(create=CREATE)
    s.deliver(customer(NORA))
    for name in order:
        s.drain(name)
    assert_one_member(sandbox, NORA)
    (create,) = [r for r in sandbox.state.request_log("create") if r["applied"]]
    assert json.loads(create["body"])["contactType"] == ("Contact" if order[0] == "update" else "Member")


def test_without_create_if_missing_a_promotion_of_a_missing_customer_is_dead_lettered(shop, queues, sandbox):
    s = shop()
    s.deliver(customer(NORA))
    s.drain("promote")
    (dead,) = queues.messages("promote_contact-dlq")
    assert dead["MessageAttributes"]["errorType"]["StringValue"] == "ContactNotFound"
    assert with_email(sandbox, NORA) == []


@pytest.mark.parametrize("failing", ["promote", "update"])
def test_an_engage_outage_in_between_still_ends_in_one_member(shop, sandbox, failing):
    s = shop(create=CREATE)
    s.deliver(customer(NORA))
    other = "update" if failing == "promote" else "promote"
    route = "promote" if failing == "promote" else "*"
    sandbox.state.add_faults([Fault.from_json({"kind": "status", "status": 503, "route": route})])
    s.drain(failing)  # fails: handed back for its backoff
    sandbox.state.clear_faults()
    s.drain(other)
    s.retry(failing)
    assert_one_member(sandbox, NORA)


def test_a_later_delivery_is_promoted_with_its_own_newer_attributes(shop, sandbox):
    s = shop()
    s.deliver(customer(BERTIL))
    s.deliver(customer(BERTIL, updated_at="2026-11-27T12:00:00+01:00", last_name="Berglund"))
    s.drain("update")
    s.drain("promote")  # the older promotion is stale: skipped; the newer one promotes
    assert_one_member(sandbox, BERTIL, last_name="Berglund")


# --- a delivery answered an error is not a replay when the platform retries it ------------------------------


@pytest.mark.parametrize("unreachable", ["promote_contact", "update_contact"])
def test_a_delivery_answered_503_because_a_queue_was_unreachable_is_applied_when_retried(
    shop, queues, sandbox, unreachable
):
    """docs/contract.md §9: a delivery's claim is given back when it was not wholly queued."""
    s = shop()
    attributes = queues.sqs.get_queue_attributes(QueueUrl=queues.urls[unreachable], AttributeNames=["All"])
    kept = {k: v for k, v in attributes["Attributes"].items() if k in ("FifoQueue", "VisibilityTimeout",
                                                                       "RedrivePolicy")}  # fmt: skip
    queues.sqs.delete_queue(QueueUrl=queues.urls[unreachable])
    body = customer(BERTIL)
    status, answer = deliver(s.update, "shopify", body, shopify_headers)
    assert status == 503 and answer["error"] == "DependencyUnavailable"
    queues.sqs.create_queue(QueueName=f"{unreachable}.fifo", Attributes=kept)
    retried = s.deliver(body)  # Shopify's retry: the same signed body
    assert retried.get("queued") is True and "ignored" not in retried
    s.drain("update")
    s.drain("promote")
    assert_one_member(sandbox, BERTIL)
