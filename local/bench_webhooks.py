"""`make bench`'s webhook figure: Engage calls per Shopify delivery when most deliveries change nothing for Engage.

A stream of realistic `customers/update` deliveries over a set of customers, most of them carrying only
what Engage does not hold (orders, tags, totals, notes), goes through the update function twice: once as
deployed (sendOnlyChanged, the default) into one sandbox, once with the shop's sendOnlyChanged false into
another. The figure is the first sandbox's requests per delivery; the two sandboxes' contacts must end
identical, or the figure is not given.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
from typing import Any

from .engage_sandbox import EngageSandbox
from .lambda_runtime import LocalContext, SqsEventSource, api_event
from .template import read_stack

SECRET = "shpss_bench0123456789abcdef0123456789"  # the bench's own signing secret
CHANGE_FRACTION = 0.05  # deliveries that change something Engage holds (the rest: orders, tags, totals, notes)
CUSTOMER = {
    "state": "enabled",
    "verified_email": True,
    "currency": "SEK",
    "tax_exempt": False,
    "addresses": [],
    "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
    "sms_marketing_consent": {"state": "not_subscribed", "opt_in_level": "single_opt_in"},
}
CITIES = ("Uppsala", "Lund", "Malmö", "Umeå", "Visby")


def customer(n: int) -> dict[str, Any]:
    return {
        **copy.deepcopy(CUSTOMER),
        "id": 7064000000 + n,
        "email": f"c{n}@example.com",
        "first_name": f"First{n}",
        "last_name": f"Last{n}",
        "phone": f"+4670{n:07d}",
        "orders_count": 0,
        "total_spent": "0.00",
        "tags": "",
        "note": None,
        "default_address": {
            "address1": f"Street {n}",
            "city": CITIES[n % 5],
            "zip": f"{10000 + n}",
            "country_code": "SE",
            "default": True,
        },
    }


def stream(customers: int, deliveries: int, seed: int = 7) -> list[dict[str, Any]]:
    """The deliveries' bodies, in order: each customer's `updated_at` moves on with every delivery.

    Exactly CHANGE_FRACTION of the deliveries (chosen at random) change one thing Engage holds; the others
    change only what it does not (orders, totals, tags).
    """
    rng = random.Random(seed)
    current = [customer(n) for n in range(customers)]
    changing = set(rng.sample(range(deliveries), round(CHANGE_FRACTION * deliveries)))
    bodies = []
    for i in range(deliveries):
        n = rng.randrange(customers)
        body = current[n]
        body["orders_count"] += 1  # what a shop changes most: nothing Engage holds
        body["total_spent"] = f"{body['orders_count'] * 99}.00"
        body["tags"] = rng.choice(["", "vip", "vip, newsletter", "returning"])
        if i in changing:
            _change(body, rng, n, i)
        body["updated_at"] = f"2026-11-27T{8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+01:00"
        bodies.append(copy.deepcopy(body))
    return bodies


def _change(body: dict[str, Any], rng: random.Random, n: int, i: int) -> None:
    """One change to what Engage holds: a name, a city (another one), a phone number or the email consent."""
    field = rng.choice(["last_name", "city", "phone", "consent"])
    if field == "last_name":
        body["last_name"] = f"Last{n}-{i}"
    elif field == "city":
        body["default_address"]["city"] = rng.choice([c for c in CITIES if c != body["default_address"]["city"]])
    elif field == "phone":
        body["phone"] = f"+4673{i:07d}"
    else:
        state = body["email_marketing_consent"]["state"]
        body["email_marketing_consent"]["state"] = "unsubscribed" if state == "subscribed" else "subscribed"


def changes(bodies: list[dict[str, Any]]) -> int:
    """Deliveries that change what Engage holds of a customer already delivered (a first delivery sends all)."""
    seen: dict[int, tuple] = {}
    count = 0
    for body in bodies:
        held = (
            body["last_name"],
            body["default_address"]["city"],
            body["phone"],
            body["email_marketing_consent"]["state"],
        )
        count += body["id"] in seen and seen[body["id"]] != held
        seen[body["id"]] = held
    return count


def headers(raw: bytes) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "customers/update",
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": "bench.myshopify.com",
        "X-Shopify-Webhook-Id": hashlib.sha256(raw).hexdigest()[:32],
    }


def run(bench: Any, customers: int = 100, deliveries: int = 1000) -> dict[str, Any]:
    """The figure, from `bench` (local.bench.Bench: its moto server and its function loader). A quick bench
    sends a fifth of the deliveries over a fifth of the customers: as many deliveries per customer."""
    if bench.quick:
        customers, deliveries = customers // 5, deliveries // 5
    import boto3

    secrets = boto3.client("secretsmanager")
    sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
    lanes = {}
    for lane, only_changed in (("changed", "true"), ("everything", "false")):
        sandbox = EngageSandbox(api_keys=(bench.api_key,), rate_limit=100_000).start()
        for n in range(customers):
            sandbox.state.add_contact(
                {
                    "id": f"{n:08x}-0000-4000-8000-{n:012x}",
                    "contactType": "Contact",
                    "attributes": {"email": f"c{n}@example.com"},
                }
            )
        table = f"bench-webhooks-{lane}"  # its own: the two lanes' customers must not share last-applied times
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        queue = sqs.create_queue(QueueName=f"bench-webhooks-{lane}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        shops = {"shopify": {"bench.myshopify.com": {"secret": SECRET, "sendOnlyChanged": only_changed == "true"}}}
        shops_arn = secrets.create_secret(Name=f"bench-shops-{lane}", SecretString=json.dumps(shops))["ARN"]
        settings = {
            "ENGAGE_BASE_URL": sandbox.url,
            "IDEMPOTENCY_TABLE": table,
            "UPDATE_QUEUE_URL": queue,
            "SHOPS_SECRET_ARN": shops_arn,
            "ENGAGE_REQUESTS_PER_SECOND": "200",  # the template allows at most 200: the figure is calls, not time
        }
        intake = bench.load("intake_webhooks", **settings)  # verifies, maps, queues
        update = bench.load(**settings)  # applies what was queued
        # the template's function timeout: a batch gets the time it would have deployed
        timeout = read_stack().function_named("update_contact").timeout
        lanes[lane] = (sandbox, intake, SqsEventSource(sqs, queue, update, timeout_seconds=timeout))
    try:
        bodies = stream(customers, deliveries)
        for start in range(0, len(bodies), 50):
            for parts in lanes.values():
                _deliver(parts, bodies[start : start + 50])
        changed, everything = lanes["changed"][0], lanes["everything"][0]
        same = _contacts(changed) == _contacts(everything)
        calls = len(changed.state.request_log())
        return {
            "webhook_engage_calls_per_event": calls / deliveries if same else None,
            "webhook_engage_updates_per_event": len(changed.state.request_log("update")) / deliveries,
            # the floor: each customer's first delivery is looked up and sent whole (2 calls)
            "webhook_engage_calls_floor_per_event": 2 * customers / deliveries,
            # and one call for each delivery that changes what Engage holds of a customer already sent
            "webhook_contact_changes_per_event": changes(bodies) / deliveries,
            "webhook_engage_calls_everything_per_event": len(everything.state.request_log()) / deliveries,
            "webhook_final_state_identical": same,
            "webhook_deliveries": deliveries,
            "webhook_customers": customers,
        }
    finally:
        for sandbox, _, _ in lanes.values():
            sandbox.stop()


def _deliver(lane: tuple, bodies: list[dict[str, Any]]) -> None:
    _, handler, source = lane
    for body in bodies:
        raw = json.dumps(body).encode()
        answer = handler(api_event("POST", "/webhooks/shopify", raw.decode(), headers(raw)), LocalContext())
        if answer["statusCode"] != 200:
            raise RuntimeError(f"delivery refused: {answer['body']}")
    source.drain()
    if source.handed_back:
        raise RuntimeError("a delivery failed in the bench")


def _contacts(sandbox: EngageSandbox) -> dict[str, dict]:
    return {c["id"]: {k: v for k, v in c.items() if not k.startswith("_")} for c in sandbox.state.list_contacts()}


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make bench (its figure alone: python -m local.bench --only webhooks)")
