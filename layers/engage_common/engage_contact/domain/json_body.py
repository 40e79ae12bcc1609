"""Reading a JSON body as the contract reads it: size first, then strict JSON (no NaN, no nesting bombs)."""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import InvalidRequest

MAX_BODY_BYTES = 64 * 1024  # a command; a platform's customer may be larger (its own limit)
MAX_INT_DIGITS = 64  # no attribute needs more; Python refuses over 4,300 with a message about itself


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
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except _BadNumber as exc:
        raise InvalidRequest(f"the body holds a number JSON cannot carry: {exc}") from None
    except RecursionError as exc:
        raise InvalidRequest("the body is nested too deeply") from exc
    except ValueError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc


class _BadNumber(ValueError):
    pass


def _refuse_constant(name: str) -> None:
    raise _BadNumber(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    """A JSON number as a float; one too large for a float (`1e999`) would become Infinity: refused."""
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber("a number is too large (it would become Infinity); numbers must be finite")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadNumber(f"a whole number has more than {MAX_INT_DIGITS} digits")
    return int(text)
