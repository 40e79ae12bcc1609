"""Shopify and WooCommerce as webhook sources: real-shaped payloads, their own signatures, ending in the sandbox.

The Shopify customer here is shaped as API versions before 2025-01 sent it (consent inside the customer): these
tests are kept for shops still on such a version. Today's shapes are tested in test_shopify_today.py.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import json

import boto3
import pytest
from engage_contact.ecommerce.config import RETIRED_SETTINGS
from engage_contact.errors import ConfigurationError

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.lambda_runtime import LocalContext, SqsEventSource, api_event, send_command

from ..conftest import REGION, ROOT, load_function, load_webhooks_and_update

ANNA = DEMO_CONTACTS[0]["id"]
SHOPIFY_SECRET = "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"
WOO_SECRET = "wc-secret-Xq9!rT2#vL"

# A customer as Shopify sent it before API version 2025-01 (with email/sms_marketing_consent): old versions only.
SHOPIFY_CUSTOMER = {
    "id": 706405506930370084, "email": "anna@example.com", "created_at": "2026-11-20T10:00:00+01:00",
    "updated_at": "2026-11-27T10:00:00+01:00", "first_name": "Anna", "last_name": "Lindqvist",
    "orders_count": 3, "state": "enabled", "total_spent": "120.00", "last_order_id": None, "note": "likes shoes",
    "verified_email": True, "multipass_identifier": None, "tax_exempt": False, "phone": "+46 70 999 88 77",
    "currency": "SEK", "addresses": [], "tax_exemptions": [],
    "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                "consent_updated_at": "2026-11-27T09:00:00+01:00"},
    "sms_marketing_consent": {"state": "not_subscribed", "opt_in_level": "single_opt_in",
                              "consent_updated_at": None, "consent_collected_from": "OTHER"},
    "admin_graphql_api_id": "gid://shopify/Customer/706405506930370084",
    "default_address": {"id": 1, "customer_id": 706405506930370084, "first_name": "Anna", "last_name": "Lindqvist",
                        "company": None, "address1": "Drottninggatan 5", "address2": None, "city": "Uppsala",
                        "province": None, "country": "Sweden", "zip": "75310", "phone": None, "name": "Anna Lindqvist",
                        "province_code": None, "country_code": "SE", "country_name": "Sweden", "default": True},
}  # fmt: skip
WOO_CUSTOMER = {
    "id": 25, "date_created": "2026-11-20T10:00:00", "date_created_gmt": "2026-11-20T09:00:00",
    "date_modified": "2026-11-27T11:00:00", "date_modified_gmt": "2026-11-27T10:00:00",
    "email": "bertil@example.com", "first_name": "Bertil", "last_name": "Bergström", "role": "customer",
    "username": "bertil", "is_paying_customer": False, "avatar_url": "https://secure.gravatar.com/avatar/x",
    "billing": {"first_name": "Bertil", "last_name": "Bergström", "company": "", "address_1": "Kungsgatan 12",
                "address_2": "", "city": "Malmö", "state": "", "postcode": "21149", "country": "SE",
                "email": "bertil@example.com", "phone": "0046701112233"},
    "shipping": {"first_name": "", "last_name": "", "company": "", "address_1": "", "address_2": "", "city": "",
                 "state": "", "postcode": "", "country": ""},
    "meta_data": [{"id": 1, "key": "favorite_store", "value": "Malmö Triangeln"}],
}  # fmt: skip


def sign(secret, raw):
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def shopify_headers(raw, topic="customers/update", webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", secret=None):
    return {"Content-Type": "application/json", "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(secret or SHOPIFY_SECRET, raw),
            "X-Shopify-Shop-Domain": "example.myshopify.com", "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Triggered-At": "2026-11-27T09:00:01Z", "X-Shopify-API-Version": "2024-10"}  # fmt: skip


def woo_headers(raw, topic="customer.updated", delivery="c4b5e1f2a9d8e7c6b5a4f3e2d1c0b9a8", secret=None):
    return {"Content-Type": "application/json", "X-WC-Webhook-Source": "https://shop.example.com/",
            "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": "customer", "X-WC-Webhook-Event": topic[9:],
            "X-WC-Webhook-Signature": sign(secret or WOO_SECRET, raw), "X-WC-Webhook-ID": "7",
            "X-WC-Webhook-Delivery-ID": delivery}  # fmt: skip


SHOPIFY_SHOP = "example.myshopify.com"
WOO_SHOP = "https://shop.example.com/"


class ShopsDocument:
    """The deployment's shops document (one Secrets Manager secret, SHOPS_SECRET_ARN), as a test changes it: a
    function loaded after a change reads it at start."""

    def __init__(self, client, monkeypatch):
        self.client = client
        self.shops = {"shopify": {SHOPIFY_SHOP: {"secret": SHOPIFY_SECRET}},
                      "woocommerce": {WOO_SHOP: {"secret": WOO_SECRET}}}  # fmt: skip
        self.arn = client.create_secret(Name="shops", SecretString=json.dumps(self.shops))["ARN"]
        monkeypatch.setenv("SHOPS_SECRET_ARN", self.arn)

    def set(self, platform, field, value, shop=None):
        """One shop's setting (the first shop of the platform unless named); the document is written again."""
        shop = shop or next(iter(self.shops[platform]))
        self.shops[platform].setdefault(shop, {})[field] = value
        self.write()

    def setting(self, name, raw):
        """What a retired variable said, as the document says it: `SHOPIFY_CREATE_IF_MISSING` -> createIfMissing."""
        platform, field = RETIRED_SETTINGS[name]
        try:
            value = json.loads(raw.lower() if raw.lower() in ("true", "false") else raw)
        except ValueError:
            value = raw
        self.set(platform, field, value)

    def write(self, document=None):
        self.client.put_secret_value(SecretId=self.arn, SecretString=document or json.dumps(self.shops))


