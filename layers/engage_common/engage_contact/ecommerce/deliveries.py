"""A verified platform delivery turned into an update command (or the reason it is ignored).

What each topic becomes is one table, TOPIC_KINDS (a platform's topics name their kind in `platforms`): a
new kind of topic is one builder here and one line per topic there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.attributes import EMAIL
from ..domain.command import EVENT_TIME_AHEAD
from ..domain.digest_key import keyed
from ..domain.json_body import MAX_BODY_BYTES as MAX_COMMAND_BYTES
from ..domain.json_body import decode_json
from ..errors import InvalidRequest
from .config import ShopConfig
from .platforms import ACCOUNT_RULES, CONSENT_TOPICS, TRANSFORMS, Platform, map_customer, shop_name, value_at

MAX_PLATFORM_BODY_BYTES = 4 * MAX_COMMAND_BYTES  # a customer with many addresses is larger than a command
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 time (Z or an offset; none is UTC, as WooCommerce's *_gmt), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def event_time(platform: Platform, customer: Mapping[str, Any], headers: Mapping[str, str]) -> dt.datetime | None:
    for source in platform.time_fields:
        kind, name = source.split(":", 1)
        moment = parse_time(value_at(customer, name) if kind == "body" else headers.get(name))
        if moment is not None:
            return moment
    return None


def body_digest(raw: bytes) -> str:
    """A delivery's body (personal data) as its keyed digest: the idempotency and last-applied records keep this."""
    return keyed("body", raw)


def delivery_key(platform: Platform, raw: bytes, headers: Mapping[str, str] | None = None) -> str:
    """The delivery's idempotency key, from what the platform signed: its name and the raw body's digest, and
    the platform's event id beside it where it sends one (the same on each of its retries of one event).

    Never the delivery-id header alone: the signature does not cover it, so a captured body sent again with a
    made-up id would pass as a new delivery (and WooCommerce gives two customers saved in one second one id).
    An unsigned event id cannot do that either: a body seen before at the same time is refused as a replay by
    the last-applied check, whatever event id comes with it.
    """
    key = f"{platform.name}-{body_digest(raw)}"
    event_id = (headers or {}).get(platform.event_header, "").strip() if platform.event_header else ""
    if not event_id:
        return key
    return f"{key}-{event_id if EVENT_ID.fullmatch(event_id) else body_digest(event_id.encode())[:32]}"


@dataclass
class Delivery:
    """What a verified platform delivery becomes."""

    command: dict[str, Any] | None
    key: str
    at: dt.datetime | None
    ignored: str | None = None
    digest: str = ""  # of the raw body
    promote: dict[str, Any] | None = None  # the promote command, when the customer has opened an account
    clamped: bool = False  # the platform's event time was too far ahead of the clock: now is used instead
    clock: str = "profile"  # the clock `at` is counted on: the profile's, or a consent channel's own
    customer: str = ""  # whom the last-applied check keys by (a profile: the email; consent: the shop customer)

    def queued(self) -> dict[str, Any]:
        """The command to queue: every delivery that is not ignored has one."""
        if self.command is None:
            raise ValueError("a delivery without a command (an ignored one) cannot be queued")
        return self.command


@dataclass(frozen=True)
class Incoming:
    """A verified delivery's parts, whichever way it came (HTTPS or EventBridge)."""

    platform: Platform
    kind: str
    payload: dict[str, Any]
    headers: Mapping[str, str]  # lower-case names
    shop: ShopConfig
    key: str
    digest: str

    def source_customer(self, path: str) -> str | None:
        """The platform's own customer, as `platform:shop:id` (no personal data), when the payload names one."""
        number = value_at(self.payload, path)
        if isinstance(number, bool) or not isinstance(number, int | str) or not str(number).strip().isdigit():
            return None
        shop = shop_name(self.headers.get(self.platform.source_header, "")) or self.shop.shop
        return f"{self.platform.name}:{shop}:{str(number).strip()}"


def to_command(platform: Platform, raw: bytes, headers: Mapping[str, str], shop: ShopConfig) -> Delivery:
    """The update command for a verified delivery, or the reason it is ignored: a customer topic is mapped by
    the shop's attribute mapping (with `createIfMissing` and a promotion when the shop asks), a consent topic
    sets its one preference."""
    key = delivery_key(platform, raw, headers)
    topic = headers.get(platform.topic_header, "")
    kind = platform.topics.get(topic)
    if kind is None:
        return Delivery(None, key, None, ignored=f"topic {topic or '(none)'} is not handled")
    payload = decode_json(raw, MAX_PLATFORM_BODY_BYTES)
    if not isinstance(payload, dict):
        raise InvalidRequest("the platform's body is not a customer object")
    return TOPIC_KINDS[kind](Incoming(platform, kind, payload, headers, shop, key, body_digest(raw)))


