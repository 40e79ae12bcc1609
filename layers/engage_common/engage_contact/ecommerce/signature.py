"""A platform's signature: base64(HMAC-SHA256(raw body, secret)), as Shopify and WooCommerce both sign."""

from __future__ import annotations

import base64
import hashlib
import hmac

from ..errors import Unauthorized


def verify_platform_signature(raw: bytes, signature: str | None, secrets: list[str]) -> None:
    """base64(HMAC-SHA256(raw body, secret as UTF-8)), as both platforms sign; any listed secret may match."""
    if not signature:
        raise Unauthorized("the delivery is not signed")
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        raise Unauthorized("the signature is not base64") from None
    for secret in secrets:
        expected = hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).digest()
        if hmac.compare_digest(expected, given):
            return
    raise Unauthorized("no signature matches")
