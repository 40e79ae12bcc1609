"""The one command shape every trigger carries, parsed and checked before Engage is called."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .attributes import EMAIL, MOBILE_PHONE, AttributeCatalogue, SparsePayload, build_sparse_payload
from .errors import InvalidRequest


class Operation(StrEnum):
    UPDATE = "update"
    PROMOTE = "promote"
    CHANGE_TYPE = "contact-type"


MEMBER = "Member"  # reached only through promote: Engage's updateContactType does not work for it
COMMON_FIELDS = frozenset({"contactId", "lookup", "idempotencyKey"})
OPERATION_FIELDS = {
    Operation.UPDATE: frozenset({"attributes", "clear"}),
    Operation.PROMOTE: frozenset({"attributes"}),
    Operation.CHANGE_TYPE: frozenset({"contactTypeId"}),
}
LOOKUP_KEYS = ("email", "mobilePhone", "socialSecurityNumber", "customKey")
# Engage's ids are hex groups joined by '-', not always valid RFC 4122 UUIDs.
CONTACT_ID = re.compile(r"^[0-9A-Fa-f]+(?:-[0-9A-Fa-f]+)*$")
CONTACT_ID_MAX = 64
CONTACT_TYPE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
SOCIAL_SECURITY_NUMBER = re.compile(r"^(?:\d{2})?\d{6}[-+]?\d{4}$")
IDEMPOTENCY_KEY_MAX = 256
LOOKUP_VALUE_MAX = 256
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Lookup:
    key: str
    value: str
    contact_type: str | None = None


@dataclass(frozen=True)
class Command:
    operation: Operation
    contact_id: str | None
    lookup: Lookup | None
    payload: SparsePayload | None = None
    contact_type_id: str | None = None
    idempotency_key: str | None = None


def message_group(command: dict[str, Any]) -> str:
    """The contact a command is about, as far as it is known before Engage: its SQS message group.

    The contactId, else the lookup's key and value (emails compared without case).
    """
    if isinstance(command.get("contactId"), str):
        return command["contactId"]
    lookup = command.get("lookup") if isinstance(command.get("lookup"), dict) else {}
    key = next((k for k in LOOKUP_KEYS if isinstance(lookup.get(k), str)), None)
    if key is None:
        return "unknown-contact"
    value = lookup[key].strip()
    return f"{key}:{value.lower() if key == 'email' else value}"[:128]


def is_contact_id(value: object) -> bool:
    return isinstance(value, str) and len(value) <= CONTACT_ID_MAX and bool(CONTACT_ID.match(value))


def check_contact_id(value: object, where: str = "contactId") -> str:
    """The id, if it is safe to put into a URL; InvalidRequest otherwise."""
    if not is_contact_id(value):
        raise InvalidRequest(
            f"'{where}' must be an Engage contact id: hex groups joined by '-', at most {CONTACT_ID_MAX} characters",
            {"field": where},
        )
    return value


def check_size(body: str | bytes, max_bytes: int = MAX_BODY_BYTES) -> None:
    """Refuse a body larger than `max_bytes` before any work is spent on it (signatures, parsing)."""
    if len(body) > max_bytes:
        raise InvalidRequest(f"the body is larger than {max_bytes} bytes")


def refuse_member(contact_type_id: str) -> None:
    """InvalidRequest for Member as a contact type to change to: only promote makes a Member."""
    if contact_type_id.lower() == MEMBER.lower():
        raise InvalidRequest("a contact becomes a Member only through the promote function", {"field": "contactTypeId"})


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


def _text(data: dict, name: str, maximum: int, where: str | None = None) -> str:
    value = data[name]
    where = where or name
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{where}' must be a non-empty string", {"field": where})
    value = value.strip()
    if len(value) > maximum or any(ord(c) < 32 for c in value):
        raise InvalidRequest(f"'{where}' must be at most {maximum} printable characters", {"field": where})
    return value


def _parse_lookup(data: object) -> Lookup:
    if not isinstance(data, dict):
        raise InvalidRequest("'lookup' must be an object", {"field": "lookup"})
    unknown = sorted(set(data) - {*LOOKUP_KEYS, "contactType"})
    if unknown:
        raise InvalidRequest(
            f"'lookup' has unknown fields {unknown}; it takes one of {', '.join(LOOKUP_KEYS)} and optionally "
            "contactType",
            {"field": "lookup"},
        )
    keys = [k for k in LOOKUP_KEYS if k in data]
    if len(keys) != 1:
        raise InvalidRequest(f"'lookup' must hold exactly one of {', '.join(LOOKUP_KEYS)}", {"field": "lookup"})
    key = keys[0]
    value = _text(data, key, LOOKUP_VALUE_MAX, f"lookup.{key}")
    if key == "email" and not EMAIL.match(value):
        raise InvalidRequest("'lookup.email' does not look like an email address", {"field": "lookup.email"})
    if key == "mobilePhone" and not MOBILE_PHONE.match(value):
        raise InvalidRequest("'lookup.mobilePhone' must start with + and a country code", {"field": key})
    if key == "socialSecurityNumber" and not SOCIAL_SECURITY_NUMBER.match(value):
        raise InvalidRequest("'lookup.socialSecurityNumber' is not a social security number", {"field": key})
    contact_type = None
    if "contactType" in data:
        contact_type = _text(data, "contactType", 64, "lookup.contactType")
        if not CONTACT_TYPE_ID.match(contact_type):
            raise InvalidRequest("'lookup.contactType' is not a contact type id", {"field": "lookup.contactType"})
    return Lookup(key, value, contact_type)


def parse_command(data: object, operation: Operation, catalogue: AttributeCatalogue) -> Command:
    """Check a command against every rule of the contract; InvalidRequest or NoData names what is wrong."""
    operation = Operation(operation)
    if not isinstance(data, dict):
        raise InvalidRequest("the command must be a JSON object")
    allowed = COMMON_FIELDS | OPERATION_FIELDS[operation]
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidRequest(
            f"{', '.join(repr(u) for u in unknown)} does not belong to the {operation.value} command; "
            f"it takes {', '.join(sorted(allowed))}",
            {"fields": unknown},
        )
    if ("contactId" in data) == ("lookup" in data):
        raise InvalidRequest("give exactly one of 'contactId' and 'lookup'")
    contact_id = check_contact_id(data["contactId"]) if "contactId" in data else None
    lookup = _parse_lookup(data["lookup"]) if "lookup" in data else None
    idempotency_key = _text(data, "idempotencyKey", IDEMPOTENCY_KEY_MAX) if "idempotencyKey" in data else None

    payload = None
    contact_type_id = None
    if operation is Operation.CHANGE_TYPE:
        if "contactTypeId" not in data:
            raise InvalidRequest("'contactTypeId' is required", {"field": "contactTypeId"})
        contact_type_id = _text(data, "contactTypeId", 64)
        if not CONTACT_TYPE_ID.match(contact_type_id):
            raise InvalidRequest("'contactTypeId' is not a contact type id", {"field": "contactTypeId"})
        refuse_member(contact_type_id)
    else:
        attributes = data.get("attributes", {})
        if not isinstance(attributes, dict):
            raise InvalidRequest("'attributes' must be an object", {"field": "attributes"})
        clear = data.get("clear", [])
        if not isinstance(clear, list) or not all(isinstance(n, str) and n for n in clear):
            raise InvalidRequest("'clear' must be a list of attribute names", {"field": "clear"})
        payload = build_sparse_payload(attributes, clear, catalogue, require_data=operation is Operation.UPDATE)
    return Command(operation, contact_id, lookup, payload, contact_type_id, idempotency_key)
