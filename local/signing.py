"""Sign a request as a Standard Webhooks sender does (for local.send, the tests and your own callers)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid

from standardwebhooks import Webhook


def new_secret() -> str:
    """A fresh signing secret in the scheme's own form, whsec_<base64 key>."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(secret: str | list[str], body: str | bytes, msg_id: str | None = None,
                   timestamp: dt.datetime | None = None) -> dict[str, str]:  # fmt: skip
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` (one signature per secret given)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or dt.datetime.now(tz=dt.UTC)
    keys = [secret] if isinstance(secret, str) else secret
    signatures = " ".join(Webhook(key).sign(msg_id, timestamp, text) for key in keys)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
