"""Shopify and WooCommerce customer webhooks: verified their own way, mapped to an update command, queued.

The platform gets 200 at once; the update FIFO queue does the Engage work with
its retries and dead letters. The mapping from a platform's customer to Engage
attributes is data (PLATFORMS), not code per field; users add their own through
SHOPIFY_ATTRIBUTE_MAP / WOOCOMMERCE_ATTRIBUTE_MAP.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .attributes import MOBILE_PHONE
from .command import MAX_BODY_BYTES as MAX_COMMAND_BYTES
from .command import decode_json
from .errors import DependencyUnavailable, InvalidRequest, Unauthorized

LAST_APPLIED_DAYS = 400  # how long the last-applied time of a customer is kept
MAX_BODY_BYTES = 4 * MAX_COMMAND_BYTES  # a customer with many addresses is larger than a command


def _text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def international_phone(value: Any) -> str | None:
    """A phone number only when it is a full international number (+46701234567); anything else is nothing."""
    if not isinstance(value, str):
        return None
    compact = re.sub(r"[\s().-]", "", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if MOBILE_PHONE.match(compact) else None


def consent(value: Any) -> bool | None:
    """Shopify's marketing consent state as a preference; states that are no decision give nothing."""
    return {"subscribed": True, "not_subscribed": False, "unsubscribed": False}.get(
        value.lower() if isinstance(value, str) else None
    )


def country_code(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) and re.fullmatch(r"\s*[A-Za-z]{2}\s*", value) else None


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "text": _text, "internationalPhone": international_phone, "consent": consent, "countryCode": country_code,
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
    time_fields: tuple[str, ...] = field(default=())  # where the event's time is, first found wins


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
        time_fields=("body:updated_at", "header:x-shopify-triggered-at"),
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
        time_fields=("body:date_modified_gmt", "body:date_created_gmt"),
    ),
}
ROUTES = {p.route: p for p in PLATFORMS.values()}


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


def _lookup(data: Any, path: str) -> Any:
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
        value = TRANSFORMS[transform](_lookup(customer, path))
        if value is None or value == "":
            continue
        if "." in target:
            parent, child = target.split(".", 1)
            attributes.setdefault(parent, {})[child] = value
        else:
            attributes[target] = value
    return attributes


def verify(raw: bytes, signature: str | None, secrets: list[str]) -> None:
    """base64(HMAC-SHA256(raw body, secret as UTF-8)), as both platforms sign; any listed secret may match."""
    if not signature:
        raise Unauthorized("the delivery is not signed")
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        raise Unauthorized("the signature is not base64") from None
    for secret in secrets:
        expected = hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).digest()
        if hmac.compare_digest(expected, given):
            return
    raise Unauthorized("no signature matches")


def event_time(platform: Platform, customer: Mapping[str, Any], headers: Mapping[str, str]) -> dt.datetime | None:
    for source in platform.time_fields:
        kind, name = source.split(":", 1)
        value = _lookup(customer, name) if kind == "body" else headers.get(name)
        if isinstance(value, str) and value.strip():
            try:
                moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)  # WooCommerce's *_gmt has no zone
    return None


def delivery_key(platform: Platform, raw: bytes, headers: Mapping[str, str]) -> str:
    """The delivery's id: Shopify's as it is; WooCommerce's with a digest of the body, since WooCommerce derives
    its id from the webhook and the current second and two customers saved in one second would share it."""
    given = re.sub(r"[^A-Za-z0-9_.:-]", "", headers.get(platform.delivery_header, ""))[:64]
    if platform.name == "woocommerce" or not given:
        return f"{platform.name}-{given}-{hashlib.sha256(raw).hexdigest()[:32]}"
    return f"{platform.name}-{given}"


@dataclass
class Delivery:
    """What a verified platform delivery becomes."""

    command: dict[str, Any] | None
    key: str
    at: dt.datetime | None
    ignored: str | None = None


def to_command(platform: Platform, raw: bytes, headers: Mapping[str, str],
               mapping: Mapping[str, tuple[str, str]]) -> Delivery:  # fmt: skip
    """The update command for a verified delivery, or the reason it is ignored."""
    key = delivery_key(platform, raw, headers)
    topic = headers.get(platform.topic_header, "")
    if topic not in platform.topics:
        return Delivery(None, key, None, ignored=f"topic {topic or '(none)'} is not handled")
    customer = decode_json(raw, MAX_BODY_BYTES)
    if not isinstance(customer, dict):
        raise InvalidRequest("the platform's body is not a customer object")
    email = customer.get("email")
    if not isinstance(email, str) or not email.strip():
        return Delivery(None, key, None, ignored="the customer has no email to find the contact by")
    command = {"lookup": {"email": email.strip()}, "attributes": map_customer(customer, mapping), "idempotencyKey": key}
    return Delivery(command, key, event_time(platform, customer, headers))


def is_woocommerce_ping(platform: Platform, raw: bytes, headers: Mapping[str, str]) -> bool:
    """WooCommerce's ping on webhook creation: a form body webhook_id=N and no X-WC-Webhook-* headers."""
    return (platform.name == "woocommerce" and not any(h.startswith("x-wc-webhook-") for h in headers)
            and re.fullmatch(rb"webhook_id=\d+", raw.strip()) is not None)  # fmt: skip


class LastApplied:
    """The time of the newest event accepted per customer, in the idempotency table, so older ones are refused."""

    def __init__(self, table_name: str, client: Any) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client

    def accept(self, platform: str, email: str, at: dt.datetime) -> bool:
        """True when `at` is not older than the last accepted event of this customer (and records it)."""
        from botocore.exceptions import BotoCoreError, ClientError

        expires = int((dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=LAST_APPLIED_DAYS)).timestamp())
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()  # no address in the table's keys
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": f"last-applied#{platform}#{digest}"}},
                UpdateExpression="SET #at = :at, expiration = :exp",
                ConditionExpression="attribute_not_exists(#at) OR #at <= :at",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":at": {"N": str(at.timestamp())}, ":exp": {"N": str(expires)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise DependencyUnavailable("the idempotency table cannot be reached") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("the idempotency table cannot be reached") from exc
        return True
