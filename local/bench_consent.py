"""Engage calls per Shopify consent event: today's consent topics through the update function into a sandbox.

Each customer first arrives as a customer update (its contact is looked up once and remembered under the
shop customer), then as a stream of email and SMS consent events whose states change, repeat, or are no
decision (not_subscribed, pending). Counted from the sandbox's own request log:

    calls per consent change   Engage calls (every route) / events that change what Engage holds
    calls per repeated state   Engage calls made for events that repeat the state Engage holds
    lookups per customer       Engage lookups / customers

Run alone: `.venv/bin/python -m local.bench_consent [--customers N] [--events N]` (or as a step of local.bench).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any

from .bench_webhooks import SECRET, customer
from .bench_webhooks import headers as signed_headers
from .engage_sandbox import EngageSandbox
from .lambda_runtime import LocalContext, SqsEventSource, api_event

SHOP = "bench.myshopify.com"
EMAIL_TOPIC, SMS_TOPIC = "customers/email_marketing_consent_update", "customers/marketing_consent_update"
STATES = ("subscribed", "unsubscribed", "subscribed", "unsubscribed", "not_subscribed", "pending")


def consent_event(n: int, topic: str, state: str, i: int) -> dict[str, Any]:
    at = f"2026-11-28T{8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+01:00"
    if topic == EMAIL_TOPIC:
        return {
            "customer_id": 7064000000 + n,
            "email_address": f"c{n}@example.com",
            "email_marketing_consent": {"state": state, "opt_in_level": "single_opt_in", "consent_updated_at": at},
        }
    return {
        "id": 7064000000 + n,
        "phone": f"+4670{n:07d}",
        "sms_marketing_consent": {
            "state": state,
            "opt_in_level": "single_opt_in",
            "consent_updated_at": at,
            "consent_collected_from": "SHOPIFY",
        },
    }


def stream(customers: int, events: int, seed: int = 11) -> list[tuple[str, dict[str, Any], str]]:
    """(topic, body, what it is for Engage: change / repeat / none), in order."""
    rng = random.Random(seed)
    held: dict[tuple[int, str], bool | None] = {}
    out = []
    for i in range(events):
        n, topic = rng.randrange(customers), rng.choice((EMAIL_TOPIC, SMS_TOPIC))
        state = rng.choice(STATES)
        decision = {"subscribed": True, "unsubscribed": False}.get(state)
        kind = "none" if decision is None else "repeat" if held.get((n, topic)) == decision else "change"
        if decision is not None:
            held[(n, topic)] = decision
        out.append((topic, consent_event(n, topic, state, i), kind))
    return out


def _headers(topic: str, raw: bytes) -> dict[str, str]:
    return {
        **signed_headers(raw),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": "2025-10",
    }


def _post(handler: Any, topic: str, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    answer = handler(api_event("POST", "/webhooks/shopify", raw.decode(), _headers(topic, raw)), LocalContext())
    if answer["statusCode"] != 200:
        raise RuntimeError(f"delivery refused: {answer['body']}")


def run(bench: Any, customers: int = 50, events: int = 1000) -> dict[str, Any]:
    """The figures, from `bench` (local.bench.Bench: its moto server and its function loader)."""
    import boto3

    from .bench import KEY

    sandbox = EngageSandbox(api_keys=(KEY,), rate_limit=100_000).start()
    try:
        # Engage's contacts hold no preferences at first: every first decision is a change
        for n in range(customers):
            keys = {"email": f"c{n}@example.com", "mobilePhone": f"+4670{n:07d}"}
            sandbox.state.add_contact({"contactType": "Contact", "attributes": keys})
        table, sqs = "bench-consent", boto3.client("sqs")
        boto3.client("dynamodb").create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        queue = sqs.create_queue(QueueName="bench-consent.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        shops = {"shopify": {SHOP: {"secret": SECRET}}}
        shops_arn = boto3.client("secretsmanager").create_secret(
            Name="bench-consent-shops", SecretString=json.dumps(shops)
        )["ARN"]
        handler = bench.load(
            ENGAGE_BASE_URL=sandbox.url, IDEMPOTENCY_TABLE=table, UPDATE_QUEUE_URL=queue, SHOPS_SECRET_ARN=shops_arn
        )
        source = SqsEventSource(sqs, queue, handler)
        for n in range(customers):  # the profile first: today's customer payload, no consent in it
            body = {
                k: v for k, v in customer(n).items() if k not in ("email_marketing_consent", "sms_marketing_consent")
            }
            _post(handler, "customers/update", {**body, "updated_at": "2026-11-28T07:00:00+01:00"})
        source.drain()
        profile_calls = len(sandbox.state.request_log())
        kinds = {"change": 0, "repeat": 0, "none": 0}
        repeat_calls = 0
        for topic, body, kind in stream(customers, events):
            before = len(sandbox.state.request_log())
            _post(handler, topic, body)
            source.drain()
            kinds[kind] += 1
            if kind == "repeat":
                repeat_calls += len(sandbox.state.request_log()) - before
        if source.handed_back:
            raise RuntimeError("a consent event failed in the bench")
        log = sandbox.state.request_log()
        consent_calls = len(log) - profile_calls
        lookups = len([r for r in log if r["route"] == "lookup"])
        return {
            "consent_events": events,
            "consent_changes": kinds["change"],
            "consent_repeats": kinds["repeat"],
            "consent_no_decision": kinds["none"],
            "consent_engage_calls_per_change": consent_calls / max(kinds["change"], 1),
            "consent_engage_calls_per_repeat": repeat_calls / max(kinds["repeat"], 1),
            "consent_lookups_per_customer": lookups / customers,
        }
    finally:
        sandbox.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.bench_consent", description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args(argv)
    from .bench import Bench

    bench = Bench(quick=True)
    try:
        figures = run(bench, args.customers, args.events)
    finally:
        bench.close()
    print(
        f"consent events: {figures['consent_events']} ({figures['consent_changes']} changes, "
        f"{figures['consent_repeats']} repeated states, {figures['consent_no_decision']} no decision)"
    )
    print(f"Engage calls per consent change: {figures['consent_engage_calls_per_change']:.3f} (target <= 1.1)")
    print(f"Engage calls per repeated state: {figures['consent_engage_calls_per_repeat']:.3f} (target 0)")
    print(f"Engage lookups per customer:     {figures['consent_lookups_per_customer']:.3f} (target <= 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
