"""Shopify's and WooCommerce's customers as Engage attributes: the platforms' table and the mapping, as data.

The mapping from a platform's customer to Engage attributes is data (PLATFORMS), not
code per field; a shop adds its own through its `attributeMap` in the shops document (`ecommerce.config`).
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
    if not isinstance(value, str):
        return None
    return {"subscribed": True, "not_subscribed": False, "unsubscribed": False}.get(value.lower())


def consent_decision(value: Any) -> bool | None:
    """A consent topic's state as a preference: only a decision the customer made. `not_subscribed` (never
    asked), `pending` (double opt-in not confirmed), `invalid`, `redacted` and null (Shopify's test notification)
    are none, and send nothing: Engage's preferences cannot be set back to "not set"."""
    if not isinstance(value, str):
        return None
    return {"subscribed": True, "unsubscribed": False}.get(value.lower())


def country_code(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) and re.fullmatch(r"\s*[A-Za-z]{2}\s*", value) else None


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "text": stripped,
    "internationalPhone": international_phone,
    "consent": consent,
    "countryCode": country_code,
    "consentDecision": consent_decision,
}


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
    "stateEnabled": _state_enabled,
    "registered": _registered,
    "never": lambda customer: False,
}


@dataclass(frozen=True)
class ConsentTopic:
    """Where a consent topic's payload says whom it is about and what they decided (data, not code per topic)."""

    preference: str  # the Engage preference it sets (preferences.<this>), and the name of its own clock
    customer_id: str  # the platform's customer id in the payload
    lookup_key: str  # how the contact is found when the customer's contact is not remembered
    address: str  # the address or phone in the payload, the lookup's value
    address_transform: str  # one of TRANSFORMS, making the address a lookup value
    state: str  # the consent state in the payload
    time: str  # when the consent changed, in the payload (else the platform's trigger-time header)


CONSENT_TOPICS = {
    # customers/email_marketing_consent_update: customer_id, email_address, email_marketing_consent{state, ...}
    "emailConsent": ConsentTopic("acceptsEmail", "customer_id", "email", "email_address", "text",
                                 "email_marketing_consent.state", "email_marketing_consent.consent_updated_at"),
    # customers/marketing_consent_update: id, phone, sms_marketing_consent{state, ...}
    "smsConsent": ConsentTopic("acceptsSms", "id", "mobilePhone", "phone", "internationalPhone",
                               "sms_marketing_consent.state", "sms_marketing_consent.consent_updated_at"),
}  # fmt: skip

# Shopify's topics and what each is: one line a topic. "customer": a customer payload mapped to a profile update
# (an enabled account is promoted when the deployment asks); "emailConsent"/"smsConsent": CONSENT_TOPICS.
SHOPIFY_TOPICS = {
    "customers/create": "customer",
    "customers/update": "customer",
    "customers/enable": "customer",  # an account enabled; since October 2026 also a first sign-in
    "customers/disable": "customer",
    "customers/email_marketing_consent_update": "emailConsent",
    "customers/marketing_consent_update": "smsConsent",
}
WOOCOMMERCE_TOPICS = {"customer.created": "customer", "customer.updated": "customer"}


@dataclass(frozen=True)
class Platform:
    name: str
    route: str
    topics: Mapping[str, str]  # topic -> what it is (see SHOPIFY_TOPICS)
    mapping: Mapping[str, tuple[str, str]]  # Engage attribute (dotted for preferences) -> (source path, transform)
    signature_header: str
    topic_header: str
    delivery_header: str
    source_header: str  # the shop a delivery says it comes from (not signed: a filter, not a proof)
    # where the event's time is, first found wins; only signed places (the body): an unsigned header could
    # move a customer's last-applied time into the future and block its real updates
    time_fields: tuple[str, ...] = field(default=())
    has_account: str = "never"  # which of ACCOUNT_RULES says the customer has opened an account
    event_header: str = ""  # the platform's event id, the same on every retry of one event (not signed)
    version_header: str = ""  # the platform API version the payload was shaped by
    trigger_time_header: str = ""  # when the platform fired the event (not signed)


PLATFORMS = {
    "shopify": Platform(
        name="shopify",
        route="/webhooks/shopify",
        topics=SHOPIFY_TOPICS,
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
        signature_header="x-shopify-hmac-sha256",
        topic_header="x-shopify-topic",
        delivery_header="x-shopify-webhook-id",
        source_header="x-shopify-shop-domain",
        time_fields=("body:updated_at",),
        has_account="stateEnabled",
        event_header="x-shopify-event-id",
        version_header="x-shopify-api-version",
        trigger_time_header="x-shopify-triggered-at",
    ),
    "woocommerce": Platform(
        name="woocommerce",
        route="/webhooks/woocommerce",
        topics=WOOCOMMERCE_TOPICS,
        mapping={
            "firstName": ("first_name", "text"),
            "lastName": ("last_name", "text"),
            "mobilePhone": ("billing.phone", "internationalPhone"),
            "street": ("billing.address_1", "text"),
            "zipCode": ("billing.postcode", "text"),
            "city": ("billing.city", "text"),
            "countryCode": ("billing.country", "countryCode"),
        },
        signature_header="x-wc-webhook-signature",
        topic_header="x-wc-webhook-topic",
        delivery_header="x-wc-webhook-delivery-id",
        source_header="x-wc-webhook-source",
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
