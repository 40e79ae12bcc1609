"""The privacy settings: the audit trail and where data requests are delivered (each shop's erasure policy is in
the shops document, and comes with the command)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigurationError
from .audit import DEFAULT_RETENTION_DAYS

# How long an erasure waits after marking the person erased before it erases: an update that checked the mark
# just before it was written is finished by then (the update function's timeout, and some).
DEFAULT_SETTLE_SECONDS = 75.0


@dataclass(frozen=True)
class PrivacySettings:
    audit_table: str | None = None
    audit_retention_days: float = DEFAULT_RETENTION_DAYS
    export_bucket: str | None = None  # data requests delivered here; unset: an inventory in the audit entry
    export_prefix: str = "data-requests/"
    export_kms_key: str | None = None  # SSE-KMS with this key; unset: SSE-S3
    settle_seconds: float = DEFAULT_SETTLE_SECONDS


def privacy_settings(env: Mapping[str, str]) -> PrivacySettings:
    """Read and check the privacy settings; ConfigurationError names the variable."""

    def optional(name: str) -> str | None:
        return env.get(name, "").strip() or None

    return PrivacySettings(
        audit_table=optional("AUDIT_TABLE"),
        audit_retention_days=_number(optional("AUDIT_RETENTION_DAYS"), "AUDIT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS),
        export_bucket=optional("DATA_REQUEST_BUCKET"),
        export_prefix=optional("DATA_REQUEST_PREFIX") or "data-requests/",
        export_kms_key=optional("DATA_REQUEST_KMS_KEY_ARN"),
        settle_seconds=_number(
            optional("ERASURE_SETTLE_SECONDS"), "ERASURE_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS, allow_zero=True
        ),
    )


def _number(raw: str | None, name: str, default: float, *, allow_zero: bool = False) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or (value == 0 and not allow_zero) or value > 36500:
        raise ConfigurationError(f"{name} must be a number of {'seconds' if allow_zero else 'days'}, not {raw!r}")
    return value
