"""Shopify's and WooCommerce's customers as Engage attributes: the platforms' table and the mapping, as data.

The mapping from a platform's customer to Engage attributes is data (PLATFORMS), not
code per field; users add their own through SHOPIFY_ATTRIBUTE_MAP / WOOCOMMERCE_ATTRIBUTE_MAP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..domain.attributes import MOBILE_PHONE


def stripped(value: Any) -> Any:
    """Text as text, trimmed; a whole number as its digits (Shopify's customer `id` is a JSON number, and Engage's
    `externalId` is a string); anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else value


def international_phone(value: Any) -> str | None:
    """A phone number only when it is a full international number (+46701234567); anything else is nothing."""
    if not isinstance(value, str):
        return None
    compact = re.sub(r"[\s().-]", "", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if MOBILE_PHONE.fullmatch(compact) else None


def consent(value: Any) -> bool | None:
    """Shopify's marketing consent state as a preference; states that are no decision give nothing."""
    return {"subscribed": True, "not_subscribed": False, "unsubscribed": False}.get(
        value.lower() if isinstance(value, str) else None
    )


def country_code(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) and re.fullmatch(r"\s*[A-Za-z]{2}\s*", value) else None


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "text": stripped, "internationalPhone": international_phone, "consent": consent, "countryCode": country_code,
}  # fmt: skip


def _state_enabled(customer: Mapping[str, Any]) -> bool:
    """Shopify: `state` is `enabled` once the customer has activated an account (disabled, invited and
    declined are not)."""
    return customer.get("state") == "enabled"


def _registered(customer: Mapping[str, Any]) -> bool:
    """WooCommerce: a customer webhook is about a registered user (a guest has no customer object of its own);
    it is taken as an account when it has a user id above 0 and a username."""
    number, username = customer.get("id"), customer.get("username")
    has_id = isinstance(number, int) and not isinstance(number, bool) and number > 0
    return has_id and isinstance(username, str) and bool(username.strip())


ACCOUNT_RULES: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "stateEnabled": _state_enabled, "registered": _registered, "never": lambda customer: False,
}  # fmt: skip


@dataclass(frozen=True)
class Platform:
    name: str
    route: str
    topics: frozenset[str]
    mapping: Mapping[str, tuple[str, str]]  # Engage attribute (dotted for preferences) -> (source path, transform)
    secret_setting: str
    map_setting: str
    signature_header: str
    topic_header: str
    delivery_header: str
    source_header: str  # the shop a delivery says it comes from (not signed: a filter, not a proof)
    source_setting: str  # the deployment's accepted shops, comma-separated; unset: any
    # where the event's time is, first found wins; only signed places (the body): an unsigned header could
    # move a customer's last-applied time into the future and block its real updates
    time_fields: tuple[str, ...] = field(default=())
    has_account: str = "never"  # which of ACCOUNT_RULES says the customer has opened an account


PLATFORMS = {
    "shopify": Platform(
        name="shopify",
        route="/webhooks/shopify",
        topics=frozenset({"customers/create", "customers/update"}),
        mapping={
            "firstName": ("first_name", "text"),
            "lastName": ("last_name", "text"),
            "mobilePhone": ("phone", "internationalPhone"),
            "street": ("default_address.address1", "text"),
            "zipCode": ("default_address.zip", "text"),
            "city": ("default_address.city", "text"),
            "countryCode": ("default_address.country_code", "countryCode"),
            "preferences.acceptsEmail": ("email_marketing_consent.state", "consent"),
            "preferences.acceptsSms": ("sms_marketing_consent.state", "consent"),
        },
        secret_setting="SHOPIFY_WEBHOOK_SECRET_ARN",  # noqa: S106 - a variable name
        map_setting="SHOPIFY_ATTRIBUTE_MAP",
        signature_header="x-shopify-hmac-sha256",
        topic_header="x-shopify-topic",
        delivery_header="x-shopify-webhook-id",
        source_header="x-shopify-shop-domain",
        source_setting="SHOPIFY_SHOP_DOMAINS",
        time_fields=("body:updated_at",),
        has_account="stateEnabled",
    ),
    "woocommerce": Platform(
        name="woocommerce",
        route="/webhooks/woocommerce",
        topics=frozenset({"customer.created", "customer.updated"}),
        mapping={
            "firstName": ("first_name", "text"),
            "lastName": ("last_name", "text"),
            "mobilePhone": ("billing.phone", "internationalPhone"),
            "street": ("billing.address_1", "text"),
            "zipCode": ("billing.postcode", "text"),
            "city": ("billing.city", "text"),
            "countryCode": ("billing.country", "countryCode"),
        },
        secret_setting="WOOCOMMERCE_WEBHOOK_SECRET_ARN",  # noqa: S106 - a variable name
        map_setting="WOOCOMMERCE_ATTRIBUTE_MAP",
        signature_header="x-wc-webhook-signature",
        topic_header="x-wc-webhook-topic",
        delivery_header="x-wc-webhook-delivery-id",
        source_header="x-wc-webhook-source",
        source_setting="WOOCOMMERCE_SOURCE_URLS",
        time_fields=("body:date_modified_gmt", "body:date_created_gmt"),
        has_account="registered",
    ),
}
ROUTES = {p.route: p for p in PLATFORMS.values()}


def shop_name(value: str) -> str:
    """A shop domain or source URL as compared: trimmed, without case or a trailing '/'."""
    return value.strip().lower().rstrip("/")


def parse_attribute_map(raw: str | None, setting: str) -> dict[str, tuple[str, str]]:
    """A user's extra mappings: JSON {"engageAttribute": "source.path"} or {"attr": ["path", "transform"]}."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{setting} is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{setting} must be a JSON object")
    mapping = {}
    for target, source in data.items():
        path, transform = (source, "text") if isinstance(source, str) else (*tuple(source), "text")[:2]
        if not isinstance(path, str) or transform not in TRANSFORMS:
            raise ValueError(f"{setting}: '{target}' needs a source path and one of {sorted(TRANSFORMS)}")
        mapping[target] = (path, transform)
    return mapping


def value_at(data: Any, path: str) -> Any:
    """A dotted path into the payload; `meta:key` reads WooCommerce's meta_data list."""
    if path.startswith("meta:"):
        key = path[5:]
        for item in data.get("meta_data") or [] if isinstance(data, dict) else []:
            if isinstance(item, dict) and item.get("key") == key:
                return item.get("value")
        return None
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def map_customer(customer: Mapping[str, Any], mapping: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """Engage attributes from a platform customer. A null or empty field becomes nothing, never an overwrite."""
    attributes: dict[str, Any] = {}
    for target, (path, transform) in mapping.items():
        value = TRANSFORMS[transform](value_at(customer, path))
        if value is None or value == "":
            continue
        if "." in target:
            parent, child = target.split(".", 1)
            attributes.setdefault(parent, {})[child] = value
        else:
            attributes[target] = value
    return attributes
