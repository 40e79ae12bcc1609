"""The shops' privacy topics as privacy commands, with each shop's erasure policy (no I/O)."""

from __future__ import annotations

import json

import pytest
from engage_contact.errors import InvalidRequest
from engage_contact.privacy.command import parse_privacy_command
from engage_contact.privacy.topics import is_privacy_topic, privacy_command

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


def test_a_shops_erasure_policy_rides_with_its_erasures_not_its_data_requests():
    body = {"shop_domain": SHOP, "customer": {"id": 42, "email": "anna@example.com"}, "data_request": {"id": 9}}
    raw = json.dumps(body).encode()
    assert privacy_command("shopify", "customers/redact", raw, SHOP, "k", "erase")[0]["erasure"] == "erase"
    assert "erasure" not in privacy_command("shopify", "customers/data_request", raw, SHOP, "k", "erase")[0]
    assert "erasure" not in privacy_command("shopify", "customers/redact", raw, SHOP, "k")[0]  # record, the default


def test_a_retailers_erasure_command():
    command = parse_privacy_command({"contactId": "430d3329-7eef-45c0-37f9-ae9300a0dace", "erasure": "erase"})
    assert (command.request, command.erasure, command.source) == ("erase", "erase", "command")
    with pytest.raises(InvalidRequest, match="'erasure'"):
        parse_privacy_command({"request": "data-request", "contactId": "430d3329", "erasure": "erase"})