def customer_delivery(incoming: Incoming) -> Delivery:
    """A customer payload (create, update, enable, disable): the profile's attributes, looked up by email."""
    platform, customer, shop = incoming.platform, incoming.payload, incoming.shop
    email = customer.get("email")
    if not isinstance(email, str) or not email.strip():
        return Delivery(None, incoming.key, None, ignored="the customer has no email to find the contact by")
    command: dict[str, Any] = {
        "lookup": {"email": email.strip()},
        "attributes": map_customer(customer, shop.mapping),
        "idempotencyKey": incoming.key,
    }
    source = incoming.source_customer("id")
    if source is not None:
        command["sourceCustomer"] = source
    if shop.create_if_missing:
        command["createIfMissing"] = dict(shop.create_if_missing)
    if shop.send_only_changed:
        command["sendOnlyChanged"] = True
    at, clamped = not_ahead(event_time(platform, customer, incoming.headers))
    if at is not None:  # checked again where the update is applied: a dead letter sent back late is skipped
        command["eventTime"] = at.isoformat()
    promote = None
    if shop.promote_on_account is not None and ACCOUNT_RULES[platform.has_account](customer):
        promote = promote_command(command, shop.promote_on_account)
    return Delivery(command, incoming.key, at, digest=incoming.digest, promote=promote, customer=email, clamped=clamped)


def consent_delivery(incoming: Incoming) -> Delivery:
    """A consent topic: its one preference, only for a decision the customer made, on the channel's own clock.

    The contact is found by the contact the shop customer last reached (remembered where the update is
    applied), else by the topic's address; a subscribe of someone Engage does not know follows the shop's
    `createIfMissing`, an unsubscribe never creates, and nothing found is a counted success.
    """
    topic, payload, shop = CONSENT_TOPICS[incoming.kind], incoming.payload, incoming.shop
    decision = TRANSFORMS["consentDecision"](value_at(payload, topic.state))
    if decision is None:
        return Delivery(None, incoming.key, None, ignored="the consent state is no decision (nothing is sent)")
    address = TRANSFORMS[topic.address_transform](value_at(payload, topic.address))
    if not isinstance(address, str) or not address or (topic.lookup_key == "email" and not EMAIL.fullmatch(address)):
        reason = f"the consent names no {topic.lookup_key} to find the contact by"
        return Delivery(None, incoming.key, None, ignored=reason)
    # consent_updated_at, else when the platform fired the event (a test notification has no consent time); that
    # header is not signed: one in the future is not trusted, or a replay under it could hold back later changes
    triggered = parse_time(incoming.headers.get(incoming.platform.trigger_time_header))
    if triggered is not None and triggered > dt.datetime.now(tz=dt.UTC) + EVENT_TIME_AHEAD:
        triggered = None
    at, clamped = not_ahead(parse_time(value_at(payload, topic.time)) or triggered)
    command: dict[str, Any] = {
        "lookup": {topic.lookup_key: address},
        "attributes": {"preferences": {topic.preference: decision}},
        "idempotencyKey": incoming.key,
    }
    source = incoming.source_customer(topic.customer_id)
    if source is not None:
        command["sourceCustomer"] = source
    if decision and shop.create_if_missing:
        command["createIfMissing"] = dict(shop.create_if_missing)
    else:
        command["skipIfMissing"] = True  # an unsubscribe never creates a contact
    if shop.send_only_changed:
        command["sendOnlyChanged"] = True
    if at is not None:
        command["eventTime"], command["eventClock"] = at.isoformat(), topic.preference
    return Delivery(
        command,
        incoming.key,
        at,
        digest=incoming.digest,
        clock=topic.preference,
        customer=source or address,
        clamped=clamped,
    )


# What each kind of topic becomes (a platform's topics name their kind: platforms.SHOPIFY_TOPICS).
TOPIC_KINDS: dict[str, Callable[[Incoming], Delivery]] = {
    "customer": customer_delivery,
    "emailConsent": consent_delivery,
    "smsConsent": consent_delivery,
}


def not_ahead(at: dt.datetime | None) -> tuple[dt.datetime | None, bool]:
    """The event time, or now when it is further ahead of this clock than sources drift (said by the flag): a
    shop's clock ahead is not a reason to lose its event, nor to freeze the contact until that time."""
    now = dt.datetime.now(tz=dt.UTC)
    if at is not None and at > now + EVENT_TIME_AHEAD:
        return now, True
    return at, False


def promote_command(update: Mapping[str, Any], member_attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The promotion of the update's customer: its mapped attributes over the deployment's member attributes,
    the same key and event time (an older promotion than the contact's newest event is skipped: a newer
    delivery of a customer with an account carries its own); a missing contact is created as a Member."""
    command = {
        "lookup": dict(update["lookup"]),
        "attributes": {**member_attributes, **update["attributes"]},
        "idempotencyKey": update["idempotencyKey"],
    }
    for name in ("eventTime", "sourceCustomer"):
        if name in update:
            command[name] = update[name]
    if "createIfMissing" in update:
        command["createIfMissing"] = {k: v for k, v in update["createIfMissing"].items() if k != "contactType"}
    return command


def is_woocommerce_ping(platform: Platform, raw: bytes, headers: Mapping[str, str]) -> bool:
    """WooCommerce's ping on webhook creation: a form body webhook_id=N and no X-WC-Webhook-* headers."""
    return (
        platform.name == "woocommerce"
        and not any(h.startswith("x-wc-webhook-") for h in headers)
        and re.fullmatch(rb"webhook_id=\d+", raw.strip()) is not None
    )
