"""The one command shape every trigger carries, parsed and checked before Engage is called."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import InvalidRequest
from .attributes import EMAIL, MOBILE_PHONE, AttributeCatalogue
from .contacts import CONTACT_TYPE_ID, LOOKUP_KEYS, Lookup, check_contact_id, refuse_member
from .creation import Creation, parse_creation
from .listing import first_few, name_some, short
from .sparse_payload import SparsePayload, build_sparse_payload
from .values import text_problem


class Operation(StrEnum):
    UPDATE = "update"
    PROMOTE = "promote"
    CHANGE_TYPE = "contact-type"


COMMON_FIELDS = frozenset({"contactId", "lookup", "idempotencyKey"})
OPERATION_FIELDS = {
    Operation.UPDATE: frozenset(
        {
            "attributes",
            "clear",
            "createIfMissing",
            "eventTime",
            "eventClock",
            "sendOnlyChanged",
            "sourceCustomer",
            "skipIfMissing",
        }
    ),
    Operation.PROMOTE: frozenset({"attributes", "createIfMissing", "eventTime", "sourceCustomer"}),
    Operation.CHANGE_TYPE: frozenset({"contactTypeId"}),
}
SOCIAL_SECURITY_NUMBER = re.compile(r"(?:\d{2})?\d{6}[-+]?\d{4}")
IDEMPOTENCY_KEY_MAX = 256
LOOKUP_VALUE_MAX = 256
EVENT_TIME_MAX = 64
# How far ahead of this clock an event time may be (sources' clocks drift): further would freeze the contact,
# every later event seeming older until that time.
EVENT_TIME_AHEAD = dt.timedelta(minutes=5)
SOURCE_CUSTOMER_MAX = 256
# The clocks an update's `eventTime` may be counted on: the profile's (default), or one consent channel's own
# (a consent change is ordered against the consent changes of its channel only, never against profile changes).
EVENT_CLOCKS = ("profile", "acceptsEmail", "acceptsSms")


@dataclass(frozen=True)
class Command:
    operation: Operation
    contact_id: str | None
    lookup: Lookup | None
    payload: SparsePayload = field(default_factory=lambda: SparsePayload({}))  # a type change's is empty
    contact_type_id: str | None = None
    idempotency_key: str | None = None
    creation: Creation | None = None  # `createIfMissing`: what to create when the lookup misses
    event_time: dt.datetime | None = None  # when the change happened at its source: an older one is skipped
    send_only_changed: bool = False  # leave out what Engage was last confirmed to hold (update only)
    event_clock: str = "profile"  # which of EVENT_CLOCKS `event_time` is counted on
    source_customer: str | None = None  # the platform's own customer ("shopify:shop:id"): groups and remembers it
    skip_if_missing: bool = False  # a contact not found is a counted success ("notFound"), not ContactNotFound


def text_field(data: dict, name: str, maximum: int, where: str | None = None) -> str:
    value = data[name]
    where = where or name
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{where}' must be a non-empty string", {"field": where})
    value = value.strip()
    if len(value) > maximum or text_problem(value, where):
        raise InvalidRequest(f"'{where}' must be at most {maximum} printable characters", {"field": where})
    return value


def _parse_lookup(data: object) -> Lookup:
    if not isinstance(data, dict):
        raise InvalidRequest("'lookup' must be an object", {"field": "lookup"})
    unknown = [short(u) for u in first_few(sorted(set(data) - {*LOOKUP_KEYS, "contactType"}))]
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
    value = text_field(data, key, LOOKUP_VALUE_MAX, f"lookup.{key}")
    if key == "email" and not EMAIL.fullmatch(value):
        raise InvalidRequest("'lookup.email' does not look like an email address", {"field": "lookup.email"})
    if key == "mobilePhone" and not MOBILE_PHONE.fullmatch(value):
        raise InvalidRequest("'lookup.mobilePhone' must start with + and a country code", {"field": key})
    if key == "socialSecurityNumber" and not SOCIAL_SECURITY_NUMBER.fullmatch(value):
        raise InvalidRequest("'lookup.socialSecurityNumber' is not a social security number", {"field": key})
    contact_type = None
    if "contactType" in data:
        contact_type = text_field(data, "contactType", 64, "lookup.contactType")
        if not CONTACT_TYPE_ID.fullmatch(contact_type):
            raise InvalidRequest("'lookup.contactType' is not a contact type id", {"field": "lookup.contactType"})
    return Lookup(key, value, contact_type)


def parse_command(data: object, operation: Operation, catalogue: AttributeCatalogue) -> Command:
    """Check a command against every rule of the contract; InvalidRequest or NoData names what is wrong."""
    operation = Operation(operation)
    data = _check_fields(data, operation)
    if ("contactId" in data) == ("lookup" in data):
        raise InvalidRequest("give exactly one of 'contactId' and 'lookup'")
    contact_id = check_contact_id(data["contactId"]) if "contactId" in data else None
    lookup = _parse_lookup(data["lookup"]) if "lookup" in data else None
    idempotency_key = text_field(data, "idempotencyKey", IDEMPOTENCY_KEY_MAX) if "idempotencyKey" in data else None
    if operation is Operation.CHANGE_TYPE:
        return Command(operation, contact_id, lookup, SparsePayload({}), _parse_contact_type(data), idempotency_key)
    # An update that may create needs no attributes: a create with the key alone is a valid create (an email-only
    # backfill row, its other columns empty, is no NoData).
    payload = _parse_payload(
        data, catalogue, require_data=operation is Operation.UPDATE and "createIfMissing" not in data
    )
    creation = parse_creation(data, lookup, payload, creates_member=operation is Operation.PROMOTE)
    return Command(
        operation,
        contact_id,
        lookup,
        payload,
        None,
        idempotency_key,
        creation,
        _parse_event_time(data),
        _parse_flag(data, "sendOnlyChanged"),
        _parse_event_clock(data),
        _parse_source_customer(data),
        _parse_skip_if_missing(data, creation),
    )


def _check_fields(data: object, operation: Operation) -> dict[str, Any]:
    """A JSON object holding only the fields this operation takes (returned as such): a field that does not belong
    is an error."""
    if not isinstance(data, dict):
        raise InvalidRequest("the command must be a JSON object")
    allowed = COMMON_FIELDS | OPERATION_FIELDS[operation]
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidRequest(
            f"{name_some([repr(short(u)) for u in unknown], ', ')} does not belong to the {operation.value} command; "
            f"it takes {', '.join(sorted(allowed))}",
            {"fields": [short(u) for u in first_few(unknown)], "fieldCount": len(unknown)},
        )
    return data


def _parse_contact_type(data: dict) -> str:
    if "contactTypeId" not in data:
        raise InvalidRequest("'contactTypeId' is required", {"field": "contactTypeId"})
    contact_type_id = text_field(data, "contactTypeId", 64)
    if not CONTACT_TYPE_ID.fullmatch(contact_type_id):
        raise InvalidRequest("'contactTypeId' is not a contact type id", {"field": "contactTypeId"})
    refuse_member(contact_type_id)
    return contact_type_id


def _parse_event_time(data: dict) -> dt.datetime | None:
    """`eventTime`: ISO-8601 with its zone (2026-11-27T10:00:00+01:00 or ...Z); a time without a zone is refused."""
    if "eventTime" not in data:
        return None
    value = text_field(data, "eventTime", EVENT_TIME_MAX)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidRequest(
            "'eventTime' must be an ISO-8601 time with its zone, like 2026-11-27T10:00:00+01:00", {"field": "eventTime"}
        )
    if moment > dt.datetime.now(tz=dt.UTC) + EVENT_TIME_AHEAD:
        raise InvalidRequest(
            f"'eventTime' is more than {int(EVENT_TIME_AHEAD.total_seconds() // 60)} minutes ahead of the clock",
            {"field": "eventTime"},
        )
    return moment


def _parse_flag(data: dict, name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be true or false", {"field": name})
    return value


def _parse_event_clock(data: dict) -> str:
    """`eventClock`: which clock `eventTime` is counted on; it needs an `eventTime`."""
    if "eventClock" not in data:
        return EVENT_CLOCKS[0]
    clock = data["eventClock"]
    if clock not in EVENT_CLOCKS:
        raise InvalidRequest(f"'eventClock' must be one of {', '.join(EVENT_CLOCKS)}", {"field": "eventClock"})
    if "eventTime" not in data:
        raise InvalidRequest("'eventClock' needs an 'eventTime'", {"field": "eventClock"})
    return clock


def _parse_source_customer(data: dict) -> str | None:
    """`sourceCustomer`: the platform's id of the customer (no personal data), like shopify:shop.myshopify.com:42."""
    if "sourceCustomer" not in data:
        return None
    return text_field(data, "sourceCustomer", SOURCE_CUSTOMER_MAX)


def _parse_skip_if_missing(data: dict, creation: Creation | None) -> bool:
    skip = _parse_flag(data, "skipIfMissing")
    if skip and (creation is not None or "lookup" not in data):
        raise InvalidRequest("'skipIfMissing' needs a 'lookup' and no 'createIfMissing'", {"field": "skipIfMissing"})
    return skip


def _parse_payload(data: dict, catalogue: AttributeCatalogue, *, require_data: bool) -> SparsePayload:
    attributes = data.get("attributes", {})
    if not isinstance(attributes, dict):
        raise InvalidRequest("'attributes' must be an object", {"field": "attributes"})
    clear = data.get("clear", [])
    if not isinstance(clear, list) or not all(isinstance(n, str) and n for n in clear):
        raise InvalidRequest("'clear' must be a list of attribute names", {"field": "clear"})
    return build_sparse_payload(attributes, clear, catalogue, require_data=require_data)
