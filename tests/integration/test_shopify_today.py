"""Shopify as it is today (API version 2025-01 and later): consent on its own topics, on its own clock, event
ids, account topics. Payloads are shaped as Shopify's reference shows each topic; `events/update_contact/`
keeps them (named by API version), and these tests send those very files where they can.
"""

# ruff: noqa: F811 - `secrets_env` is test_ecommerce's fixture, imported to be used here

from __future__ import annotations

import copy
import json

import pytest
from engage_contact.errors import ConfigurationError

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import LocalContext, send_command

from ..conftest import ROOT, load_function, load_webhooks_and_update
from .test_ecommerce import (  # noqa: F401
    SHOPIFY_CUSTOMER,
    deliver,
    drain,
    secrets_env,
    sent_updates,
    shopify_headers,
    sign,
    update,
)

ANNA = DEMO_CONTACTS[0]["id"]  # acceptsEmail true, acceptsSms false, +46701234567
CUSTOMER_ID = 706405506930370084
API_VERSION = "2025-10"
EVENTS = ROOT / "events" / "update_contact"
EMAIL_TOPIC = "customers/email_marketing_consent_update"
SMS_TOPIC = "customers/marketing_consent_update"

# customers/update as every supported API version sends it: no consent, no tags.
TODAY_CUSTOMER = {k: v for k, v in SHOPIFY_CUSTOMER.items()
                  if k not in ("email_marketing_consent", "sms_marketing_consent", "tags")}  # fmt: skip


def email_consent(state="unsubscribed", at="2026-11-27T10:05:00+01:00", address="anna@example.com",
                  customer_id=CUSTOMER_ID):  # fmt: skip
    return {
        "customer_id": customer_id,
        "email_address": address,
        "email_marketing_consent": {"state": state, "opt_in_level": "single_opt_in", "consent_updated_at": at},
    }


def sms_consent(state="subscribed", at="2026-11-27T10:06:00+01:00", phone="+46701234567", customer_id=CUSTOMER_ID):
    return {"id": customer_id, "phone": phone,
            "sms_marketing_consent": {"state": state, "opt_in_level": "single_opt_in", "consent_updated_at": at,
                                      "consent_collected_from": "SHOPIFY"}}  # fmt: skip


def headers_for(topic, event_id=None, version=API_VERSION, triggered="2026-11-27T09:06:01Z"):
    def build(raw):
        headers = shopify_headers(raw, topic=topic)
        headers.update({"X-Shopify-API-Version": version, "X-Shopify-Triggered-At": triggered})
        if event_id:
            headers["X-Shopify-Event-Id"] = event_id
        return headers

    return build


def send(update, topic, body, **headers):
    return deliver(update, "shopify", body, headers_for(topic, **headers))


def preferences(sandbox, contact=ANNA):
    return sandbox.state.get_contact(contact)["preferences"]


def engage_calls(sandbox, route=None):
    """The calls Engage received (of one route: those that changed a contact, or every lookup)."""
    if route is None:
        return sandbox.state.request_log()
    return [r for r in sandbox.state.request_log(route) if r["applied"] or route == "lookup"]


