"""Keyed digests of what names a person (an email, a phone, a shop's customer), under the deployment's digest key.

HMAC-SHA256 with a secret key, never a plain hash: a reader of the table, of the queues' message groups or of
the audit trail cannot test a list of candidate addresses against a digest. The key is the deployment's one
digest key (a secret of its own, DIGEST_KEY_SECRET_ARN, that every function may read and that no other secret
derives), so rotating the Engage key changes no digest. The composition root (`container.Container`) installs
where the key comes from, once per container; nothing here reads the environment or a secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from ..errors import ConfigurationError

_source: Callable[[], bytes] | None = None


def install(source: Callable[[], bytes]) -> None:
    """Where the key comes from: asked at every digest, so it keeps the key once read (the container's does)."""
    global _source
    _source = source


def key() -> bytes:
    if _source is None:
        raise ConfigurationError("no digest key: DIGEST_KEY_SECRET_ARN is not set (the container reads it)")
    return _source()


def keyed(purpose: str, text: str | bytes) -> str:
    """The keyed digest (hex) of `text` for one purpose: each use its own, so no two uses' digests can be matched."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return hmac.new(key(), purpose.encode() + b"\x00" + data, hashlib.sha256).hexdigest()


def subkey(purpose: str) -> bytes:
    """A key of its own for a use that makes its HMACs itself (what Engage confirmed, the audit's subjects)."""
    return hmac.new(key(), b"subkey\x00" + purpose.encode(), hashlib.sha256).digest()


def customer_digest(customer: str) -> str:
    """Whom a platform's delivery is about (an email, or `platform:shop:id`), as the last-applied records and the
    erasure find them: without case or surrounding space."""
    return keyed("customer", customer.strip().lower())