@pytest.fixture
def secrets_env(function_env, queues, monkeypatch):
    """The update function's environment with the shops document listing one shop of each platform."""
    function_env("update_contact")
    document = ShopsDocument(boto3.client("secretsmanager", region_name=REGION), monkeypatch)
    monkeypatch.setenv("UPDATE_QUEUE_URL", queues.urls["update_contact"])
    return document


@pytest.fixture
def update(secrets_env):
    return load_webhooks_and_update()


def deliver(handler, platform, body, headers):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = handler(api_event("POST", f"/webhooks/{platform}", raw.decode(), headers(raw) if callable(headers)
                                 else headers), LocalContext())  # fmt: skip
    return response["statusCode"], json.loads(response["body"])


def drain(update, queues):
    SqsEventSource(queues.sqs, queues.urls["update_contact"], update).drain()


def sent_updates(sandbox):
    return [json.loads(r["body"]) for r in sandbox.state.request_log("update") if r["applied"]]


def test_a_shopify_customer_update_ends_in_engage(update, queues, sandbox):
    status, body = deliver(update, "shopify", SHOPIFY_CUSTOMER, shopify_headers)
    assert status == 200 and body["queued"] is True
    assert sandbox.state.request_log() == []  # answered before any Engage work
    drain(update, queues)
    anna = sandbox.state.get_contact(ANNA)
    assert (anna["lastName"], anna["street"], anna["city"], anna["zipCode"], anna["countryCode"]) == (
        "Lindqvist",
        "Drottninggatan 5",
        "Uppsala",
        "75310",
        "SE",
    )
    assert anna["mobilePhone"] == "+46709998877"
    assert anna["preferences"] == {"acceptsEmail": True, "acceptsSms": False, "acceptsPostal": True}
    assert anna["careOf"] == "Berg"  # nothing the platform did not send is touched