def metric_names(capsys):
    return {m["Name"] for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
            for d in json.loads(line)["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}  # fmt: skip


# --- 1. the consent topics -------------------------------------------------------------------------------------


def test_an_unsubscribe_in_the_shop_reaches_engage(update, queues, sandbox):
    status, body = send(update, EMAIL_TOPIC, email_consent("unsubscribed"))
    assert status == 200 and body["queued"] is True
    drain(update, queues)
    assert sent_updates(sandbox) == [{"preferences": {"acceptsEmail": False}}]
    assert preferences(sandbox) == {"acceptsEmail": False, "acceptsSms": False, "acceptsPostal": True}


def test_an_sms_subscribe_reaches_engage_by_the_phone(update, queues, sandbox):
    assert send(update, SMS_TOPIC, sms_consent("subscribed", phone="+46 70 123 45 67"))[1]["queued"]
    drain(update, queues)
    assert sent_updates(sandbox) == [{"preferences": {"acceptsSms": True}}]
    lookups = engage_calls(sandbox, "lookup")
    assert len(lookups) == 1 and "mobilePhone" in lookups[0]["query"]


@pytest.mark.parametrize("state", ["not_subscribed", "pending", "invalid", "redacted", None])
@pytest.mark.parametrize("topic", [EMAIL_TOPIC, SMS_TOPIC])
def test_a_state_that_is_no_decision_sends_nothing(update, queues, sandbox, topic, state):
    body = email_consent(state) if topic == EMAIL_TOPIC else sms_consent(state)
    status, answer = send(update, topic, body)
    assert status == 200 and "no decision" in answer["ignored"]
    assert queues.counts("update_contact") == (0, 0) and sandbox.state.request_log() == []


@pytest.mark.parametrize("name", ["shopify-2025-10-email-consent-test.json", "shopify-2025-10-sms-consent-test.json"])
def test_shopifys_test_notifications_with_nulls_send_nothing(update, queues, sandbox, name):
    answer = update(json.loads((EVENTS / name).read_text()), LocalContext())
    assert answer["statusCode"] == 200 and "ignored" in json.loads(answer["body"])
    assert queues.counts("update_contact") == (0, 0) and sandbox.state.request_log() == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("shopify-2025-10-email-consent.json", {"acceptsEmail": False}),
        ("shopify-2025-10-sms-consent.json", {"acceptsSms": True}),
        ("shopify-2025-10-customer.json", None),
        ("shopify-2025-10-customer-enable.json", None),
    ],
)
def test_todays_example_events_are_handled(update, queues, sandbox, name, expected):
    answer = update(json.loads((EVENTS / name).read_text()), LocalContext())
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["queued"] is True
    drain(update, queues)
    (sent,) = sent_updates(sandbox)
    if expected is not None:
        assert sent == {"preferences": expected}
    else:  # a customer payload of today carries no consent: the profile only
        assert "preferences" not in sent and sent["lastName"] == "Lindqvist"


def test_the_shipped_update_and_enable_examples_sent_one_after_the_other_are_each_queued(update, queues, sandbox):
    """Two events of one customer (a profile update, then her first sign-in): neither is taken for the other's
    replay, nor for older than it."""
    names = ("shopify-2025-10-customer.json", "shopify-2025-10-customer-enable.json")
    events = [json.loads((EVENTS / name).read_text()) for name in names]
    assert events[0]["body"] != events[1]["body"]
    answers = [json.loads(update(event, LocalContext())["body"]) for event in events]
    assert [a.get("queued") for a in answers] == [True, True], answers
    drain(update, queues)
    (sent,) = sent_updates(sandbox)  # the profile reached Engage; the same profile again changed nothing there
    assert sent["lastName"] == "Lindqvist" and queues.counts("update_contact-dlq") == (0, 0)


# --- 2. consent has its own clock ------------------------------------------------------------------------------


def test_an_older_consent_never_overwrites_a_newer_one(update, queues, sandbox):
    assert send(update, EMAIL_TOPIC, email_consent("unsubscribed", at="2026-11-27T12:00:00+01:00"))[1]["queued"]
    status, answer = send(update, EMAIL_TOPIC, email_consent("subscribed", at="2026-11-27T11:00:00+01:00"))
    assert status == 200 and "older" in answer["ignored"]
    drain(update, queues)
    assert preferences(sandbox)["acceptsEmail"] is False


def test_an_older_consent_sent_back_from_the_dead_letters_is_stale_where_it_is_applied(update, queues, sandbox):
    older = email_consent("subscribed", at="2026-11-27T11:00:00+01:00")
    assert send(update, EMAIL_TOPIC, older, event_id="evt-old")[1]["queued"]
    (queued,) = queues.messages("update_contact")
    queues.sqs.delete_message(QueueUrl=queues.urls["update_contact"], ReceiptHandle=queued["ReceiptHandle"])
    assert send(update, EMAIL_TOPIC, email_consent("unsubscribed", at="2026-11-27T12:00:00+01:00"))[1]["queued"]
    drain(update, queues)
    sandbox.state.requests.clear()
    # the older one comes back late (a redrive): the channel's clock refuses it before Engage is called
    send_command(queues.sqs, queues.urls["update_contact"], json.loads(queued["Body"]),
                 queued["Attributes"]["MessageGroupId"])  # fmt: skip
    drain(update, queues)
    assert [r for r in sandbox.state.request_log() if r["route"] == "update"] == []
    assert preferences(sandbox)["acceptsEmail"] is False


def test_a_profile_event_stamped_later_never_makes_a_consent_change_stale(update, queues, sandbox):
    later_profile = {**TODAY_CUSTOMER, "last_name": "Later", "updated_at": "2026-11-27T13:00:00+01:00"}
    assert deliver(update, "shopify", later_profile, headers_for("customers/update"))[1]["queued"]
    drain(update, queues)
    assert send(update, EMAIL_TOPIC, email_consent("unsubscribed", at="2026-11-27T12:00:00+01:00"))[1]["queued"]
    drain(update, queues)
    assert preferences(sandbox)["acceptsEmail"] is False


