"""Whether a shop's erasures are passed on to Engage: the deployment's choice per shop, off by default.

To be replaced by the shops document's per-shop `erasure` field: until then one setting of its own,
`SHOP_ERASURE_POLICY`, read by `erasure_policies` and asked through `erasure_policy`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..errors import ConfigurationError

RECORD = "record"  # our own records only: nothing is sent to Engage
ERASE = "erase"  # Engage's delete for the contact the key finds, never a Member
ERASE_MEMBERS = "erase-including-members"  # Members too: their loyalty history is the retailer's to give up
POLICIES = (RECORD, ERASE, ERASE_MEMBERS)
SETTING = "SHOP_ERASURE_POLICY"
DEFAULT_KEY = "*"


def shop_key(platform: str, shop: str) -> str:
    """A shop as the setting names it: `shopify:example.myshopify.com`, `woocommerce:https://shop.example.com`."""
    return f"{platform}:{shop.strip().lower().rstrip('/')}"


def erasure_policies(raw: str | None) -> dict[str, str]:
    """The setting: JSON {"shopify:example.myshopify.com": "erase", "*": "record"}; empty is record for all."""
    if not raw or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{SETTING} is not JSON") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f'{SETTING} must be a JSON object like {{"shopify:shop.myshopify.com": "erase"}}')
    policies = {}
    for name, policy in data.items():
        if policy not in POLICIES:
            raise ConfigurationError(f"{SETTING}: {name!r} must be one of {', '.join(POLICIES)}, not {policy!r}")
        platform, _, shop = name.partition(":")
        policies[name if name == DEFAULT_KEY else shop_key(platform, shop)] = policy
    return policies


def erasure_policy(policies: Mapping[str, str], platform: str, shop: str | None) -> str:
    """The erasure policy of a platform's shop: its own entry, else the default entry, else `record`."""
    if shop:
        named = policies.get(shop_key(platform, shop))
        if named is not None:
            return named
    return policies.get(DEFAULT_KEY, RECORD)