def test_nulls_missing_address_and_local_phone_never_overwrite(update, queues, sandbox):
    customer = {
        **copy.deepcopy(SHOPIFY_CUSTOMER),
        "phone": "070-999 88 77",
        "default_address": None,
        "last_name": None,
        "sms_marketing_consent": None,
        "email_marketing_consent": {"state": "unsubscribed"},
    }
    assert deliver(update, "shopify", customer, shopify_headers)[0] == 200
    drain(update, queues)
    (sent,) = sent_updates(sandbox)
    assert sent == {"firstName": "Anna", "preferences": {"acceptsEmail": False}}
    anna = sandbox.state.get_contact(ANNA)
    assert anna["street"] == "Storgatan 1" and anna["lastName"] == "Andersson" and anna["mobilePhone"] == "+46701234567"


def test_a_forged_or_missing_signature_is_401_and_nothing_is_queued(update, queues, sandbox):
    assert deliver(update, "shopify", SHOPIFY_CUSTOMER, lambda raw: shopify_headers(raw, secret="wrong"))[0] == 401
    headers = shopify_headers(b"")
    headers.pop("X-Shopify-Hmac-Sha256")
    assert deliver(update, "shopify", SHOPIFY_CUSTOMER, headers)[0] == 401
    assert deliver(update, "woocommerce", WOO_CUSTOMER, lambda raw: woo_headers(raw, secret="wrong"))[0] == 401
    assert queues.counts("update_contact") == (0, 0)


def test_a_rotating_secret_accepts_current_and_previous(update, secrets_env, queues, sandbox):
    secrets_env.set("shopify", "secret", {"current": "new-secret", "previous": SHOPIFY_SECRET})
    handler = load_webhooks_and_update()
    assert deliver(handler, "shopify", SHOPIFY_CUSTOMER, shopify_headers)[0] == 200
    assert deliver(handler, "shopify", SHOPIFY_CUSTOMER,
                   lambda raw: shopify_headers(raw, secret="new-secret", webhook_id="other"))[0] == 200  # fmt: skip


def test_a_repeated_delivery_is_applied_once(update, queues, sandbox):
    for _ in range(3):
        assert deliver(update, "shopify", SHOPIFY_CUSTOMER, shopify_headers)[0] == 200
    drain(update, queues)
    assert len(sent_updates(sandbox)) == 1


def test_an_older_event_does_not_overwrite_newer_data(update, queues, sandbox):
    newer = {**SHOPIFY_CUSTOMER, "last_name": "Newer", "updated_at": "2026-11-27T12:00:00+01:00"}
    older = {**SHOPIFY_CUSTOMER, "last_name": "Older", "updated_at": "2026-11-27T11:00:00+01:00"}
    assert deliver(update, "shopify", newer, lambda raw: shopify_headers(raw, webhook_id="n"))[1]["queued"]
    status, body = deliver(update, "shopify", older, lambda raw: shopify_headers(raw, webhook_id="o"))
    assert status == 200 and "older" in body["ignored"]
    drain(update, queues)
    assert sandbox.state.get_contact(ANNA)["lastName"] == "Newer"


def test_a_delivery_stamped_a_year_ahead_is_applied_at_now_and_later_ones_still_pass(update, queues, sandbox,
                                                                                    log_output):  # fmt: skip
    """A shop's clock far ahead: the delivery is kept (never failed for it), its time clamped and said so."""
    ahead = dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=365)
    future = {**SHOPIFY_CUSTOMER, "last_name": "Future", "updated_at": ahead.isoformat()}
    assert deliver(update, "shopify", future, shopify_headers)[1]["queued"]
    (message,) = [json.loads(m["Body"]) for m in queues.messages("update_contact")]
    assert dt.datetime.fromisoformat(message["eventTime"]) < ahead - dt.timedelta(days=364)
    assert "event time ahead of the clock" in log_output.getvalue()
    drain(update, queues)
    later = {**SHOPIFY_CUSTOMER, "last_name": "Later",
             "updated_at": (dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=1)).isoformat()}  # fmt: skip
    assert deliver(update, "shopify", later, shopify_headers)[1]["queued"]
    drain(update, queues)
    assert sandbox.state.get_contact(ANNA)["lastName"] == "Later"


