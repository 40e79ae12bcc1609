"""Sign a request as its sender does: Standard Webhooks for the API, Shopify's and WooCommerce's own way for theirs.

For local.send, the tests and your own callers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import uuid

from standardwebhooks import Webhook


def new_secret() -> str:
    """A fresh signing secret in the scheme's own form, whsec_<base64 key>."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(
    secret: str | list[str], body: str | bytes, msg_id: str | None = None, timestamp: dt.datetime | None = None
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` (one signature per secret given)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or dt.datetime.now(tz=dt.UTC)
    keys = [secret] if isinstance(secret, str) else secret
    signatures = " ".join(Webhook(key).sign(msg_id, timestamp, text) for key in keys)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }


def platform_signature(secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(raw body, secret as UTF-8)): how Shopify and WooCommerce both sign a webhook."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def platform_headers(
    platform: str,
    secret: str,
    body: bytes,
    topic: str | None = None,
    delivery_id: str | None = None,
    now: dt.datetime | None = None,
    shop: str | None = None,
) -> dict[str, str]:
    """The headers `platform` (shopify or woocommerce) sends with a customer webhook, signed with `secret`, from
    `shop` (its domain or source URL)."""
    now = now or dt.datetime.now(tz=dt.UTC)
    signature = platform_signature(secret, body)
    if platform == "shopify":
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic or "customers/update",
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": shop or "example.myshopify.com",
            "X-Shopify-Webhook-Id": delivery_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "X-Shopify-API-Version": "2025-10",
        }
    if platform == "woocommerce":
        topic = topic or "customer.updated"
        resource, _, event = topic.partition(".")
        return {
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": shop or "http://127.0.0.1/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": signature,
            "X-WC-Webhook-ID": "1",
            "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
        }
    raise ValueError(f"unknown platform {platform!r}")


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "python -m local.send, which signs with the running stack's secrets")
