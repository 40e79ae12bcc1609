"""Reading a JSON body as the contract reads it: size first, then strict JSON (no NaN, no nesting bombs)."""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidRequest

MAX_BODY_BYTES = 64 * 1024  # a command; a platform's customer may be larger (its own limit)


def check_size(body: str | bytes, max_bytes: int = MAX_BODY_BYTES) -> None:
    """Refuse a body larger than `max_bytes` before any work is spent on it (signatures, parsing)."""
    if len(body) > max_bytes:
        raise InvalidRequest(f"the body is larger than {max_bytes} bytes")


def decode_json(body: str | bytes, max_bytes: int = MAX_BODY_BYTES) -> Any:
    """JSON as the contract reads it: strict, no NaN or Infinity, nesting bombs refused."""
    check_size(body, max_bytes)
    if isinstance(body, bytes | bytearray):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("the body is not UTF-8 text") from exc
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise InvalidRequest("the body is nested too deeply") from exc
    except ValueError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")