def test_one_signed_body_with_made_up_delivery_ids_and_topics_is_applied_once(update, queues, sandbox):
    """The delivery id and the topic are not signed: a captured body sent again under new ones is the same delivery."""
    answers = [
        deliver(update, "shopify", SHOPIFY_CUSTOMER, lambda raw, n=n, t=t: shopify_headers(raw, topic=t, webhook_id=n))
        for n, t in (("id-1", "customers/update"), ("id-2", "customers/update"), ("id-3", "customers/create"))
    ]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert len({body.get("idempotencyKey") for _, body in answers if "idempotencyKey" in body}) == 1
    drain(update, queues)
    assert len(sent_updates(sandbox)) == 1


def _expire_idempotency_records(table="idempotency"):
    """What the table's TTL does after 24 hours: the idempotency records go, the last-applied times stay."""
    client = boto3.client("dynamodb", region_name=REGION)
    for item in client.scan(TableName=table)["Items"]:
        if not item["id"]["S"].startswith("last-applied#"):
            client.delete_item(TableName=table, Key={"id": item["id"]})


def test_a_delivery_replayed_after_its_idempotency_record_expired_is_ignored(update, queues, sandbox, log_output):
    assert deliver(update, "shopify", SHOPIFY_CUSTOMER, shopify_headers)[1]["queued"]
    drain(update, queues)
    _expire_idempotency_records()
    status, body = deliver(update, "shopify", SHOPIFY_CUSTOMER, lambda raw: shopify_headers(raw, webhook_id="new"))
    assert status == 200 and "replay" in body["ignored"]
    assert "replay" in log_output.getvalue()
    assert queues.counts("update_contact") == (0, 0)
    drain(update, queues)
    assert len(sent_updates(sandbox)) == 1


def test_two_different_bodies_with_the_same_event_time_are_both_applied(update, queues, sandbox):
    first = {**SHOPIFY_CUSTOMER, "last_name": "First"}
    second = {**SHOPIFY_CUSTOMER, "last_name": "Second"}  # saved twice within Shopify's one-second resolution
    for customer in (first, second, first):  # the last one: the first body again, a replay
        deliver(update, "shopify", customer, shopify_headers)
    drain(update, queues)
    assert [u["lastName"] for u in sent_updates(sandbox)] == ["First", "Second"]
    assert sandbox.state.get_contact(ANNA)["lastName"] == "Second"


@pytest.mark.parametrize(
    ("platform", "listed", "headers", "customer", "source_header", "other"),
    [
        ("shopify", "other.myshopify.com", shopify_headers, SHOPIFY_CUSTOMER, "X-Shopify-Shop-Domain",
         "evil.myshopify.com"),
        ("woocommerce", "https://other.example.com", woo_headers, WOO_CUSTOMER, "X-WC-Webhook-Source",
         "https://evil.example.com/"),
    ],
)  # fmt: skip
def test_a_deployment_that_names_its_shops_refuses_the_others(
    secrets_env, queues, sandbox, capsys, platform, listed, headers, customer, source_header, other
):
    """A public app's secret is shared by every store that installs it: the secret alone is not enough."""
    secrets_env.set(platform, "secret", "another-shops-secret", shop=listed)
    handler = load_webhooks_and_update()
    capsys.readouterr()
    status, body = deliver(handler, platform, customer, lambda raw: {**headers(raw), source_header: other})
    assert (status, body["error"]) == (401, "Unauthorized") and "shops document" in body["message"]
    assert '"WebhooksFromUnknownShops"' in capsys.readouterr().out
    missing = {k: v for k, v in headers(json.dumps(customer).encode()).items() if k != source_header}
    assert deliver(handler, platform, customer, missing)[0] == 401
    assert queues.counts("update_contact") == (0, 0)
    assert deliver(handler, platform, customer, headers)[0] == 200  # its own shop, as the platform spells it
    upper = lambda raw: {**headers(raw), source_header: headers(raw)[source_header].upper()}  # noqa: E731
    assert deliver(handler, platform, customer, upper)[0] == 200


