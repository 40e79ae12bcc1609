"""The erase function's one command shape: an erasure, a data request, or a shop's erasure, checked."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..domain.command import IDEMPOTENCY_KEY_MAX, _parse_lookup, text_field
from ..domain.contacts import Lookup, check_contact_id
from ..errors import InvalidRequest
from .policy import POLICIES

ERASE, DATA_REQUEST, ERASE_SHOP = "erase", "data-request", "erase-shop"
REQUESTS = (ERASE, DATA_REQUEST, ERASE_SHOP)
PLATFORMS = ("shopify", "woocommerce")
FIELDS = frozenset({"request", "contactId", "lookup", "shopCustomer", "shop", "erasure", "source", "idempotencyKey"})
SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,63}")


@dataclass(frozen=True)
class ShopCustomer:
    platform: str
    shop: str
    customer_id: str


@dataclass(frozen=True)
class PrivacyCommand:
    request: str
    contact_id: str | None = None
    lookup: Lookup | None = None
    shop_customer: ShopCustomer | None = None
    shop: tuple[str, str] | None = None  # (platform, shop): erase-shop
    erasure: str | None = None  # None: the shop's policy (a command without a shop: record)
    source: str = "command"
    idempotency_key: str | None = None


def parse_privacy_command(data: object) -> PrivacyCommand:
    """Check a privacy command; InvalidRequest names what is wrong."""
    if not isinstance(data, dict):
        raise InvalidRequest("the command must be a JSON object")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise InvalidRequest(
            f"{unknown[0][:40]!r} does not belong to a privacy command; it takes {', '.join(sorted(FIELDS))}",
            {"fields": [u[:40] for u in unknown[:5]]},
        )
    request, key, source, erasure = _common(data)
    if request == ERASE_SHOP:
        if set(data) & {"contactId", "lookup", "shopCustomer"} or "shop" not in data:
            raise InvalidRequest("an erase-shop request names a 'shop' ({platform, shop}) and no person")
        shop = _platform_and_shop(data["shop"], "shop")
        return PrivacyCommand(request, shop=shop, erasure=erasure, source=source, idempotency_key=key)
    if "shop" in data:
        raise InvalidRequest("'shop' belongs to an erase-shop request", {"field": "shop"})
    if ("contactId" in data) and ("lookup" in data):
        raise InvalidRequest("give at most one of 'contactId' and 'lookup'")
    contact_id = check_contact_id(data["contactId"]) if "contactId" in data else None
    lookup = _parse_lookup(data["lookup"]) if "lookup" in data else None
    shop_customer = _shop_customer(data["shopCustomer"]) if "shopCustomer" in data else None
    if contact_id is None and lookup is None and shop_customer is None:
        raise InvalidRequest("name the person: 'contactId', 'lookup' or 'shopCustomer'")
    return PrivacyCommand(request, contact_id, lookup, shop_customer, None, erasure, source, key)


def _common(data: dict) -> tuple[str, str | None, str, str | None]:
    """(request, idempotency key, source, erasure) of a privacy command."""
    request = data.get("request", ERASE)
    if request not in REQUESTS:
        raise InvalidRequest(f"'request' must be one of {', '.join(REQUESTS)}", {"field": "request"})
    key = text_field(data, "idempotencyKey", IDEMPOTENCY_KEY_MAX) if "idempotencyKey" in data else None
    source = text_field(data, "source", 64) if "source" in data else "command"
    if not SOURCE.fullmatch(source):
        raise InvalidRequest("'source' must be a short name (letters, digits, ._:/- and spaces)", {"field": "source"})
    erasure = data.get("erasure")
    if erasure is not None and (request == DATA_REQUEST or erasure not in POLICIES):
        raise InvalidRequest(
            f"'erasure' belongs to an erasure and is one of {', '.join(POLICIES)}", {"field": "erasure"}
        )
    return request, key, source, erasure


def _platform_and_shop(data: object, where: str) -> tuple[str, str]:
    if not isinstance(data, dict) or data.get("platform") not in PLATFORMS:
        raise InvalidRequest(f"'{where}.platform' must be one of {', '.join(PLATFORMS)}", {"field": where})
    return data["platform"], text_field(data, "shop", 256, f"{where}.shop") if "shop" in data else _missing(where)


def _missing(where: str) -> str:
    raise InvalidRequest(f"'{where}.shop' is required (the shop's domain or source URL)", {"field": f"{where}.shop"})


def _shop_customer(data: object) -> ShopCustomer:
    platform, shop = _platform_and_shop(data, "shopCustomer")
    if not isinstance(data, dict) or "id" not in data:  # (an object: _platform_and_shop has checked that)
        raise InvalidRequest("'shopCustomer.id' is required (the shop's customer id)", {"field": "shopCustomer.id"})
    customer = data["id"]
    customer = str(customer) if isinstance(customer, int) and not isinstance(customer, bool) else customer
    if not isinstance(customer, str) or not re.fullmatch(r"[A-Za-z0-9_:/.-]{1,128}", customer):
        raise InvalidRequest("'shopCustomer.id' must be the shop's customer id", {"field": "shopCustomer.id"})
    return ShopCustomer(platform, shop, customer)
