"""The shops a deployment serves: one validated document, each shop with its signing secret and its settings.

The document is a Secrets Manager secret (it holds the shops' signing secrets), its ARN in SHOPS_SECRET_ARN:

    {"shopify": {"example.myshopify.com": {"secret": "...", "createIfMissing": {...}, ...}},
     "woocommerce": {"https://shop.example.com": {"secret": {"current": "...", "previous": "..."}}}}

A shop is named as its deliveries name it (X-Shopify-Shop-Domain, X-WC-Webhook-Source). A delivery from a
shop the document does not list is refused: a public app's secret is shared by every store that installs it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..domain.attributes import PREFERENCE_FIELDS, AttributeCatalogue
from ..domain.creation import parse_create_if_missing
from ..domain.sparse_payload import build_sparse_payload
from ..errors import ConfigurationError, DependencyUnavailable, InvalidRequest
from .platforms import PLATFORMS, parse_attribute_map, shop_name

SHOPS_SETTING = "SHOPS_SECRET_ARN"
ERASURE_CHOICES = ("record", "erase", "erase-including-members")
SHOP_FIELDS = ("secret", "createIfMissing", "attributeMap", "promoteOnAccount", "sendOnlyChanged", "erasure")
# The variables the document replaced: set, the deployment is told at start what to write instead (a secret
# without its shops would accept any shop that holds it).
RETIRED_SETTINGS = {
    f"{prefix}_{name}": (platform, field_name)
    for platform, prefix in (("shopify", "SHOPIFY"), ("woocommerce", "WOOCOMMERCE"))
    for name, field_name in (
        ("WEBHOOK_SECRET_ARN", "secret"),
        ("CREATE_IF_MISSING", "createIfMissing"),
        ("ATTRIBUTE_MAP", "attributeMap"),
        ("PROMOTE_ON_ACCOUNT", "promoteOnAccount"),
        ("SEND_ONLY_CHANGED", "sendOnlyChanged"),
    )
} | {"SHOPIFY_SHOP_DOMAINS": ("shopify", None), "WOOCOMMERCE_SOURCE_URLS": ("woocommerce", None)}
EXAMPLE_SHOP = {"shopify": "your-shop.myshopify.com", "woocommerce": "https://your-shop.example.com"}


@dataclass(frozen=True)
class ShopConfig:
    """One shop's settings, as its deliveries are verified and mapped."""

    platform: str
    shop: str  # its name as compared (`platforms.shop_name`)
    mapping: Mapping[str, tuple[str, str]]  # Engage attribute -> (source path, transform): built in plus the shop's
    create_if_missing: Mapping | None = None  # the commands' createIfMissing; None: unknown customers are not created
    promote_on_account: Mapping | None = None  # the member attributes every promotion adds; None: not promoted
    send_only_changed: bool = True
    # What a privacy topic of this shop does in Engage: "record" (our records only, the default), "erase" the
    # contact unless a Member, or "erase-including-members" (read by the erasure engine).
    erasure: str = "record"
    secrets: tuple[str, ...] = field(default=(), repr=False)  # the signing secret: current, then previous


@dataclass(frozen=True)
class Shops:
    """The document, checked: platform -> shop name -> its settings."""

    by_platform: Mapping[str, Mapping[str, ShopConfig]] = field(default_factory=dict)

    def find(self, platform: str, shop: str) -> ShopConfig | None:
        return self.by_platform.get(platform, {}).get(shop_name(shop or ""))

    def serves(self, platform: str) -> bool:
        return bool(self.by_platform.get(platform))

    def promoting(self) -> list[ShopConfig]:
        return [s for shops in self.by_platform.values() for s in shops.values() if s.promote_on_account is not None]


@dataclass(frozen=True)
class PlatformSettings:
    """Where the shops document is (None: no platform route is served)."""

    shops_secret_arn: str | None = None


def platform_settings(env: Mapping[str, str]) -> PlatformSettings:
    """SHOPS_SECRET_ARN; a retired variable set stops the function, saying exactly what to write instead."""
    retired = [name for name in RETIRED_SETTINGS if env.get(name, "").strip()]
    if retired:
        raise ConfigurationError(retired_message(retired))
    return PlatformSettings(env.get(SHOPS_SETTING, "").strip() or None)


def retired_message(names: list[str]) -> str:
    platform = RETIRED_SETTINGS[names[0]][0]
    fields = sorted({f for n in names if (f := RETIRED_SETTINGS[n][1]) and RETIRED_SETTINGS[n][0] == platform})
    example = {
        platform: {
            EXAMPLE_SHOP[platform]: {"secret": "<its signing secret>"}
            | {f: "<the value of the variable>" for f in fields if f != "secret"}
        }
    }
    return (
        f"{', '.join(names)} no longer configure{'s' if len(names) == 1 else ''} the platforms: every shop must "
        f"be named, with its own settings, in one shops document. Put a Secrets Manager secret holding "
        f"{json.dumps(example)} (each shop as its deliveries name it; see docs/platforms.md), set {SHOPS_SETTING} "
        f"to its ARN, and remove {', '.join(names)}"
    )


