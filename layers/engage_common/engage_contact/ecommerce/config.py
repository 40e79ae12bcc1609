"""Each platform's deployment settings: signing secret, attribute mapping (built in plus the user's), shops."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..domain.attributes import PREFERENCE_FIELDS, AttributeCatalogue
from ..errors import ConfigurationError
from .platforms import PLATFORMS, parse_attribute_map, shop_name


@dataclass(frozen=True)
class PlatformSettings:
    secret_arns: Mapping[str, str] = field(default_factory=dict)  # shopify / woocommerce -> ARN
    maps: Mapping[str, Mapping[str, tuple[str, str]]] = field(default_factory=dict)
    sources: Mapping[str, frozenset[str]] = field(default_factory=dict)  # platform -> accepted shops; absent: any


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
    return PlatformSettings(arns, maps, sources)


def _target_problem(target: str, catalogue: AttributeCatalogue) -> str | None:
    parent, _, child = target.partition(".")
    if child and (parent != "preferences" or child not in PREFERENCE_FIELDS):
        return f"'{target}' is not a preference"
    return catalogue.problem_with_name(parent)
