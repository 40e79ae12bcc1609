"""The shops' privacy topics as privacy commands, for the erase function's queue.

Shopify (its mandatory compliance topics, and a deleted customer):
- `customers/redact`: `{shop_id, shop_domain, customer: {id, email, phone}, orders_to_redact}` → erase;
- `customers/data_request`: `{shop_id, shop_domain, orders_requested, customer: {id, email, phone},
  data_request: {id}}` → data request;
- `shop/redact` (48 hours after the shop uninstalled the app): `{shop_id, shop_domain}` → erase-shop;
- `customers/delete`: the deleted customer's `{id, …}` (no email) → erase by the shop's customer id.
WooCommerce: `customer.deleted` carries `{"id": N}` only → erase by the shop's customer id.

Each is answered 200 once queued. The shop is the signed body's `shop_domain` where there is one, else the
delivery's shop header (a filter the route has checked already).
"""

from __future__ import annotations

from typing import Any

from ..domain.attributes import EMAIL
from ..domain.contacts import message_group
from ..domain.json_body import decode_json
from ..errors import InvalidRequest
from .command import DATA_REQUEST, ERASE, ERASE_SHOP, parse_privacy_command
from .records import digest

MAX_BODY_BYTES = 256 * 1024
TOPICS = {
    "shopify": {"customers/redact": ERASE, "customers/data_request": DATA_REQUEST, "shop/redact": ERASE_SHOP,
                "customers/delete": ERASE},
    "woocommerce": {"customer.deleted": ERASE},
}  # fmt: skip


def is_privacy_topic(platform: str, topic: str) -> bool:
    return topic in TOPICS.get(platform, {})


def privacy_command(
    platform: str, topic: str, raw: bytes, shop: str, key: str, erasure: str | None = None
) -> tuple[dict[str, Any], str]:
    """(the command, its message group) for a verified delivery of a privacy topic; InvalidRequest when the body
    does not name what the topic needs (the platform is answered 400 and retries: never dropped in silence)."""
    body = decode_json(raw, MAX_BODY_BYTES)
    if not isinstance(body, dict):
        raise InvalidRequest("the privacy request's body is not a JSON object")
    request = TOPICS[platform][topic]
    # the shop as the shops document names it (the route found it there), else as the body names it
    if not shop and isinstance(body.get("shop_domain"), str):
        shop = body["shop_domain"].strip().lower()
    if not shop or not shop.strip():
        raise InvalidRequest("the privacy request names no shop")
    command: dict[str, Any] = {"request": request, "source": f"{platform} {topic}", "idempotencyKey": key}
    if erasure is not None and request != DATA_REQUEST:  # the shop's choice, from the shops document
        command["erasure"] = erasure
    if request == ERASE_SHOP:
        command["shop"] = {"platform": platform, "shop": shop}
        parse_privacy_command(command)
        return command, f"shop:{digest(platform, shop)}"
    customer = body.get("customer")
    if not isinstance(customer, dict):
        customer = body
    customer_id = customer.get("id")
    if isinstance(customer_id, int | str) and not isinstance(customer_id, bool) and str(customer_id).strip():
        command["shopCustomer"] = {"platform": platform, "shop": shop, "id": str(customer_id).strip()}
    email = customer.get("email")
    if isinstance(email, str) and EMAIL.fullmatch(email.strip()):  # anything else: by the customer id alone
        command["lookup"] = {"email": email.strip()}
    parse_privacy_command(command)  # a body that names no one is refused here, at the route
    group = (
        message_group(command)
        if "lookup" in command
        else f"shop-customer:{digest(platform, shop, command['shopCustomer']['id'])}"
    )
    return command, group
