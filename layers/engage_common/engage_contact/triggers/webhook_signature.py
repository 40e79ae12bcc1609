"""Signed webhooks: the Standard Webhooks scheme on the API routes.

`webhook-id`, `webhook-timestamp`, `webhook-signature` headers; HMAC-SHA256
over `{id}.{timestamp}.{raw body}` with the `whsec_` key, 5-minute tolerance,
several signatures per header. The `standardwebhooks` package does the
cryptography; this module reads the keys and turns every refusal into one error.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from standardwebhooks import Webhook, WebhookVerificationError

from ..aws.secrets import rotating_secrets
from ..errors import DependencyUnavailable, Unauthorized

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
PREFIX = "whsec_"
# The scheme asks for 24 to 64 bytes; a shorter key than this is refused outright, not used.
MIN_KEY_BYTES = 16


def webhook_keys(value: str) -> list[bytes]:
    """The keys a webhook secret holds (current and previous while rotated), each read strictly.

    `whsec_<base64>` or the bare base64 (as the template generates it), padding optional. Anything
    else is refused (DependencyUnavailable: our outage, not the caller's fault), never guessed at: the
    scheme's library would sign with an empty key for `whsec_`, and drop characters that are not base64
    (a different key than the one meant).
    """
    return [_key(secret) for secret in rotating_secrets(value, "webhook secret")]


def _key(secret: str) -> bytes:
    text = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise DependencyUnavailable("the webhook secret is not whsec_ followed by a base64 key") from None
    if len(key) < MIN_KEY_BYTES:
        raise DependencyUnavailable(f"the webhook secret's key is shorter than {MIN_KEY_BYTES} bytes")
    return key


def verify_webhook(raw_body: bytes, headers: Mapping[str, str], keys: list[bytes]) -> str:
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