def test_a_consent_change_stamped_later_never_makes_a_profile_event_stale(update, queues, sandbox):
    assert send(update, SMS_TOPIC, sms_consent("subscribed", at="2026-11-27T13:00:00+01:00"))[1]["queued"]
    drain(update, queues)
    profile = {**TODAY_CUSTOMER, "last_name": "Earlier", "updated_at": "2026-11-27T12:00:00+01:00"}
    assert deliver(update, "shopify", profile, headers_for("customers/update"))[1]["queued"]
    drain(update, queues)
    contact = sandbox.state.get_contact(ANNA)
    assert contact["lastName"] == "Earlier" and contact["preferences"]["acceptsSms"] is True


def test_the_email_and_sms_clocks_are_apart(update, queues, sandbox):
    assert send(update, EMAIL_TOPIC, email_consent("unsubscribed", at="2026-11-27T13:00:00+01:00"))[1]["queued"]
    assert send(update, SMS_TOPIC, sms_consent("subscribed", at="2026-11-27T12:00:00+01:00"))[1]["queued"]
    drain(update, queues)
    assert preferences(sandbox) == {"acceptsEmail": False, "acceptsSms": True, "acceptsPostal": True}


def test_without_a_consent_time_the_trigger_time_orders_it(update, queues, sandbox):
    newer = email_consent("unsubscribed", at=None)
    older = {**email_consent("subscribed", at=None), "customer_id": CUSTOMER_ID}
    assert send(update, EMAIL_TOPIC, newer, triggered="2026-11-27T12:00:00Z")[1]["queued"]
    assert "older" in send(update, EMAIL_TOPIC, older, triggered="2026-11-27T11:00:00Z")[1]["ignored"]
    drain(update, queues)
    assert preferences(sandbox)["acceptsEmail"] is False


# --- 3. finding the contact ------------------------------------------------------------------------------------


def test_the_contact_a_shop_customer_reached_is_remembered_and_not_looked_up_again(update, queues, sandbox):
    assert deliver(update, "shopify", TODAY_CUSTOMER, headers_for("customers/update"))[1]["queued"]
    drain(update, queues)
    assert len(engage_calls(sandbox, "lookup")) == 1
    # the SMS topic names a phone Engage does not hold for Anna: the remembered contact is used, not a lookup
    assert send(update, SMS_TOPIC, sms_consent("subscribed", phone="+46709998877"))[1]["queued"]
    assert send(update, EMAIL_TOPIC, email_consent("unsubscribed"))[1]["queued"]
    drain(update, queues)
    assert len(engage_calls(sandbox, "lookup")) == 1
    assert preferences(sandbox) == {"acceptsEmail": False, "acceptsSms": True, "acceptsPostal": True}


def test_a_repeated_consent_state_does_not_call_engage(update, queues, sandbox):
    assert send(update, EMAIL_TOPIC, email_consent("unsubscribed", at="2026-11-27T10:05:00+01:00"))[1]["queued"]
    drain(update, queues)
    calls = len(sandbox.state.request_log())
    assert send(update, EMAIL_TOPIC, email_consent("unsubscribed", at="2026-11-27T10:15:00+01:00"))[1]["queued"]
    drain(update, queues)
    assert len(sandbox.state.request_log()) == calls


def test_an_unsubscribe_of_someone_engage_does_not_know_creates_nothing_and_is_counted(
    secrets_env, queues, sandbox, monkeypatch, capsys, log_output
):
    secrets_env.set("shopify", "createIfMissing", {"contactType": "Contact", "source": "ECOM"})
    update = load_webhooks_and_update()
    before = len(sandbox.state.list_contacts())
    assert send(update, EMAIL_TOPIC, email_consent("unsubscribed", address="nobody@example.com", customer_id=5))[1][
        "queued"
    ]
    capsys.readouterr()
    drain(update, queues)
    assert len(sandbox.state.list_contacts()) == before and engage_calls(sandbox, "create") == []
    assert queues.counts("update_contact") == (0, 0) and queues.messages("update_contact-dlq") == []
    assert "ContactsNotFoundSkipped" in metric_names(capsys)
    assert "contact not found" in log_output.getvalue() and "nobody@" not in log_output.getvalue()


