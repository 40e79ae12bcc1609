"""How a contact is named before Engage is asked: its id, a lookup, its message group, and the Member rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from ..errors import InvalidRequest
from .digest_key import keyed

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

    The contactId as it is (hex and '-'); else the lookup's key and a keyed digest
    of its normalised value (emails without case): SQS takes ASCII only in a group id, and an address (or a
    social security number) has no place in SQS metadata, nor a plain hash a list of addresses links back.
    """
    contact_id = command.get("contactId")
    if isinstance(contact_id, str):  # one that is no contact id is refused later: its group only has to be valid
        return contact_id if is_contact_id(contact_id) else f"contactId:{lookup_digest('contactId', contact_id)}"
    lookup = command.get("lookup")
    if not isinstance(lookup, dict):
        lookup = {}
    key = next((k for k in LOOKUP_KEYS if isinstance(lookup.get(k), str)), None)
    if key is None:
        return "unknown-contact"
    return f"{key}:{lookup_digest(key, lookup[key])}"


def command_group(command: Any) -> str:
    """The message group of a parsed command (`domain.command.Command`): the same as of the command it came from."""
    if command.contact_id is not None:
        return message_group({"contactId": command.contact_id})
    return message_group({"lookup": {command.lookup.key: command.lookup.value}})


def customer_key(command: Any) -> str:
    """Whom a parsed command is about across its platform's topics: its `sourceCustomer` (a digest), else its
    message group. The contact a lookup resolved to is remembered under it, and a consent channel's clock is
    kept under it, so a consent topic that looks up by phone finds what a profile topic (by email) learnt."""
    source = getattr(command, "source_customer", None)
    return source_customer_group(source) if source else command_group(command)


def source_customer_group(source: str) -> str:
    """The key a platform's customer (`platform:shop:id`) is remembered and clocked under: a digest, no id."""
    return f"customer:{lookup_digest('sourceCustomer', source)}"


def still_found_by(lookup: Lookup, contact: Any) -> bool:
    """Whether Engage's answer about a contact (flat, or with `attributes`) still shows what `lookup` asks.

    False only on evidence: the lookup's key with another value, or another contact type than it asks for.
    An answer without the key (a `customKey`, or no answer at all) is no evidence either way.
    """
    if not isinstance(contact, dict):
        return True
    attributes = contact.get("attributes")
    fields = {**(attributes if isinstance(attributes, dict) else {}), **contact}
    if lookup.contact_type is not None and fields.get("contactType") not in (None, lookup.contact_type):
        return False
    value = fields.get(lookup.key)
    return not isinstance(value, str) or lookup_digest(lookup.key, value) == lookup_digest(lookup.key, lookup.value)


def lookup_digest(key: str, value: str) -> str:
    """A lookup value's keyed digest, the same for every spelling Engage treats as one (emails without case)."""
    value = value.strip()
    normalised = value.lower() if key == "email" else value
    return keyed(key, normalised)[:32]


def is_contact_id(value: object) -> TypeGuard[str]:
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
