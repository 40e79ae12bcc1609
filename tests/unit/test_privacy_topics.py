"""The shops' privacy topics as privacy commands, and the erasure policy per shop (no I/O)."""

from __future__ import annotations

import json

import pytest
from engage_contact.errors import ConfigurationError, InvalidRequest
from engage_contact.privacy.command import parse_privacy_command
from engage_contact.privacy.policy import erasure_policies, erasure_policy
from engage_contact.privacy.topics import is_privacy_topic, origin_of, privacy_command

SHOP = "example.myshopify.com"


def command_for(platform, topic, body, shop=SHOP):
    return privacy_command(platform, topic, json.dumps(body).encode(), shop, "key-1")


def test_a_customer_redact_erases_by_email_and_by_the_shops_customer_id():
    body = {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": 42, "email": "anna@example.com", "phone": None},
            "orders_to_redact": [7]}  # fmt: skip
    command, group = command_for("shopify", "customers/redact", body, shop="")
    assert command == {"request": "erase", "source": "shopify customers/redact", "idempotencyKey": "key-1",
                       "lookup": {"email": "anna@example.com"},
                       "shopCustomer": {"platform": "shopify", "shop": SHOP, "id": "42"}}  # fmt: skip
    assert group.startswith("email:") and "anna" not in group


def test_a_deleted_customer_carries_only_its_id():
    command, group = command_for("shopify", "customers/delete", {"id": 706405506930370084, "tax_exemptions": []})
    assert "lookup" not in command and command["shopCustomer"]["id"] == "706405506930370084"
    assert group.startswith("shop-customer:") and "706405506930370084" not in group
    command, _ = command_for("woocommerce", "customer.deleted", {"id": 25}, shop="https://shop.example.com/")
    assert command["shopCustomer"] == {"platform": "woocommerce", "shop": "https://shop.example.com/", "id": "25"}


def test_an_email_that_is_no_address_leaves_the_customer_id_to_find_them():
    body = {"shop_domain": SHOP, "customer": {"id": 42, "email": "not an address"}}
    command, _ = command_for("shopify", "customers/redact", body)
    assert "lookup" not in command and command["shopCustomer"]["id"] == "42"


def test_a_shop_redact_and_a_data_request():
    command, group = command_for("shopify", "shop/redact", {"shop_id": 1, "shop_domain": SHOP})
    assert group.startswith("shop:")
    assert command["request"] == "erase-shop" and command["shop"] == {"platform": "shopify", "shop": SHOP}
    body = {"shop_domain": SHOP, "customer": {"id": 42, "email": "anna@example.com"}, "data_request": {"id": 9}}
    assert command_for("shopify", "customers/data_request", body)[0]["request"] == "data-request"


def test_a_privacy_body_that_names_no_one_is_refused():
    with pytest.raises(InvalidRequest, match="name the person"):
        command_for("shopify", "customers/redact", {"shop_domain": SHOP, "customer": {}})
    with pytest.raises(InvalidRequest):
        privacy_command("shopify", "customers/redact", b"[]", SHOP, "k")


def test_only_the_privacy_topics_are_taken():
    assert is_privacy_topic("shopify", "customers/redact") and is_privacy_topic("woocommerce", "customer.deleted")
    assert not is_privacy_topic("shopify", "customers/update") and not is_privacy_topic("woocommerce", "shop/redact")


def test_an_update_names_the_shop_customer_it_comes_from():
    assert origin_of("shopify", b'{"id": 42, "email": "a@example.com"}', SHOP) == {
        "platform": "shopify", "shop": SHOP, "customerId": "42"}  # fmt: skip
    assert origin_of("shopify", b'{"email": "a@example.com"}', SHOP) is None
    assert origin_of("shopify", b'{"id": 42}', "") is None


def test_the_policy_is_the_shops_own_then_the_default_then_record():
    policies = erasure_policies(json.dumps({f"shopify:{SHOP.upper()}/": "erase", "*": "erase-including-members"}))
    assert erasure_policy(policies, "shopify", SHOP) == "erase"
    assert erasure_policy(policies, "woocommerce", "https://other.example.com") == "erase-including-members"
    assert erasure_policy({}, "shopify", SHOP) == "record"


@pytest.mark.parametrize("raw", ["not json", "[]", '{"shopify:x": "delete"}'])
def test_a_bad_policy_setting_names_the_variable(raw):
    with pytest.raises(ConfigurationError, match="SHOP_ERASURE_POLICY"):
        erasure_policies(raw)


def test_a_retailers_erasure_command():
    command = parse_privacy_command({"contactId": "430d3329-7eef-45c0-37f9-ae9300a0dace", "erasure": "erase"})
    assert (command.request, command.erasure, command.source) == ("erase", "erase", "command")
    with pytest.raises(InvalidRequest, match="'erasure'"):
        parse_privacy_command({"request": "data-request", "contactId": "430d3329", "erasure": "erase"})