def test_a_subscribe_of_someone_engage_does_not_know_follows_create_if_missing(secrets_env, queues, sandbox,
                                                                              monkeypatch):  # fmt: skip
    secrets_env.set("shopify", "createIfMissing", {"contactType": "Contact", "source": "ECOM"})
    update = load_webhooks_and_update()
    assert send(update, EMAIL_TOPIC, email_consent("subscribed", address="new@example.com", customer_id=6))[1]["queued"]
    drain(update, queues)
    (create,) = engage_calls(sandbox, "create")
    assert json.loads(create["body"]) == {"email": "new@example.com", "contactType": "Contact",
                                          "preferences": {"acceptsEmail": True}}  # fmt: skip


def test_without_create_if_missing_an_unknown_subscriber_is_counted_not_dead_lettered(update, queues, sandbox):
    assert send(update, SMS_TOPIC, sms_consent("subscribed", phone="+46700000001", customer_id=7))[1]["queued"]
    drain(update, queues)
    assert queues.counts("update_contact") == (0, 0) and queues.messages("update_contact-dlq") == []
    assert engage_calls(sandbox, "create") == [] and engage_calls(sandbox, "update") == []


# --- 4. event ids and API versions -----------------------------------------------------------------------------


def test_shopifys_retries_of_one_event_are_applied_once(update, queues, sandbox):
    body = email_consent("unsubscribed")
    keys = {send(update, EMAIL_TOPIC, body, event_id="9f1c3a52-0d4e-4b6f-8a27-5c3e1b9d7f20")[1].get("idempotencyKey")
            for _ in range(3)}  # fmt: skip
    keys.discard(None)
    assert len(keys) == 1 and next(iter(keys)).endswith("9f1c3a52-0d4e-4b6f-8a27-5c3e1b9d7f20")
    drain(update, queues)
    assert len(sent_updates(sandbox)) == 1


def test_a_captured_body_under_a_made_up_event_id_is_a_replay(update, queues, sandbox):
    body = email_consent("unsubscribed")
    assert send(update, EMAIL_TOPIC, body, event_id="evt-1")[1]["queued"]
    status, answer = send(update, EMAIL_TOPIC, body, event_id="evt-made-up")
    assert status == 200 and "replay" in answer["ignored"]


def test_the_api_version_is_logged_and_counted(update, queues, capsys, log_output):
    capsys.readouterr()
    send(update, EMAIL_TOPIC, email_consent("unsubscribed"), version="2025-10")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(line.get("ApiVersion") == "2025-10" and "WebhookApiVersions" in line for line in lines)
    assert '"apiVersion": "2025-10"' in log_output.getvalue() or '"apiVersion":"2025-10"' in log_output.getvalue()


def test_the_old_shape_with_consent_inside_the_customer_still_works(update, queues, sandbox):
    """API versions before 2025-01 sent consent inside the customer: such a shop keeps working."""
    old = copy.deepcopy(SHOPIFY_CUSTOMER)
    old["email_marketing_consent"]["state"] = "unsubscribed"
    assert deliver(update, "shopify", old, headers_for("customers/update", version="2024-10"))[1]["queued"]
    drain(update, queues)
    assert preferences(sandbox)["acceptsEmail"] is False


# --- 5. account topics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["customers/enable", "customers/disable"])
def test_account_topics_update_the_profile(update, queues, sandbox, topic):
    customer = {**TODAY_CUSTOMER, "state": "enabled" if topic.endswith("enable") else "disabled"}
    assert deliver(update, "shopify", customer, headers_for(topic))[1]["queued"]
    drain(update, queues)
    (sent,) = sent_updates(sandbox)
    assert sent["lastName"] == "Lindqvist" and "preferences" not in sent


def test_an_enabled_account_is_promoted_once_though_enable_and_update_both_arrive(secrets_env, queues, monkeypatch):
    monkeypatch.setenv("PROMOTE_QUEUE_URL", queues.urls["promote_contact"])
    secrets_env.set("shopify", "promoteOnAccount", True)
    update = load_webhooks_and_update()
    enabled = {**TODAY_CUSTOMER, "email": "bertil@example.com", "state": "enabled"}
    sent = [
        (enabled, "customers/enable", "evt-enable"),
        (enabled, "customers/enable", "evt-enable"),  # a retry
        ({**enabled, "note": "signed in"}, "customers/update", "evt-update"),
    ]  # the same moment, another topic
    for body, topic, event_id in sent:
        assert deliver(update, "shopify", body, headers_for(topic, event_id=event_id))[0] == 200
    assert len(queues.messages("promote_contact")) == 1
    later = {**enabled, "updated_at": "2026-11-28T10:00:00+01:00"}  # a later event of an account: its own
    assert deliver(update, "shopify", later, headers_for("customers/update", event_id="evt-later"))[0] == 200
    assert len(queues.messages("promote_contact")) == 2


