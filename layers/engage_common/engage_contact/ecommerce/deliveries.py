"""A verified platform delivery turned into an update command (or the reason it is ignored)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.command import EVENT_TIME_AHEAD
from ..domain.json_body import MAX_BODY_BYTES as MAX_COMMAND_BYTES
from ..domain.json_body import decode_json
from ..errors import InvalidRequest
from .platforms import ACCOUNT_RULES, Platform, map_customer, value_at

MAX_PLATFORM_BODY_BYTES = 4 * MAX_COMMAND_BYTES  # a customer with many addresses is larger than a command


def event_time(platform: Platform, customer: Mapping[str, Any], headers: Mapping[str, str]) -> dt.datetime | None:
    for source in platform.time_fields:
        kind, name = source.split(":", 1)
        value = value_at(customer, name) if kind == "body" else headers.get(name)
        if isinstance(value, str) and value.strip():
            try:
                moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)  # WooCommerce's *_gmt has no zone
    return None


def body_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def delivery_key(platform: Platform, raw: bytes) -> str:
    """The delivery's idempotency key, from what the platform signed: its name and the raw body's digest.

    Never the delivery-id header: the signature does not cover it, so a captured body sent again with a
    made-up id would pass as a new delivery (and WooCommerce gives two customers saved in one second one id).
    """
    return f"{platform.name}-{body_digest(raw)}"


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


def to_command(platform: Platform, raw: bytes, headers: Mapping[str, str],
               mapping: Mapping[str, tuple[str, str]],
               create_if_missing: Mapping | None = None, *, send_only_changed: bool = False,
               promote_on_account: Mapping | None = None) -> Delivery:  # fmt: skip
    """The update command for a verified delivery, or the reason it is ignored; with `create_if_missing`, a
    customer Engage does not know is created; with `promote_on_account` (the member attributes every
    promotion adds), a customer who has an account is promoted too."""
    key = delivery_key(platform, raw)
    topic = headers.get(platform.topic_header, "")
    if topic not in platform.topics:
        return Delivery(None, key, None, ignored=f"topic {topic or '(none)'} is not handled")
    customer = decode_json(raw, MAX_PLATFORM_BODY_BYTES)
    if not isinstance(customer, dict):
        raise InvalidRequest("the platform's body is not a customer object")
    email = customer.get("email")
    if not isinstance(email, str) or not email.strip():
        return Delivery(None, key, None, ignored="the customer has no email to find the contact by")
    command = {"lookup": {"email": email.strip()}, "attributes": map_customer(customer, mapping), "idempotencyKey": key}
    if create_if_missing:
        command["createIfMissing"] = dict(create_if_missing)
    if send_only_changed:
        command["sendOnlyChanged"] = True
    at = event_time(platform, customer, headers)
    now = dt.datetime.now(tz=dt.UTC)
    clamped = at is not None and at > now + EVENT_TIME_AHEAD  # a shop's clock ahead: not a reason to lose it
    if clamped:
        at = now
    if at is not None:  # checked again where the update is applied: a dead letter sent back late is skipped
        command["eventTime"] = at.isoformat()
    promote = None
    if promote_on_account is not None and ACCOUNT_RULES[platform.has_account](customer):
        promote = promote_command(command, promote_on_account)
    return Delivery(command, key, at, digest=body_digest(raw), promote=promote, clamped=clamped)


def promote_command(update: Mapping[str, Any], member_attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The promotion of the update's customer: its mapped attributes over the deployment's member attributes,
    the same key and event time (an older promotion than the contact's newest event is skipped: a newer
    delivery of a customer with an account carries its own); a missing contact is created as a Member."""
    command = {"lookup": dict(update["lookup"]), "attributes": {**member_attributes, **update["attributes"]},
               "idempotencyKey": update["idempotencyKey"]}  # fmt: skip
    if "eventTime" in update:
        command["eventTime"] = update["eventTime"]
    if "createIfMissing" in update:
        command["createIfMissing"] = {k: v for k, v in update["createIfMissing"].items() if k != "contactType"}
    return command


def is_woocommerce_ping(platform: Platform, raw: bytes, headers: Mapping[str, str]) -> bool:
    """WooCommerce's ping on webhook creation: a form body webhook_id=N and no X-WC-Webhook-* headers."""
    return (platform.name == "woocommerce" and not any(h.startswith("x-wc-webhook-") for h in headers)
            and re.fullmatch(rb"webhook_id=\d+", raw.strip()) is not None)  # fmt: skip