def parse_shops(raw: str, catalogue: AttributeCatalogue) -> Shops:
    """The shops document checked; ConfigurationError names the shop and the field."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"the shops document ({SHOPS_SETTING}) is not JSON") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"the shops document ({SHOPS_SETTING}) must be a JSON object of platforms")
    unknown = sorted(set(data) - set(PLATFORMS))
    if unknown:
        raise ConfigurationError(f"the shops document names no platform {unknown[0]!r}; it takes {sorted(PLATFORMS)}")
    by_platform: dict[str, dict[str, ShopConfig]] = {}
    for platform, shops in data.items():
        if not isinstance(shops, dict) or not shops:
            raise ConfigurationError(f"shops document: '{platform}' must be an object of shops, each by its name")
        by_platform[platform] = {}
        for name, settings in shops.items():
            shop = _parse_shop(platform, name, settings, catalogue)
            if shop.shop in by_platform[platform]:
                raise ConfigurationError(f"shops document: {platform} shop '{name}' is listed twice")
            by_platform[platform][shop.shop] = shop
    return Shops(by_platform)


def _parse_shop(platform: str, name: str, data: Any, catalogue: AttributeCatalogue) -> ShopConfig:
    where = f"shops document: {platform} shop '{name}'"
    if not shop_name(name):
        raise ConfigurationError(f"shops document: a {platform} shop has an empty name")
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where} must be an object of its settings")
    unknown = sorted(set(data) - set(SHOP_FIELDS))
    if unknown:
        raise ConfigurationError(f"{where}: '{unknown[0]}' is not a shop setting; it takes {', '.join(SHOP_FIELDS)}")
    only_changed = data.get("sendOnlyChanged", True)
    if not isinstance(only_changed, bool):
        raise ConfigurationError(f"{where}: 'sendOnlyChanged' must be true or false")
    erasure = data.get("erasure", "record")
    if erasure not in ERASURE_CHOICES:
        raise ConfigurationError(f"{where}: 'erasure' must be one of {', '.join(ERASURE_CHOICES)}")
    return ShopConfig(
        platform=platform,
        shop=shop_name(name),
        mapping={**PLATFORMS[platform].mapping, **_attribute_map(data.get("attributeMap"), where, catalogue)},
        create_if_missing=_create_if_missing(data.get("createIfMissing"), where),
        promote_on_account=_promote_on_account(data.get("promoteOnAccount", False), where, catalogue),
        send_only_changed=only_changed,
        erasure=erasure,
        secrets=_secrets(data.get("secret"), where),
    )


def _secrets(value: Any, where: str) -> tuple[str, ...]:
    """The shop's signing secret as the platform gives it, or {"current": ..., "previous": ...} while rotating."""
    given = (
        [value]
        if isinstance(value, str)
        else [value.get(k) for k in ("current", "previous")]
        if isinstance(value, dict)
        else []
    )
    if isinstance(value, dict) and set(value) - {"current", "previous"}:
        given = []
    found = tuple(s.strip() for s in given if isinstance(s, str) and s.strip())
    if not found:
        raise ConfigurationError(
            f'{where}: \'secret\' must be its signing secret, or {{"current": ..., "previous": ...}}'
        )
    return found


def _attribute_map(value: Any, where: str, catalogue: AttributeCatalogue) -> dict[str, tuple[str, str]]:
    if value is None:
        return {}
    try:
        extra = parse_attribute_map(json.dumps(value), f"{where}: 'attributeMap'")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    for target in extra:
        problem = _target_problem(target, catalogue)
        if problem:
            raise ConfigurationError(f"{where}: 'attributeMap': {problem}")
    return extra


def _create_if_missing(value: Any, where: str) -> dict | None:
    """The `createIfMissing` object the shop's update commands carry, checked as a command's would be."""
    if value is None:
        return None
    try:
        parse_create_if_missing(value, creates_member=False)
    except InvalidRequest as exc:
        raise ConfigurationError(f"{where}: 'createIfMissing': {exc.message}") from exc
    return value


def _promote_on_account(value: Any, where: str, catalogue: AttributeCatalogue) -> dict | None:
    """None (false: off), or the member attributes every promotion adds (true: none)."""
    if value is False:
        return None
    if value is True:
        return {}
    if not isinstance(value, dict) or set(value) - {"attributes"} or not isinstance(value.get("attributes", {}), dict):
        raise ConfigurationError(f"{where}: 'promoteOnAccount' must be true, false or {{\"attributes\": {{...}}}}")
    attributes = value.get("attributes") or {}
    try:
        build_sparse_payload(attributes, (), catalogue, require_data=False)
    except InvalidRequest as exc:
        raise ConfigurationError(f"{where}: 'promoteOnAccount': {exc.message}") from exc
    return attributes


def _target_problem(target: str, catalogue: AttributeCatalogue) -> str | None:
    parent, _, child = target.partition(".")
    if child and (parent != "preferences" or child not in PREFERENCE_FIELDS):
        return f"'{target}' is not a preference"
    return catalogue.problem_with_name(parent)


class ShopsSource:
    """The shops document as the container reads it: through the secrets cache (a rotation is seen within
    minutes), parsed once per version of it. Checked at start; a bad version later answers 503."""

    def __init__(self, arn: str, read: Any, catalogue: AttributeCatalogue) -> None:
        """`read(arn, parse)`: the container's cached secret reader."""
        self.arn = arn
        self.read = read
        self.catalogue = catalogue
        self._lock = threading.Lock()
        self._parsed: tuple[str, Shops] | None = None

    def get(self) -> Shops:
        return self.read(self.arn, self._parse)

    def check(self) -> Shops:
        """At start: the document read and checked; ConfigurationError names the shop and the field."""
        try:
            return self.get()
        except DependencyUnavailable as exc:
            if isinstance(exc.__cause__, ConfigurationError):
                raise exc.__cause__ from None
            raise

    def _parse(self, raw: str) -> Shops:
        with self._lock:
            if self._parsed is not None and self._parsed[0] == raw:
                return self._parsed[1]
        try:
            shops = parse_shops(raw, self.catalogue)
        except ConfigurationError as exc:  # a bad version written while running: 503 until it is mended
            raise DependencyUnavailable(f"the shops document is unusable: {exc}") from exc
        with self._lock:
            self._parsed = (raw, shops)
        return shops