# --- 6. many shops, one deployment -----------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["SHOPIFY_WEBHOOK_SECRET_ARN", "WOOCOMMERCE_WEBHOOK_SECRET_ARN",
                                      "SHOPIFY_SHOP_DOMAINS", "SHOPIFY_CREATE_IF_MISSING"])  # fmt: skip
def test_a_deployment_configured_as_before_fails_at_start_saying_what_to_add(function_env, monkeypatch, variable):
    function_env("update_contact")
    monkeypatch.setenv(variable, "arn:aws:secretsmanager:eu-north-1:123456789012:secret:shopify")
    with pytest.raises(ConfigurationError) as caught:
        load_function("intake_webhooks")
    message = str(caught.value)
    assert variable in message and "SHOPS_SECRET_ARN" in message and '"secret"' in message
    assert ("myshopify.com" if variable.startswith("SHOPIFY") else "https://") in message


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ("{not json", "not JSON"),
        ('{"shopify": {"a.myshopify.com": {}}}', "shopify shop 'a.myshopify.com': 'secret'"),
        ('{"shopify": {"a.myshopify.com": {"secret": "s", "createIfMisssing": {}}}}', "'createIfMisssing' is not"),
        ('{"shopify": {"a.myshopify.com": {"secret": "s", "erasure": "forget"}}}', "a.myshopify.com': 'erasure'"),
        ('{"shopify": {"a.myshopify.com": {"secret": "s", "sendOnlyChanged": "no"}}}', "'sendOnlyChanged'"),
        ('{"magento": {}}', "no platform 'magento'"),
    ],
)
def test_a_bad_shops_document_fails_at_start_naming_the_shop_and_the_field(secrets_env, document, named):
    secrets_env.write(document)
    with pytest.raises(ConfigurationError) as caught:
        load_function("intake_webhooks")
    assert named in str(caught.value)


def test_each_shop_has_its_own_secret_and_settings(secrets_env, queues, sandbox):
    secrets_env.set("shopify", "secret", "second-shops-secret", shop="second.myshopify.com")
    secrets_env.set("shopify", "createIfMissing", {"contactType": "Contact", "storeExternalId": "SE"},
                    shop="second.myshopify.com")  # fmt: skip
    secrets_env.set("shopify", "erasure", "erase", shop="second.myshopify.com")
    update = load_webhooks_and_update()
    body = email_consent("subscribed", address="second@example.com", customer_id=8)
    headers = lambda raw: {**headers_for(EMAIL_TOPIC)(raw), "X-Shopify-Shop-Domain": "second.myshopify.com"}  # noqa: E731
    assert deliver(update, "shopify", body, headers)[0] == 401  # signed with the first shop's secret
    signed = lambda raw: {**headers(raw), "X-Shopify-Hmac-Sha256": sign("second-shops-secret", raw)}  # noqa: E731
    assert deliver(update, "shopify", body, signed)[1]["queued"]
    drain(update, queues)
    (create,) = engage_calls(sandbox, "create")
    assert create["headers"].get("storeExternalId") == "SE"
    shops = update.intake.container.shops().get()
    assert shops.find("shopify", "Second.myshopify.com").erasure == "erase"
    assert shops.find("shopify", "example.myshopify.com").erasure == "record"  # the default


# --- 7. Shopify through Amazon EventBridge -----------------------------------------------------------------------


def eventbridge_event(topic, payload, shop="example.myshopify.com", event_id="7b1e4c2a-5d3f-4e6a-9b8c-0d1e2f3a4b5c"):
    """An event as a Shopify partner event source puts it on its bus: the body in detail.payload, the headers
    HTTPS would carry in detail.metadata."""
    metadata = {"Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop,
                "X-Shopify-API-Version": API_VERSION, "X-Shopify-Event-Id": event_id,
                "X-Shopify-Triggered-At": "2026-11-27T09:05:01Z",
                "X-Shopify-Webhook-Id": "d2f5e8b1-3a4c-4d5e-8f60-7a8b9c0d1e2f"}  # fmt: skip
    return {"version": "0", "id": "1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6", "detail-type": "shopifyWebhook",
            "source": "aws.partner/shopify.com/1234567/engage-contacts", "account": "123456789012",
            "time": "2026-11-27T09:05:02Z", "region": "eu-north-1", "resources": [],
            "detail": {"payload": payload, "metadata": metadata}}  # fmt: skip


