"""Find or create: the command's `createIfMissing`, checked, and what a create sends Engage.

Voyado's rule is to look a contact up before creating it, so a create always follows a
lookup that missed; the lookup's key and value become the new contact's key, which is
what finds it again (after a lost answer, or when someone else created it first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest
from .contacts import CONTACT_TYPE_ID, MEMBER, Lookup
from .sparse_payload import SparsePayload

FIELD = "createIfMissing"
TEXT_OPTIONS = ("source", "storeExternalId")  # named as Engage names the create's options
CREATE_FIELDS = ("contactType", *TEXT_OPTIONS, "createAsUnapproved")
# customKey is memberNumber or externalId by tenant setting: no attribute to create the contact with is known.
CREATE_LOOKUP_KEYS = ("email", "mobilePhone", "socialSecurityNumber")
OPTION_MAX = 100


@dataclass(frozen=True)
class CreateIfMissing:
    """How a missing contact is created: its type, and Engage's create options as strings."""

    contact_type: str
    options: Mapping[str, str] = field(default_factory=dict)  # source, storeExternalId, createAsUnapproved

    def body(self, lookup: Lookup, payload: SparsePayload, clear: Iterable[str] = ()) -> dict[str, Any]:
        """The new contact: the sparse attributes, its key from the lookup, its type said out loud.

        `clear` names are left out (nothing to clear, and a create never sends an empty value);
        Engage would make a contact without `contactType` a Member without a word.
        """
        cleared = set(clear)
        attributes = {k: v for k, v in payload.sent.items() if k not in cleared}
        return {**attributes, lookup.key: lookup.value, "contactType": self.contact_type}


@dataclass(frozen=True)
class Creation:
    """What a command sends Engage when its lookup misses: the new contact, and the create's options."""

    body: dict[str, Any]
    options: Mapping[str, str]

    @property
    def contact_type(self) -> str:
        return self.body["contactType"]


def parse_creation(
    command: dict, lookup: Lookup | None, payload: SparsePayload, *, creates_member: bool
) -> Creation | None:
    """The command's `createIfMissing` checked against its lookup and attributes; None when it has none."""
    if FIELD not in command:
        return None
    create = parse_create_if_missing(command[FIELD], creates_member=creates_member)
    lookup = check_lookup_for_create(lookup, payload)
    return Creation(create.body(lookup, payload, command.get("clear") or ()), create.options)


def parse_create_if_missing(data: object, *, creates_member: bool) -> CreateIfMissing:
    """The `createIfMissing` object on its own; `creates_member` for promote, whose new contact is a Member."""
    if not isinstance(data, dict):
        raise InvalidRequest(f"'{FIELD}' must be an object", {"field": FIELD})
    unknown = sorted(set(data) - set(CREATE_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"'{FIELD}' has unknown fields {unknown}; it takes {', '.join(CREATE_FIELDS)}", {"field": FIELD}
        )
    options = {name: _text_option(data, name) for name in TEXT_OPTIONS if name in data}
    if "createAsUnapproved" in data:
        if not isinstance(data["createAsUnapproved"], bool):
            raise InvalidRequest(f"'{FIELD}.createAsUnapproved' must be true or false", {"field": FIELD})
        options["createAsUnapproved"] = "true" if data["createAsUnapproved"] else "false"
    return CreateIfMissing(_contact_type(data, creates_member), options)


def check_lookup_for_create(lookup: Lookup | None, payload: SparsePayload) -> Lookup:
    """The lookup a create may follow: by a key the new contact can carry, without a type filter."""
    if lookup is None:
        raise InvalidRequest(
            f"'{FIELD}' needs a 'lookup', not a 'contactId': an id names a contact that exists", {"field": FIELD}
        )
    if lookup.key not in CREATE_LOOKUP_KEYS:
        raise InvalidRequest(
            f"'{FIELD}' needs a lookup by {', '.join(CREATE_LOOKUP_KEYS)}, not by {lookup.key}", {"field": "lookup"}
        )
    if lookup.contact_type is not None:
        # Engage keeps one contact a key whatever its type: a filtered lookup would miss the one a create collides with.
        raise InvalidRequest(f"'{FIELD}' takes a lookup without 'contactType'", {"field": "lookup.contactType"})
    given = payload.sent.get(lookup.key)
    if given is not None and not _same_key(lookup.key, given, lookup.value):
        raise InvalidRequest(
            f"'attributes.{lookup.key}' differs from the lookup's: a created contact would not be found again by it",
            {"field": f"attributes.{lookup.key}"},
        )
    return lookup


def _contact_type(data: dict, creates_member: bool) -> str:
    where = f"{FIELD}.contactType"
    if "contactType" not in data:
        if creates_member:
            return MEMBER
        raise InvalidRequest(f"'{where}' is required: Engage would make the new contact a Member", {"field": where})
    value = data["contactType"]
    if not isinstance(value, str) or not CONTACT_TYPE_ID.fullmatch(value.strip()):
        raise InvalidRequest(f"'{where}' is not a contact type id", {"field": where})
    value = value.strip()
    is_member = value.lower() == MEMBER.lower()
    if creates_member and not is_member:
        raise InvalidRequest(f"promote creates a Member: '{where}' may only be Member", {"field": where})
    if not creates_member and is_member:
        raise InvalidRequest(
            f"'{where}' may not be Member: a contact becomes a Member through promote", {"field": where}
        )
    return MEMBER if is_member else value


def _text_option(data: dict, name: str) -> str:
    where = f"{FIELD}.{name}"
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{where}' must be a non-empty string", {"field": where})
    value = value.strip()
    # sent as an HTTP header in v2: printable ASCII only
    if len(value) > OPTION_MAX or not value.isascii() or not value.isprintable():
        raise InvalidRequest(f"'{where}' must be at most {OPTION_MAX} printable ASCII characters", {"field": where})
    return value


def _same_key(key: str, given: Any, wanted: str) -> bool:
    if not isinstance(given, str):
        return False
    return given.lower() == wanted.lower() if key == "email" else given == wanted
