"""Each platform's deployment settings: its signing secret, its attribute mapping (built in, plus the user's),
the shops it accepts, and whether a customer Engage does not know is created (`createIfMissing`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..domain.attributes import PREFERENCE_FIELDS, AttributeCatalogue
from ..domain.creation import parse_create_if_missing
from ..errors import ConfigurationError, InvalidRequest
from .platforms import PLATFORMS, parse_attribute_map, shop_name


@dataclass(frozen=True)
class PlatformSettings:
    secret_arns: Mapping[str, str] = field(default_factory=dict)  # shopify / woocommerce -> ARN
    maps: Mapping[str, Mapping[str, tuple[str, str]]] = field(default_factory=dict)
    create_if_missing: Mapping[str, Mapping] = field(default_factory=dict)  # platform -> the commands' createIfMissing
    sources: Mapping[str, frozenset[str]] = field(default_factory=dict)  # platform -> accepted shops; absent: any


# Set, a platform's customer Engage does not know is created; unset, it is dead-lettered as ContactNotFound.
CREATE_SETTINGS = {"shopify": "SHOPIFY_CREATE_IF_MISSING", "woocommerce": "WOOCOMMERCE_CREATE_IF_MISSING"}


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
    return PlatformSettings(arns, maps, creates, sources)


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