def test_an_eventbridge_unsubscribe_reaches_engage_the_same_way(update, queues, sandbox):
    answer = update(eventbridge_event(EMAIL_TOPIC, email_consent("unsubscribed")), LocalContext())
    assert answer["queued"] is True
    (message,) = queues.messages("update_contact")
    assert not message["Attributes"]["MessageGroupId"].startswith("customer")  # grouped per contact, as HTTPS
    drain(update, queues)
    assert sent_updates(sandbox) == [{"preferences": {"acceptsEmail": False}}]


def test_an_eventbridge_event_retried_is_applied_once_and_an_older_one_is_ignored(update, queues, sandbox):
    event = eventbridge_event(EMAIL_TOPIC, email_consent("unsubscribed", at="2026-11-27T12:00:00+01:00"))
    assert update(event, LocalContext())["queued"] is True
    assert "replay" in update(event, LocalContext())["ignored"]  # EventBridge's own retry of it
    older = eventbridge_event(EMAIL_TOPIC, email_consent("subscribed", at="2026-11-27T11:00:00+01:00"), event_id="o")
    assert "older" in update(older, LocalContext())["ignored"]
    drain(update, queues)
    assert len(sent_updates(sandbox)) == 1 and preferences(sandbox)["acceptsEmail"] is False


def test_an_eventbridge_event_of_a_shop_not_listed_is_refused_and_counted(update, queues, capsys):
    capsys.readouterr()
    answer = update(eventbridge_event(EMAIL_TOPIC, email_consent(), shop="evil.myshopify.com"), LocalContext())
    assert "shops document" in answer["refused"]
    out = capsys.readouterr().out
    assert '"WebhooksFromUnknownShops"' in out and '"EventBridgeEventsRefused"' in out
    assert queues.counts("update_contact") == (0, 0)


def test_an_eventbridge_customer_update_and_a_topic_not_handled(update, queues, sandbox):
    assert update(eventbridge_event("customers/update", TODAY_CUSTOMER), LocalContext())["queued"] is True
    assert (
        "not handled" in update(eventbridge_event("customers/purchasing_summary", {"id": 1}), LocalContext())["ignored"]
    )
    drain(update, queues)
    (sent,) = sent_updates(sandbox)
    assert sent["lastName"] == "Lindqvist"


def test_the_shipped_eventbridge_example_is_handled(update, queues, sandbox):
    event = json.loads((ROOT / "events" / "update_contact" / "shopify-2025-10-eventbridge.json").read_text())
    assert update(event, LocalContext())["queued"] is True
    drain(update, queues)
    assert sent_updates(sandbox) == [{"preferences": {"acceptsEmail": False}}]


def test_the_template_offers_the_partner_event_source_with_a_rule_into_the_webhook_intake():
    import yaml

    from ..stack.test_template import CfnLoader

    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    assert "ShopifyPartnerEventSourceName" in template["Parameters"] and "ShopsSecretArn" in template["Parameters"]
    resources = template["Resources"]
    bus, rule = resources["ShopifyEventBus"], resources["ShopifyCustomerTopicsRule"]
    assert bus["Condition"] == rule["Condition"] == "HasShopifyEventSource"
    assert bus["Properties"]["EventSourceName"] == "ShopifyPartnerEventSourceName"
    assert rule["Properties"]["EventPattern"]["detail"]["metadata"]["X-Shopify-Topic"] == [{"prefix": "customers/"}]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == ["IntakeWebhooksFunction", "Arn"] or target["Arn"] == "IntakeWebhooksFunction.Arn"
    permission = resources["ShopifyEventsInvokeIntake"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com" and permission["FunctionName"] == "IntakeWebhooksFunction"
    intake_env = resources["IntakeWebhooksFunction"]["Properties"]["Environment"]["Variables"]
    assert intake_env["SHOPS_SECRET_ARN"] == "ShopsSecretArn"
    for name in ("IntakeWebhooksFunction", "UpdateContactFunction"):
        env = resources[name]["Properties"]["Environment"]["Variables"]
        assert not any(variable.startswith(("SHOPIFY_", "WOOCOMMERCE_")) for variable in env)
