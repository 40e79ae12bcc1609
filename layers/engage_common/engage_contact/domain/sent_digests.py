"""Only what changed: which attributes of a sparse payload Engage already holds, told by digests, never values.

Per contact, the record keeps one entry per attribute: a keyed, truncated digest of the value Engage last
confirmed, and when. `preferences` is compared per field (`preferences.acceptsEmail`), because Engage merges
it per field: one consent changing does not send the other. Any other object or list is compared whole.
An entry older than the record's lifetime counts for nothing, so every value is sent again now and then
(what someone changed in Engage by hand is mended within that time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .attributes import OBJECT_ATTRIBUTES

DIGEST_CHARS = 32  # 128 bits of HMAC-SHA256: no collision to fear, nothing to read back
SEPARATOR = "@"  # an entry is "<digest>@<unix seconds confirmed>"


def flatten(sent: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as compared: `preferences` one entry per field (dotted), anything else as it is."""
    flat: dict[str, Any] = {}
    for name, value in sent.items():
        if name in OBJECT_ATTRIBUTES and isinstance(value, Mapping):
            flat.update((f"{name}.{child}", v) for child, v in value.items())
        else:
            flat[name] = value
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The payload again from its compared entries (the inverse of `flatten`)."""
    sent: dict[str, Any] = {}
    for name, value in flat.items():
        parent, dot, child = name.partition(".")
        if dot and parent in OBJECT_ATTRIBUTES:
            sent.setdefault(parent, {})[child] = value
        else:
            sent[name] = value
    return sent


def digest(key: bytes, contact_id: str, name: str, value: Any) -> str:
    """The keyed digest of one attribute's value for one contact: equal values of two contacts differ."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    message = "\x00".join((contact_id, name, canonical)).encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:DIGEST_CHARS]


def digests(key: bytes, contact_id: str, sent: Mapping[str, Any], clear: Iterable[str] = ()) -> dict[str, str]:
    """Each compared entry's digest; `clear` names have none (they are always sent, and never recorded)."""
    cleared = set(clear)
    return {name: digest(key, contact_id, name, value) for name, value in flatten(sent).items() if name not in cleared}


def entry(value_digest: str, confirmed_at: float) -> str:
    return f"{value_digest}{SEPARATOR}{int(confirmed_at)}"


def is_current(stored: str | None, value_digest: str, now: float, lifetime_seconds: float) -> bool:
    """Whether a stored entry says Engage holds this value, confirmed within the lifetime."""
    if not isinstance(stored, str):
        return False
    kept, _, at = stored.partition(SEPARATOR)
    try:
        confirmed = float(at)
    except ValueError:
        return False
    return hmac.compare_digest(kept, value_digest) and 0 <= now - confirmed < lifetime_seconds


@dataclass(frozen=True)
class ChangedOnly:
    """A payload with what Engage already holds left out: `sent` goes to Engage, `unchanged` names the rest."""

    sent: dict[str, Any]
    unchanged: list[str] = field(default_factory=list)  # compared entries left out, dotted for preferences
    digests: dict[str, str] = field(default_factory=dict)  # of the entries in `sent`, recorded once confirmed


def changed_only(
    sent: Mapping[str, Any], new: Mapping[str, str], stored: Mapping[str, str], now: float, lifetime_seconds: float
) -> ChangedOnly:
    """`sent` without the entries whose digest (`new`) equals a current stored one; names without a digest
    (the `clear` names) always stay."""
    flat = flatten(sent)
    unchanged = [n for n in flat if n in new and is_current(stored.get(n), new[n], now, lifetime_seconds)]
    kept = {n: v for n, v in flat.items() if n not in unchanged}
    return ChangedOnly(unflatten(kept), unchanged, {n: d for n, d in new.items() if n in kept})
