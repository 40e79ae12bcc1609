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
        return Failure(
            EngageRateLimited("Engage's rate limit was hit", error_details(response), retry_after=retry_after(response))
        )
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


# --- bulk writes: answers whose shape Voyado does not document (docs/design.md, "Bulk writes") ----------------
BATCH_ID_FIELDS = ("batchId", "id", "bulkId", "jobId")
STATUS_FIELDS = ("status", "state", "batchStatus")
DONE_STATES = frozenset(
    {
        "completed",
        "complete",
        "finished",
        "done",
        "succeeded",
        "success",
        "processed",
        "partiallycompleted",
        "completedwitherrors",
    }
)
FAILED_STATES = frozenset({"failed", "error", "aborted", "cancelled", "canceled"})
SUCCESS_LISTS = ("contacts", "results", "items", "succeeded", "created", "updated")
FAILURE_LISTS = ("errors", "failures", "failed", "failedContacts", "rejected")
INDEX_FIELDS = ("index", "position", "row")
ROW_ID_FIELDS = ("contactId", "id")
ROW_CODE_FIELDS = ("errorCode", "code", "error")
ROW_MESSAGE_FIELDS = ("message", "errorMessage", "detail", "reason")


@dataclass
class BulkRow:
    """One contact of a bulk request, as the status names it: created/updated (its id) or refused (a code)."""

    contact_id: str | None = None
    error_code: str | None = None
    message: str | None = None


@dataclass
class BulkStatus:
    """A bulk batch's status: `done` once Engage says it has finished; `rows` by the item's place in the request.

    A row the status does not name (or names in a way that cannot be matched) is absent from `rows`:
    its outcome is unknown, and the caller must find out another way (look the contact up).
    """

    done: bool
    failed_whole: bool  # Engage reports the batch itself as failed
    rows: dict[int, BulkRow]
    state: str | None  # Engage's own word for it, kept for logs


def read_batch_id(body: Any) -> str | None:
    """The batch id a bulk request is answered with: a JSON string, or one of BATCH_ID_FIELDS of an object."""
    if isinstance(body, dict):
        body = next((body[f] for f in BATCH_ID_FIELDS if isinstance(body.get(f), str | int)), None)
    if isinstance(body, int) and not isinstance(body, bool):
        body = str(body)
    if isinstance(body, str) and 0 < len(body.strip()) <= 128 and body.strip().isprintable():
        return body.strip()
    return None


def read_bulk_status(body: Any, keys: list[str | None]) -> BulkStatus:
    """A status answer read defensively; `keys`: each request item's key value (to match rows named by it)."""
    if not isinstance(body, dict):
        return BulkStatus(False, False, {}, None)
    raw = next((body[f] for f in STATUS_FIELDS if isinstance(body.get(f), str)), None)
    word = raw.replace(" ", "").replace("_", "").lower() if raw else None
    by_key: dict[str, int] = {}
    for place, key in enumerate(keys):
        if key is not None:
            by_key.setdefault(key.lower(), place)
    rows = _refused_rows(body, by_key, len(keys))
    for field_name in SUCCESS_LISTS:
        for item in _listed(body.get(field_name)):
            row = _place(item, by_key, len(keys))
            contact_id = next((item[f] for f in ROW_ID_FIELDS if isinstance(item.get(f), str)), None)
            if row is not None and row not in rows and contact_id:
                rows[row] = BulkRow(contact_id=contact_id)
    return BulkStatus(word in DONE_STATES or word in FAILED_STATES, word in FAILED_STATES, rows, raw)


def _refused_rows(body: dict[str, Any], by_key: dict[str, int], size: int) -> dict[int, BulkRow]:
    rows: dict[int, BulkRow] = {}
    for field_name in FAILURE_LISTS:
        for item in _listed(body.get(field_name)):
            place = _place(item, by_key, size)
            if place is not None:
                code = next((str(item[f]) for f in ROW_CODE_FIELDS if item.get(f) not in (None, "")), "BulkRowRefused")
                message = next((str(item[f])[:300] for f in ROW_MESSAGE_FIELDS if item.get(f)), None)
                rows[place] = BulkRow(error_code=code, message=message)
    return rows


def _listed(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _place(item: dict[str, Any], by_key: dict[str, int], size: int) -> int | None:
    """The request item a status row is about: its index, else its key value; None when it cannot be told."""
    index = next(
        (item[f] for f in INDEX_FIELDS if isinstance(item.get(f), int) and not isinstance(item[f], bool)), None
    )
    if index is not None:
        return index if 0 <= index < size else None
    for value in item.values():
        if isinstance(value, str) and value.lower() in by_key:
            return by_key[value.lower()]
    return None