def test_an_internationalised_email_is_queued_under_an_ascii_group_without_the_address(update, queues):
    customer = {**SHOPIFY_CUSTOMER, "email": "Anna@Exämple.se"}
    assert deliver(update, "shopify", customer, shopify_headers)[1]["queued"]
    (message,) = queues.messages("update_contact")
    group = message["Attributes"]["MessageGroupId"]
    assert group.isascii() and "mple" not in group.lower() and group.startswith("email:")


def test_a_dead_lettered_old_delivery_sent_back_after_a_newer_one_does_not_overwrite_it(
    update, queues, sandbox, log_output, capsys
):
    old = {**SHOPIFY_CUSTOMER, "default_address": {**SHOPIFY_CUSTOMER["default_address"], "city": "Old"}}
    new = {**old, "default_address": {**old["default_address"], "city": "New"},
           "updated_at": "2026-11-27T12:00:00+01:00"}  # fmt: skip
    sandbox.state.add_faults([Fault(kind="status", status=400, route="update", count=1)])  # the old one is refused
    assert deliver(update, "shopify", old, shopify_headers)[1]["queued"]
    drain(update, queues)
    (dead,) = queues.messages("update_contact-dlq")
    assert deliver(update, "shopify", new, shopify_headers)[1]["queued"]
    drain(update, queues)
    assert sandbox.state.get_contact(ANNA)["city"] == "New"
    sandbox.state.requests.clear()
    # the operator sends the dead letter back to its queue, as a redrive would
    send_command(queues.sqs, queues.urls["update_contact"], json.loads(dead["Body"]),
                 dead["Attributes"]["MessageGroupId"])  # fmt: skip
    queues.sqs.delete_message(QueueUrl=queues.urls["update_contact-dlq"], ReceiptHandle=dead["ReceiptHandle"])
    capsys.readouterr()
    drain(update, queues)
    assert sandbox.state.get_contact(ANNA)["city"] == "New"
    assert [r["route"] for r in sandbox.state.request_log() if r["route"] != "lookup"] == []  # Engage not called
    assert queues.counts("update_contact") == (0, 0) and queues.messages("update_contact-dlq") == []
    names = {m["Name"] for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
             for d in json.loads(line)["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}  # fmt: skip
    assert "StaleCommandsSkipped" in names and "ContactsUpdated" not in names
    assert "stale command skipped" in log_output.getvalue()
    assert json.loads(dead["Body"])["eventTime"] == "2026-11-27T10:00:00+01:00"  # the time travelled with it


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # a nesting bomb, even signed, is no 500
        (b'{"email": "anna@example.com", "first_name": NaN}', "NaN is not a JSON value"),
        (b"not json", "not valid JSON"),
        (b'{"a": "' + b"x" * (4 * 64 * 1024) + b'"}', "larger than"),
    ],
)
def test_a_signed_body_that_is_not_a_customer_is_400_and_nothing_is_queued(update, queues, raw, reason):
    status, body = deliver(update, "shopify", raw, shopify_headers)
    assert (status, body["error"]) == (400, "InvalidRequest") and reason in body["message"]
    assert queues.messages("update_contact") == []


def test_a_wrong_method_on_a_platform_route_is_405(update):
    response = update(api_event("GET", "/webhooks/shopify", "", {}), LocalContext())
    assert response["statusCode"] == 405 and response["headers"]["Allow"] == "POST"
    assert json.loads(response["body"])["error"] == "MethodNotAllowed"


def test_other_topics_are_answered_200_and_ignored(update, queues, sandbox):
    status, body = deliver(update, "shopify", {"id": 1, "email": "anna@example.com"},
                           lambda raw: shopify_headers(raw, topic="orders/create"))  # fmt: skip
    assert status == 200 and "orders/create" in body["ignored"]
    assert queues.counts("update_contact") == (0, 0)


def test_a_customer_without_email_is_ignored_with_a_reason(update, queues):
    status, body = deliver(update, "shopify", {**SHOPIFY_CUSTOMER, "email": None}, shopify_headers)
    assert status == 200 and "email" in body["ignored"]


