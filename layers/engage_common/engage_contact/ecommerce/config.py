"""Each platform's deployment settings: its signing secret, its attribute mapping (built in, plus the user's),
the shops it accepts, and whether a customer Engage does not know is created (`createIfMissing`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..domain.attributes import PREFERENCE_FIELDS, AttributeCatalogue
from ..domain.creation import parse_create_if_missing
from ..domain.sparse_payload import build_sparse_payload
from ..errors import ConfigurationError, InvalidRequest
from .platforms import PLATFORMS, parse_attribute_map, shop_name


@dataclass(frozen=True)
class PlatformSettings:
    secret_arns: Mapping[str, str] = field(default_factory=dict)  # shopify / woocommerce -> ARN
    maps: Mapping[str, Mapping[str, tuple[str, str]]] = field(default_factory=dict)
    create_if_missing: Mapping[str, Mapping] = field(default_factory=dict)  # platform -> the commands' createIfMissing
    sources: Mapping[str, frozenset[str]] = field(default_factory=dict)  # platform -> accepted shops; absent: any
    send_only_changed: Mapping[str, bool] = field(default_factory=dict)  # platform -> its commands' flag; absent: on
    # platform -> the member attributes every promotion adds ({} for none); absent: customers are not promoted
    promote_on_account: Mapping[str, Mapping] = field(default_factory=dict)

    def shop_for(self, platform: str, shop: str) -> ShopConfig:
        """The settings a delivery of `platform` from `shop` is mapped by."""
        return ShopConfig(platform, shop_name(shop), self.maps.get(platform, {}),
                          self.create_if_missing.get(platform), self.promote_on_account.get(platform),
                          self.send_only_changed.get(platform, True))  # fmt: skip


ERASURE_CHOICES = ("record", "erase", "erase-including-members")


@dataclass(frozen=True)
class ShopConfig:
    """One shop's settings, as its deliveries are mapped."""

    platform: str
    shop: str  # its name as compared (`platforms.shop_name`)
    mapping: Mapping[str, tuple[str, str]]  # Engage attribute -> (source path, transform): built in plus the shop's
    create_if_missing: Mapping | None = None  # the commands' createIfMissing; None: unknown customers are not created
    promote_on_account: Mapping | None = None  # the member attributes every promotion adds; None: not promoted
    send_only_changed: bool = True
    # What a privacy topic of this shop does in Engage: "record" (our records only, the default), "erase" the
    # contact unless a Member, or "erase-including-members" (read by the erasure engine).
    erasure: str = "record"


# Set, a platform's customer Engage does not know is created; unset, it is dead-lettered as ContactNotFound.
CREATE_SETTINGS = {"shopify": "SHOPIFY_CREATE_IF_MISSING", "woocommerce": "WOOCOMMERCE_CREATE_IF_MISSING"}
# Unset or true, a platform's update commands send only what changed; false sends every mapped attribute.
ONLY_CHANGED_SETTINGS = {"shopify": "SHOPIFY_SEND_ONLY_CHANGED", "woocommerce": "WOOCOMMERCE_SEND_ONLY_CHANGED"}
# true (or a JSON object {"attributes": {...}}): a customer with an account is promoted to Member too.
PROMOTE_SETTINGS = {"shopify": "SHOPIFY_PROMOTE_ON_ACCOUNT", "woocommerce": "WOOCOMMERCE_PROMOTE_ON_ACCOUNT"}


def platform_settings(env: Mapping[str, str], catalogue: AttributeCatalogue) -> PlatformSettings:
    """Read and check every platform's settings; ConfigurationError names the variable."""
    arns, maps, sources = {}, {}, {}
    for name, platform in PLATFORMS.items():
        arn = env.get(platform.secret_setting, "").strip()
        if arn:
            arns[name] = arn
        try:
            extra = parse_attribute_map(env.get(platform.map_setting, "").strip() or None, platform.map_setting)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        for target in extra:
            problem = _target_problem(target, catalogue)
            if problem:
                raise ConfigurationError(f"{platform.map_setting}: {problem}")
        maps[name] = {**platform.mapping, **extra}
        shops = frozenset(shop_name(s) for s in env.get(platform.source_setting, "").split(",") if s.strip())
        if shops:
            sources[name] = shops
    creates = {name: c for name, setting in CREATE_SETTINGS.items() if (c := _create_if_missing(env, setting))}
    only_changed = {name: _flag(env, setting, default=True) for name, setting in ONLY_CHANGED_SETTINGS.items()}
    promotes = {name: _member_attributes(p, setting, catalogue) for name, setting in PROMOTE_SETTINGS.items()
                if (p := promote_on_account(env, setting)) is not None}  # fmt: skip
    return PlatformSettings(arns, maps, creates, sources, only_changed, promotes)


def _flag(env: Mapping[str, str], setting: str, *, default: bool) -> bool:
    raw = env.get(setting, "").strip().lower()
    if raw not in ("", "true", "false"):
        raise ConfigurationError(f"{setting} must be true or false, not {raw!r}")
    return default if not raw else raw == "true"


def promote_on_account(env: Mapping[str, str], setting: str) -> dict | None:
    """The setting as given: None (off: unset or false), or {"attributes": {...}} (true is no attributes)."""
    raw = env.get(setting, "").strip()
    try:
        data = json.loads(raw.lower() if raw.lower() in ("true", "false") else raw) if raw else False
    except ValueError as exc:
        raise ConfigurationError(f"{setting} must be true, false or a JSON object") from exc
    if data is False:
        return None
    if data is True:
        return {}
    if not isinstance(data, dict) or set(data) - {"attributes"} or not isinstance(data.get("attributes", {}), dict):
        raise ConfigurationError(f'{setting} must be true, false or a JSON object {{"attributes": {{...}}}}')
    return data


def _member_attributes(data: dict, setting: str, catalogue: AttributeCatalogue) -> dict:
    """The attributes every promotion of the platform adds, checked as a command's would be."""
    attributes = data.get("attributes") or {}
    try:
        build_sparse_payload(attributes, (), catalogue, require_data=False)
    except InvalidRequest as exc:
        raise ConfigurationError(f"{setting}: {exc.message}") from exc
    return attributes


def _create_if_missing(env: Mapping[str, str], setting: str) -> dict | None:
    """The JSON `createIfMissing` object a platform's update commands carry, checked as a command's would be."""
    raw = env.get(setting, "").strip()
    if not raw:
        return None
    try:
        data = json.loads(raw)
        parse_create_if_missing(data, creates_member=False)
    except ValueError as exc:
        raise ConfigurationError(f"{setting} is not JSON") from exc
    except InvalidRequest as exc:
        raise ConfigurationError(f"{setting}: {exc.message}") from exc
    return data


def _target_problem(target: str, catalogue: AttributeCatalogue) -> str | None:
    parent, _, child = target.partition(".")
    if child and (parent != "preferences" or child not in PREFERENCE_FIELDS):
        return f"'{target}' is not a preference"
    return catalogue.problem_with_name(parent)
