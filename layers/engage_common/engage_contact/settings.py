"""Configuration: read once per container, validated, failing at start-up with the variable's name.

The one module that reads the environment (with the composition root, `container`, which calls it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .domain.attributes import CUSTOM_ATTRIBUTE_ID, AttributeCatalogue
from .ecommerce.config import PlatformSettings, platform_settings
from .engage.versions import DEFAULT_VERSION, VERSIONS
from .errors import ConfigurationError
from .privacy.config import PrivacySettings, privacy_settings
from .triggers.backoff import MAX_TOLERANCE_HOURS, max_receive_count_for

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_TIMEOUT_SECONDS = 5.0
# Records of different contacts in one SQS batch handled at once.
DEFAULT_BATCH_CONCURRENCY = 10
# The whole deployment's requests per second toward Engage (every function, trigger and container), under 50/s.
DEFAULT_REQUESTS_PER_SECOND = 45.0
# An Engage outage queued work survives before it is dead-lettered (the queues' maxReceiveCount follows).
DEFAULT_OUTAGE_TOLERANCE_HOURS = 6.0
# How long an entry of what Engage last confirmed counts (only what changed); 0 keeps no record at all.
DEFAULT_SENT_DIGESTS_TTL_DAYS = 30.0


@dataclass(frozen=True)
class Settings:
    engage_base_url: str
    api_key_secret_arn: str
    catalogue: AttributeCatalogue
    # the deployment's digest key (domain.digest_key): every function reads it, none derives it from another
    digest_key_secret_arn: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    webhook_secret_arn: str | None = None
    webhook_signing: bool = True
    idempotency_table: str | None = None
    dead_letter_queue_url: str | None = None
    update_queue_url: str | None = None
    max_receive_count: int | None = None  # None: never dead-lettered for its receive count by the code
    batch_concurrency: int = DEFAULT_BATCH_CONCURRENCY
    platforms: PlatformSettings = field(default_factory=PlatformSettings)
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    # Containers the template lets run at once: the fallback share of the budget is 1/this of it.
    containers_at_once: int = 1
    engage_api_version: str = DEFAULT_VERSION  # only the Engage client acts on it
    promote_queue_url: str | None = None  # where a shop customer who opened an account is promoted
    sent_digests_ttl_days: float = DEFAULT_SENT_DIGESTS_TTL_DAYS
    erase_queue_url: str | None = None  # where the shops' privacy requests go (the erase function's queue)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    backfill_queue_url: str | None = None  # the backfill's own queue (chunks of rows), apart from live traffic
    bulk_max: int = 4000  # contacts in one bulk request (BACKFILL_BULK_MAX, at most Engage's 4,000)
    # the part of the budget a backfill may use: live calls always find the rest free (BACKFILL_RATE_SHARE)
    backfill_rate_share: float = 0.8
    # the backfill writer's containers that may run at once (BACKFILL_WRITER_CONTAINERS, the template's reserved
    # concurrency): each paces at its part of the share, so together they keep to it
    backfill_writer_containers: int = 1
    # a backfill's bulk updates ask Engage not to trigger its BI and XML contact exports
    # (BACKFILL_AVOID_TRIGGERING_EXPORT, default false: Engage's own default, the exports see every change)
    avoid_triggering_export: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        catalogue = _catalogue(env)
        return cls(
            engage_base_url=_base_url(env),
            api_key_secret_arn=_required(env, "ENGAGE_API_KEY_SECRET_ARN"),
            catalogue=catalogue,
            digest_key_secret_arn=_required(env, "DIGEST_KEY_SECRET_ARN"),
            timeout_seconds=_number(env, "ENGAGE_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, 0.09, 60, "seconds"),
            webhook_secret_arn=_webhook_secret(env),
            webhook_signing=_signing(env),
            idempotency_table=_optional(env, "IDEMPOTENCY_TABLE"),
            dead_letter_queue_url=_optional(env, "DEAD_LETTER_QUEUE_URL"),
            update_queue_url=_optional(env, "UPDATE_QUEUE_URL"),
            max_receive_count=_max_receive_count(env),
            batch_concurrency=_positive_int(env, "SQS_BATCH_CONCURRENCY") or DEFAULT_BATCH_CONCURRENCY,
            requests_per_second=_number(
                env, "ENGAGE_REQUESTS_PER_SECOND", DEFAULT_REQUESTS_PER_SECOND, 0, 200, "requests per second"
            ),
            containers_at_once=_positive_int(env, "ENGAGE_CONTAINERS_AT_ONCE") or 1,
            platforms=platform_settings(env),
            engage_api_version=_api_version(env),
            promote_queue_url=_promote_queue_url(env),
            sent_digests_ttl_days=_sent_digests_ttl_days(env),
            erase_queue_url=_optional(env, "ERASE_QUEUE_URL"),
            privacy=privacy_settings(env),
            backfill_queue_url=_optional(env, "BACKFILL_QUEUE_URL"),
            bulk_max=min(_positive_int(env, "BACKFILL_BULK_MAX") or 4000, 4000),
            backfill_rate_share=_number(env, "BACKFILL_RATE_SHARE", 0.8, 0.05, 1, "share of the budget"),
            avoid_triggering_export=_true_or_false(env, "BACKFILL_AVOID_TRIGGERING_EXPORT"),
            backfill_writer_containers=_positive_int(env, "BACKFILL_WRITER_CONTAINERS") or 1,
        )


def _true_or_false(env: Mapping[str, str], name: str) -> bool:
    value = (_optional(env, name) or "false").lower()
    if value not in ("true", "false"):
        raise ConfigurationError(f"{name} must be 'true' or 'false', not {value!r}")
    return value == "true"


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _required(env: Mapping[str, str], name: str) -> str:
    value = _optional(env, name)
    if value is None:
        raise ConfigurationError(f"{name} is not set")
    return value


def _base_url(env: Mapping[str, str]) -> str:
    name = "ENGAGE_BASE_URL"
    raw = _required(env, name)
    try:
        url = urlsplit(raw)
        host = url.hostname
        url.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ConfigurationError(f"{name} is not a URL: {exc}") from exc
    if url.scheme == "http" and host in LOOPBACK_HOSTS:
        pass  # the local sandbox
    elif url.scheme != "https":
        raise ConfigurationError(f"{name} must use https (http is allowed for 127.0.0.1 and localhost only)")
    if not host or url.username or url.password or url.query or url.fragment or url.path not in ("", "/"):
        raise ConfigurationError(f"{name} must be the tenant's base URL only, like https://tenant.voyado.com")
    return f"{url.scheme}://{url.netloc}"


def _catalogue(env: Mapping[str, str]) -> AttributeCatalogue:
    name = "ENGAGE_CUSTOM_ATTRIBUTES"
    ids = [part.strip() for part in env.get(name, "").split(",") if part.strip()]
    bad = [i for i in ids if not CUSTOM_ATTRIBUTE_ID.fullmatch(i)]
    if bad:
        raise ConfigurationError(f"{name} holds names that are not attribute ids: {', '.join(bad)}")
    try:
        return AttributeCatalogue(frozenset(ids))
    except ValueError as exc:
        raise ConfigurationError(f"{name}: {exc}") from exc


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float, unit: str) -> float:
    """A number within (low, high]; the variable is named when it is not."""
    raw = _optional(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low < value <= high:
        raise ConfigurationError(f"{name} must be a number of {unit} above {low} and at most {high}, not {raw!r}")
    return value


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = _optional(env, name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, not {raw!r}")
    return int(raw)


def _api_version(env: Mapping[str, str]) -> str:
    name = "ENGAGE_API_VERSION"
    value = (_optional(env, name) or DEFAULT_VERSION).lower()
    if value not in VERSIONS:
        raise ConfigurationError(f"{name} must be one of {', '.join(VERSIONS)}, not {value!r}")
    return value


def _max_receive_count(env: Mapping[str, str]) -> int:
    """SQS_MAX_RECEIVE_COUNT, else the count QUEUE_OUTAGE_TOLERANCE_HOURS (default 6) needs; set both, they agree."""
    name = "QUEUE_OUTAGE_TOLERANCE_HOURS"
    hours = _number(env, name, DEFAULT_OUTAGE_TOLERANCE_HOURS, 0, MAX_TOLERANCE_HOURS, "hours")
    derived = max_receive_count_for(hours)
    given = _positive_int(env, "SQS_MAX_RECEIVE_COUNT")
    if given is not None and _optional(env, name) is not None and given != derived:
        raise ConfigurationError(
            f"SQS_MAX_RECEIVE_COUNT is {given}, but {name}={hours:g} needs {derived} (the queues' maxReceiveCount)"
        )
    return derived if given is None else given


def _sent_digests_ttl_days(env: Mapping[str, str]) -> float:
    name = "SENT_DIGESTS_TTL_DAYS"
    if _optional(env, name) in ("0", "0.0"):
        return 0.0  # no record: every update is sent whole
    return _number(env, name, DEFAULT_SENT_DIGESTS_TTL_DAYS, 0, 365, "days (or 0, no record)")


def _promote_queue_url(env: Mapping[str, str]) -> str | None:
    """PROMOTE_QUEUE_URL; required when a shop promotes its customers who open an account (checked at start,
    with the shops document)."""
    return _optional(env, "PROMOTE_QUEUE_URL")


def _signing(env: Mapping[str, str]) -> bool:
    """Signing is on unless a stack turns it off explicitly (insecure: for callers protected another way)."""
    value = (_optional(env, "WEBHOOK_SIGNING") or "required").lower()
    if value not in ("required", "off"):
        raise ConfigurationError(f"WEBHOOK_SIGNING must be 'required' or 'off', not {value!r}")
    return value == "required"


def _webhook_secret(env: Mapping[str, str]) -> str | None:
    arn = _optional(env, "WEBHOOK_SECRET_ARN")
    if arn is None and _signing(env):
        raise ConfigurationError("WEBHOOK_SECRET_ARN is not set (signing is required unless WEBHOOK_SIGNING=off)")
    return arn
