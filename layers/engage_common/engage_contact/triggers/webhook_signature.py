"""Signed webhooks: the Standard Webhooks scheme on the API routes.

`webhook-id`, `webhook-timestamp`, `webhook-signature` headers; HMAC-SHA256
over `{id}.{timestamp}.{raw body}` with the `whsec_` key, 5-minute tolerance,
several signatures per header. The `standardwebhooks` package does the
cryptography; this module reads the keys and turns every refusal into one error.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping

from standardwebhooks import Webhook, WebhookVerificationError

from ..errors import Unauthorized

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def verify_webhook(raw_body: bytes, headers: Mapping[str, str], keys: list[str]) -> str:
    """The verified `webhook-id`; Unauthorized when no key's signature matches or the timestamp is stale."""
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [h for h in HEADERS if not lowered.get(h)]
    if missing:
        raise Unauthorized(f"the request is not signed: missing {', '.join(missing)}")
    if "v1," not in lowered["webhook-signature"]:
        raise Unauthorized("the request carries no v1 signature")
    for key in keys:
        try:
            Webhook(key).verify(raw_body, lowered, json_parse=False)
        except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
            reason = str(exc) if isinstance(exc, WebhookVerificationError) else "malformed signature"
            if "timestamp" in reason.lower():
                raise Unauthorized(f"the signature's {reason.lower()}") from None
            continue
        return lowered["webhook-id"]
    raise Unauthorized("no signature matches")
