"""How a contact is named before Engage is asked: its id, a lookup, its message group, and the Member rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest

MEMBER = "Member"  # reached only through promote: Engage's updateContactType does not work for it (v2)
# Every pattern here validates a whole value: fullmatch, never match (`$` matches before a final newline).
LOOKUP_KEYS = ("email", "mobilePhone", "socialSecurityNumber", "customKey")
# Engage's ids are hex groups joined by '-', not always valid RFC 4122 UUIDs.
CONTACT_ID = re.compile(r"[0-9A-Fa-f]+(?:-[0-9A-Fa-f]+)*")
CONTACT_ID_MAX = 64
CONTACT_TYPE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class Lookup:
    key: str
    value: str
    contact_type: str | None = None


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
    return isinstance(value, str) and len(value) <= CONTACT_ID_MAX and bool(CONTACT_ID.fullmatch(value))


def check_contact_id(value: object, where: str = "contactId") -> str:
    """The id, if it is safe to put into a URL; InvalidRequest otherwise."""
    if not is_contact_id(value):
        raise InvalidRequest(
            f"'{where}' must be an Engage contact id: hex groups joined by '-', at most {CONTACT_ID_MAX} characters",
            {"field": where},
        )
    return value


def refuse_member(contact_type_id: str) -> None:
    """InvalidRequest for Member as a contact type to change to: only promote makes a Member."""
    if contact_type_id.lower() == MEMBER.lower():
        raise InvalidRequest("a contact becomes a Member only through the promote function", {"field": "contactTypeId"})
