"""Engage's answers: a status and body turned into an EngageReply, or into one of the contract's errors."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import requests

from ..errors import (
    ContactNotFound,
    EngageContactError,
    EngageRateLimited,
    EngageRejected,
    EngageUnavailable,
    MultipleMatches,
    NoData,
)

ERROR_BODY_MAX = 2000
RETRY_AFTER_MAX_SECONDS = 300.0  # a longer wait is not ours to spend inside one invocation
# What in Engage's error texts may be a value it echoes (its texts quote what was sent): quoted text, addresses,
# long numbers (phones, social security numbers). Each is replaced by `…`; the error code and the rest remain.
ECHOED_VALUE = re.compile(r"'[^']*'|\"[^\"]*\"|[^\s'\"@]+@[^\s'\"@]+|\+?\d[\d\s-]{4,}\d")


@dataclass
class EngageReply:
    """Engage's successful reply to one call (a failed one is a Failure, or an error raised)."""

    status: int  # Engage's status, or CHECKED when a GET showed the work done already
    body: Any  # decoded JSON, or None when Engage sent no body


# In an error's details: a try of it got no answer, and Engage may still apply it after the error is raised.
MAY_STILL_LAND = "mayStillLand"
CHECKED = 0  # the status of an answer made up from the GET that checked an unknown outcome


@dataclass
class Failure:
    """A try that did not succeed: the error to raise if no other try is made."""

    error: EngageContactError
    outcome_unknown: bool = False  # Engage may have applied it: check before sending it again
    in_flight: bool = False  # no answer came: Engage may still be working on it, and apply it later


def decode(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def error_details(response: requests.Response) -> dict[str, Any]:
    """Engage's error body, read defensively: its shape is not documented."""
    details: dict[str, Any] = {"status": response.status_code}
    body = decode(response)
    if isinstance(body, dict):
        kept = {k: body[k] for k in ("errorCode", "message", "messageDetails", "detail", "statusCode") if k in body}
        details["engage"] = without_values(kept or {k: body[k] for k in list(body)[:10]})
    elif response.content:
        details["engage"] = {"text": without_values(response.text[:ERROR_BODY_MAX])}
    return details


def without_values(data: Any) -> Any:
    """Engage's error body with every text's echoed values (ECHOED_VALUE) left out, at any depth."""
    if isinstance(data, str):
        return ECHOED_VALUE.sub("…", data)
    if isinstance(data, dict):
        return {k: without_values(v) for k, v in data.items()}
    if isinstance(data, list):
        return [without_values(v) for v in data]
    return data


def retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds when it is a finite number (capped); a date or nonsense falls back on our backoff."""
    value = response.headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def is_auth_refusal(response: requests.Response) -> bool:
    return response.status_code in (401, 403)


def classify(response: requests.Response) -> EngageReply | Failure:
    """A 2xx is an EngageReply; 429 and 5xx are Failures worth another try; any other 4xx is raised at once."""
    status = response.status_code
    if 200 <= status < 300:
        return EngageReply(status, decode(response))
    if status == 429:
        return Failure(EngageRateLimited("Engage's rate limit was hit", error_details(response),
                                         retry_after=retry_after(response)))  # fmt: skip
    if status >= 500 or status < 200 or 300 <= status < 400:
        return Failure(EngageUnavailable(f"Engage answered {status}", error_details(response)), outcome_unknown=True)
    raise client_error(response)


def client_error(response: requests.Response) -> EngageContactError:
    details = error_details(response)
    code = details.get("engage", {}).get("errorCode")
    status = response.status_code
    if status == 404:
        return ContactNotFound("Engage has no such contact", details)
    if status == 409 and code == "MultipleMatches":
        return MultipleMatches("the lookup matched several contacts", details)
    if status == 400 and code == "NoData":
        return NoData("Engage found nothing to update", details)
    return EngageRejected(f"Engage refused the request ({status}{' ' + code if code else ''})", details)