def test_a_woocommerce_customer_update_ends_in_engage(update, queues, sandbox):
    status, body = deliver(update, "woocommerce", WOO_CUSTOMER, woo_headers)
    assert status == 200 and body["queued"]
    drain(update, queues)
    bertil = sandbox.state.get_contact(DEMO_CONTACTS[1]["id"])
    assert (bertil["lastName"], bertil["street"], bertil["city"], bertil["zipCode"], bertil["mobilePhone"]) == (
        "Bergström",
        "Kungsgatan 12",
        "Malmö",
        "21149",
        "+46701112233",
    )


def test_woocommerce_ping_is_answered_and_does_nothing(update, queues):
    response = update(api_event("POST", "/webhooks/woocommerce", "webhook_id=7",
                                {"Content-Type": "application/x-www-form-urlencoded"}), LocalContext())  # fmt: skip
    assert response["statusCode"] == 200 and queues.counts("update_contact") == (0, 0)
    unsigned = update(api_event("POST", "/webhooks/woocommerce", json.dumps(WOO_CUSTOMER),
                                {"Content-Type": "application/json", "X-WC-Webhook-Topic": "customer.updated"}),
                      LocalContext())  # fmt: skip
    assert unsigned["statusCode"] == 401


def test_two_woocommerce_customers_saved_in_one_second_are_both_applied(update, queues, sandbox):
    other = {**WOO_CUSTOMER, "id": 26, "email": "anna@example.com", "first_name": "Anna-Lisa"}
    for customer in (WOO_CUSTOMER, other):  # WooCommerce gives both the same delivery id
        assert deliver(update, "woocommerce", customer, lambda raw: woo_headers(raw, delivery="same"))[1]["queued"]
    drain(update, queues)
    assert sandbox.state.get_contact(ANNA)["firstName"] == "Anna-Lisa"
    assert sandbox.state.get_contact(DEMO_CONTACTS[1]["id"])["street"] == "Kungsgatan 12"


def test_users_add_their_own_mappings(secrets_env, queues, sandbox, monkeypatch):
    secrets_env.set("woocommerce", "attributeMap", {"favoriteStore": "meta:favorite_store"})
    handler = load_webhooks_and_update()
    assert deliver(handler, "woocommerce", WOO_CUSTOMER, woo_headers)[0] == 200
    drain(handler, queues)
    assert sandbox.state.get_contact(DEMO_CONTACTS[1]["id"])["favoriteStore"] == "Malmö Triangeln"


@pytest.mark.parametrize(
    "mapping",
    ['{"firstNam": "first_name"}', '{"preferences.acceptEmail": "x"}', "[1]", '{"city": ["billing.city", "shout"]}'],
)
def test_a_wrong_user_mapping_stops_the_function_at_start(secrets_env, monkeypatch, mapping):
    secrets_env.setting("SHOPIFY_ATTRIBUTE_MAP", mapping)
    with pytest.raises(ConfigurationError, match=r"shopify shop 'example\.myshopify\.com': 'attributeMap'"):
        load_function("intake_webhooks")


def test_a_platform_without_a_secret_has_no_route(function_env):
    function_env("update_contact")
    handler = load_webhooks_and_update()
    assert deliver(handler, "shopify", SHOPIFY_CUSTOMER, shopify_headers)[0] == 404


@pytest.mark.parametrize(("name", "secret"), [("shopify", SHOPIFY_SECRET), ("woocommerce", WOO_SECRET)])
def test_the_example_events_are_correctly_signed_and_handled(update, queues, sandbox, name, secret):
    event = json.loads((ROOT / "events" / "update_contact" / f"{name}.json").read_text())
    raw = event["body"].encode()
    header = next(v for k, v in event["headers"].items() if k.lower() in ("x-shopify-hmac-sha256",
                                                                          "x-wc-webhook-signature"))  # fmt: skip
    assert header == sign(secret, raw)
    assert update(event, LocalContext())["statusCode"] == 200
    drain(update, queues)
    assert sent_updates(sandbox)
