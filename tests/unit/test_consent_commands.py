"""The command fields Shopify's consent topics need, and the pieces that build them, on their own."""

from __future__ import annotations

import pytest
from engage_contact.domain.attributes import AttributeCatalogue
from engage_contact.domain.command import Operation, parse_command
from engage_contact.domain.contacts import customer_key, message_group
from engage_contact.ecommerce.deliveries import delivery_key
from engage_contact.ecommerce.platforms import PLATFORMS, consent_decision
from engage_contact.errors import InvalidRequest

CATALOGUE = AttributeCatalogue(frozenset())
CONSENT = {"lookup": {"email": "anna@example.com"}, "attributes": {"preferences": {"acceptsEmail": False}},
           "eventTime": "2026-11-27T10:05:00+01:00", "eventClock": "acceptsEmail",
           "sourceCustomer": "shopify:example.myshopify.com:706405506930370084", "skipIfMissing": True}  # fmt: skip


def parse(data, operation=Operation.UPDATE):
    return parse_command(data, operation, CATALOGUE)


def test_a_consent_command_is_parsed_with_its_clock_customer_and_skip():
    command = parse(CONSENT)
    assert command.event_clock == "acceptsEmail" and command.skip_if_missing is True
    assert command.source_customer == "shopify:example.myshopify.com:706405506930370084"
    assert command.payload.sent == {"preferences": {"acceptsEmail": False}}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"eventClock": "acceptsPostal"}, "eventClock"),
        ({"eventTime": None}, "eventClock"),  # a clock without a time
        ({"createIfMissing": {"contactType": "Contact"}}, "skipIfMissing"),
        ({"skipIfMissing": "yes"}, "skipIfMissing"),
        ({"sourceCustomer": " "}, "sourceCustomer"),
    ],
)
def test_a_wrong_consent_field_is_refused_naming_it(change, field):
    data = {**CONSENT, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(InvalidRequest) as caught:
        parse(data)
    assert caught.value.details.get("field") == field


def test_skip_if_missing_needs_a_lookup_and_change_type_takes_none_of_these():
    with pytest.raises(InvalidRequest):
        parse({"contactId": "430d3329-7eef-45c0-37f9-ae9300a0dace", "attributes": {"city": "Lund"},
               "skipIfMissing": True})  # fmt: skip
    with pytest.raises(InvalidRequest):
        parse({"contactId": "430d3329", "contactTypeId": "Contact", "sourceCustomer": "x"}, Operation.CHANGE_TYPE)


def test_the_customer_key_is_the_same_whichever_lookup_and_holds_no_personal_data():
    by_email, by_phone = parse(CONSENT), parse({**CONSENT, "lookup": {"mobilePhone": "+46701234567"},
                                                 "attributes": {"preferences": {"acceptsSms": True}},
                                                 "eventClock": "acceptsSms"})  # fmt: skip
    assert customer_key(by_email) == customer_key(by_phone)
    assert "706405506930370084" not in customer_key(by_email) and "anna" not in customer_key(by_email)
    assert message_group(CONSENT).startswith("email:")  # the queue's group stays the contact's, as before


@pytest.mark.parametrize(
    ("state", "decision"),
    [("subscribed", True), ("UNSUBSCRIBED", False), ("not_subscribed", None), ("pending", None),
     ("invalid", None), ("redacted", None), (None, None)],
)  # fmt: skip
def test_only_a_decision_becomes_a_preference(state, decision):
    assert consent_decision(state) is decision


def test_the_event_id_joins_the_body_digest_in_the_key():
    shopify = PLATFORMS["shopify"]
    plain = delivery_key(shopify, b"{}", {})
    with_id = delivery_key(shopify, b"{}", {"x-shopify-event-id": "9f1c3a52-0d4e-4b6f-8a27-5c3e1b9d7f20"})
    assert with_id == f"{plain}-9f1c3a52-0d4e-4b6f-8a27-5c3e1b9d7f20"
    odd = delivery_key(shopify, b"{}", {"x-shopify-event-id": "a b/c"})
    assert odd.startswith(plain + "-") and " " not in odd and len(odd) < 256
    assert delivery_key(PLATFORMS["woocommerce"], b"{}", {"x-shopify-event-id": "x"}) == "woocommerce-" + plain[8:]


def test_an_unsigned_trigger_time_in_the_future_is_not_trusted_as_the_consent_clock():
    from engage_contact.ecommerce.config import ShopConfig
    from engage_contact.ecommerce.deliveries import to_command

    shopify = PLATFORMS["shopify"]
    shop = ShopConfig("shopify", "example.myshopify.com", shopify.mapping)
    body = (
        b'{"customer_id": 1, "email_address": "anna@example.com", "email_marketing_consent": {"state": "unsubscribed"}}'
    )

    def clock_of(triggered):
        headers = {"x-shopify-topic": "customers/email_marketing_consent_update", "x-shopify-triggered-at": triggered,
                   "x-shopify-shop-domain": "example.myshopify.com"}  # fmt: skip
        return to_command(shopify, body, headers, shop).command.get("eventTime")

    assert clock_of("2026-11-27T09:05:01Z") == "2026-11-27T09:05:01+00:00"
    assert clock_of("2999-01-01T00:00:00Z") is None
