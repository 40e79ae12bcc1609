"""The soak's consent kind: Shopify consent events mixed with profile events, out of order and retried.

Sent through the stack's own API (/webhooks/shopify, signed as the stack's shops document's first shop) while
Engage fails as the soak makes it fail; every customer's events are shuffled, and some are sent again as
Shopify retries them (the same body and event id). It ends when the queues are empty; then each contact's
preferences must be the latest decision sent per channel, and its last name the latest profile's (unless
that event was dead-lettered: then the latest one that was not).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

EMAIL_TOPIC, SMS_TOPIC = "customers/email_marketing_consent_update", "customers/marketing_consent_update"
EVENTS_PER_CUSTOMER = 8
RETRIED_FRACTION = 0.15


@dataclass
class ConsentEvent:
    customer: int
    topic: str
    body: dict[str, Any]
    at: str  # its own time: consent_updated_at, or the profile's updated_at
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    expects: tuple[str, Any] | None = None  # (Engage attribute, value) it leaves when it is the latest


def email(n: int) -> str:
    return f"consent-{n}@example.com"


def phone(n: int) -> str:
    return f"+4676{n:07d}"


def plan(seed: int, customers: int) -> list[ConsentEvent]:
    """Each customer's events at rising times (email, SMS consent and profile), then all of them shuffled."""
    rng = random.Random(seed * 7919)
    events: list[ConsentEvent] = []
    for n in range(customers):
        for k in range(EVENTS_PER_CUSTOMER):
            at = f"2026-11-28T{9 + k:02d}:{rng.randrange(60):02d}:00+01:00"
            kind = rng.choice(("email", "sms", "profile"))
            state = rng.choice(("subscribed", "unsubscribed", "not_subscribed"))
            decision = {"subscribed": True, "unsubscribed": False}.get(state)
            if kind == "email":
                body = {
                    "customer_id": 900000 + n,
                    "email_address": email(n),
                    "email_marketing_consent": {
                        "state": state,
                        "opt_in_level": "single_opt_in",
                        "consent_updated_at": at,
                    },
                }
                expects = None if decision is None else ("preferences.acceptsEmail", decision)
                events.append(ConsentEvent(n, EMAIL_TOPIC, body, at, expects=expects))
            elif kind == "sms":
                consent = {
                    "state": state,
                    "opt_in_level": "single_opt_in",
                    "consent_updated_at": at,
                    "consent_collected_from": "SHOPIFY",
                }
                body = {"id": 900000 + n, "phone": phone(n), "sms_marketing_consent": consent}
                expects = None if decision is None else ("preferences.acceptsSms", decision)
                events.append(ConsentEvent(n, SMS_TOPIC, body, at, expects=expects))
            else:
                body = {
                    "id": 900000 + n,
                    "email": email(n),
                    "first_name": "Consent",
                    "last_name": f"profile-{k}",
                    "state": "disabled",
                    "updated_at": at,
                    "addresses": [],
                }
                events.append(ConsentEvent(n, "customers/update", body, at, expects=("lastName", f"profile-{k}")))
    rng.shuffle(events)
    retried = [e for e in events if rng.random() < RETRIED_FRACTION]
    for event in retried:  # Shopify's retry: the same body and event id, later
        events.insert(rng.randrange(events.index(event), len(events)) + 1, event)
    return events


def seed_contacts(state: Any, customers: int) -> dict[int, str]:
    return {
        n: state.add_contact(
            {"contactType": "Contact", "attributes": {"email": email(n), "mobilePhone": phone(n), "lastName": "seed"}}
        )
        for n in range(customers)
    }


def send(stack: Any, events: list[ConsentEvent]) -> int:
    """Post every event to the stack's API as the shops document's first Shopify shop; the deliveries refused."""
    import requests

    from .send import platform_shop
    from .signing import platform_headers
    from .stack import SHOPS_SECRET

    class Named:
        platform_secrets = {"shopify": SHOPS_SECRET}

        def client(self, service: str) -> Any:
            return stack.client(service)

    shop, secret = platform_shop(Named(), "shopify")
    refused = 0
    with requests.Session() as session:
        for event in events:
            raw = json.dumps(event.body).encode()
            headers = platform_headers("shopify", secret, raw, topic=event.topic, shop=shop)
            headers["X-Shopify-Event-Id"] = event.event_id
            answer = session.post(f"{stack.api_url}/webhooks/shopify", data=raw, headers=headers, timeout=60)
            refused += answer.status_code != 200
    return refused


def check(stack: Any, events: list[ConsentEvent], contacts: dict[int, str], dead_keys: set[str]) -> list[str]:
    """Each contact as its latest event per attribute left it (dead-lettered events left out)."""
    from engage_contact.ecommerce.deliveries import delivery_key
    from engage_contact.ecommerce.platforms import PLATFORMS

    platform = PLATFORMS["shopify"]
    latest: dict[tuple[int, str], tuple[str, Any]] = {}
    for event in events:
        raw = json.dumps(event.body).encode()
        if event.expects is None or delivery_key(platform, raw, {"x-shopify-event-id": event.event_id}) in dead_keys:
            continue
        slot = (event.customer, event.expects[0])
        if slot not in latest or latest[slot][0] < event.at:
            latest[slot] = (event.at, event.expects[1])
    violations = []
    for (n, name), (_, value) in sorted(latest.items()):
        contact = stack.sandbox.state.get_contact(contacts[n])
        parent, _, child = name.partition(".")
        held = (contact.get(parent) or {}).get(child) if child else contact.get(parent)
        if held != value:
            violations.append(f"consent customer {n}: {name} is {held!r}, the latest event sent {value!r}")
    return violations


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make soak (python -m local.soak), whose consent part this is")
