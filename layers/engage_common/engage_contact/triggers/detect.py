"""Which trigger sent an event, told by its shape alone (cheap: nothing heavy is imported here)."""

from __future__ import annotations

from typing import Any


def is_sqs_event(event: Any) -> bool:
    """SQS: `Records`, every one with `eventSource` `aws:sqs`."""
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        bool(records)
        and isinstance(records, list)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def is_api_event(event: Any) -> bool:
    """API Gateway: a REST proxy event (payload v1) or an HTTP API event (v2)."""
    return isinstance(event, dict) and "requestContext" in event and ("httpMethod" in event or "routeKey" in event)


def is_shopify_eventbridge_event(event: Any) -> bool:
    """An event from a Shopify partner event source on EventBridge (its rule targets the update path)."""
    return (
        isinstance(event, dict)
        and isinstance(event.get("detail"), dict)
        and "detail-type" in event
        and str(event.get("source", "")).startswith("aws.partner/shopify.com")
    )
