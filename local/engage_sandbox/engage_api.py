"""Engage's contact API (v2 and v3) as the sandbox plays it, traps included.

Each handler takes the state and one `Call` and gives back `(status, body)`;
`body` is JSON-serialisable, or `None` for an empty answer. Both versions work
on the same contacts; where v3 differs from v2 the handler asks `call.version`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .state import (
    EMAIL_RE,
    LOOKUP_KEYS,
    PHONE_RE,
    PREFERENCE_FIELDS,
    SSN_RE,
    SandboxState,
    key_value,
    new_contact_id,
)

BULK_PATH = re.compile(r"^/api/(?P<version>v2|v3)/contacts/bulk(?P<status>/status)?/?$")
COLLECTION_PATH = re.compile(r"^/api/(?P<version>v2|v3)/contacts/?$")
LOOKUP_PATH = re.compile(r"^/api/(?P<version>v2|v3)/contacts/id/?$")
CONTACT_PATH = re.compile(
    r"^/api/(?P<version>v2|v3)/contacts/(?P<id>[^/]+)(?P<action>/promoteToMember|/updateContactType)?/?$"
)
# What each version's contact resource answers to: v2 updates with POST, v3 with PATCH.
# DELETE deletes the contact in both (Voyado's "Delete contact" pages): 200, or 404 when it is gone already.
CONTACT_METHODS = {
    "v2": {"POST": "update", "GET": "get", "DELETE": "delete"},
    "v3": {"PATCH": "update", "GET": "get", "DELETE": "delete"},
}
CREATE_OPTIONS = ("source", "storeExternalId", "createAsUnapproved")


@dataclass(frozen=True)
class Call:
    """One request to Engage's API, as a handler needs it."""

    version: str
    contact_id: str  # "" on a route about no one contact
    body: object
    query: dict
    headers: dict  # names lower-cased

    def create_option(self, name: str) -> str | None:
        """v2 takes the create options as headers, v3 as query parameters; the other place is ignored."""
        return self.headers.get(name.lower()) if self.version == "v2" else self.query.get(name)


def route_of(method: str, path: str) -> tuple[str | None, str | None, str | None]:
    """(route name, contact id, version) for an API path; route None when Engage has no such resource."""
    match = BULK_PATH.match(path)
    if match:
        if match.group("status"):
            return ("bulkStatus" if method == "GET" else "method"), None, match.group("version")
        return {"POST": "bulkCreate", "PATCH": "bulkUpdate"}.get(method, "method"), None, match.group("version")
    for pattern, route in ((COLLECTION_PATH, "create"), (LOOKUP_PATH, "lookup")):
        match = pattern.match(path)
        if match:
            wanted = "POST" if route == "create" else "GET"
            return (route if method == wanted else "method"), None, match.group("version")
    match = CONTACT_PATH.match(path)
    if not match:
        return None, None, None
    version = match.group("version")
    contact_id = unquote(match.group("id"))
    action = match.group("action")
    if action is None:
        return CONTACT_METHODS[version].get(method, "method"), contact_id, version
    if action == "/promoteToMember" and version == "v3":
        return None, None, version  # v3 has no promoteToMember: updateContactType makes Members
    if method != "POST":
        return "method", contact_id, version
    return ("promote" if action == "/promoteToMember" else "contactType"), contact_id, version


def error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"errorCode": code, "message": message, "statusCode": status}


def not_found(contact_id: str) -> tuple[int, dict]:
    return error(404, "ContactNotFound", f"Contact {contact_id} was not found")


def _invalid_value(name: str, value: object) -> tuple[int, dict] | None:
    """Engage refuses a malformed email or phone number on write."""
    if value in (None, ""):
        return None
    if name == "email" and not (isinstance(value, str) and EMAIL_RE.match(value)):
        return error(400, "InvalidEmailAddress", "The email address is not valid")
    if name == "mobilePhone" and not (isinstance(value, str) and PHONE_RE.match(value)):
        return error(400, "InvalidPhoneNumber", "The mobile phone number is not valid")
    return None


def write_attributes(state: SandboxState, contact: dict, body: dict) -> tuple[int, dict] | None:
    """Write every known field present, empty or not; ignore unknown names, as Engage does."""
    for name, value in body.items():
        problem = _invalid_value(name, value)
        if problem:
            return problem
    attributes = contact["attributes"]
    filed = state.contacts.get(contact["id"]) is contact  # a contact being created is filed once it is stored
    if filed:
        state.unindex(contact)
    for name, value in body.items():
        if not state.writable(name):
            continue  # Engage drops unknown names without a word
        if name == "preferences" and isinstance(value, dict):
            current = attributes.get("preferences")
            merged = dict(current) if isinstance(current, dict) else {}
            merged.update({k: v for k, v in value.items() if k in PREFERENCE_FIELDS})
            attributes["preferences"] = merged
        else:
            attributes[name] = value
    if filed:
        state.index(contact)
    return None


def parse_body(raw: bytes) -> tuple[object, tuple[int, dict] | None]:
    if not raw.strip():
        return None, None
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError):
        return None, error(400, "InvalidJson", "The request body is not valid JSON")


def update(state: SandboxState, call: Call) -> tuple[int, object]:
    """Sparse: every known field present is written; `contactType` in the body is silently ignored."""
    contact_id, body = call.contact_id, call.body
    if body is None or body == {}:
        return error(400, "NoData", "No data to update")
    if not isinstance(body, dict):
        return error(400, "InvalidJson", "The request body must be a JSON object")
    with state.lock:
        contact = state.contacts.get(contact_id)
        if contact is None:
            return not_found(contact_id)
        problem = write_attributes(state, contact, body)
        if problem:
            return problem
        return 200, state.view(contact)


def promote(state: SandboxState, call: Call) -> tuple[int, object]:
    contact_id = call.contact_id
    body = {} if call.body is None else call.body
    if not isinstance(body, dict):
        return error(400, "InvalidJson", "The request body must be a JSON object")
    with state.lock:
        contact = state.contacts.get(contact_id)
        if contact is None:
            return not_found(contact_id)
        if contact["contactType"] == "Member":
            return error(400, "ContactIsAlreadyMember", "The contact is already a member")
        merged = {**contact["attributes"], **{k: v for k, v in body.items() if state.writable(k)}}
        problem = missing_member_attributes(state, merged)
        if problem:
            return problem
        problem = write_attributes(state, contact, body)
        if problem:
            return problem
        contact["contactType"] = "Member"
        contact["promotions"] += 1
        return 200, state.view(contact)


def missing_member_attributes(state: SandboxState, attributes: dict) -> tuple[int, dict] | None:
    missing = [name for name in state.member_required if attributes.get(name) in (None, "")]
    if missing:
        return error(400, "MissingRequiredAttributes", f"A member requires: {', '.join(missing)}")
    return None


def change_type(state: SandboxState, call: Call) -> tuple[int, object]:
    """v2 refuses Member (promoteToMember is the way); in v3 this is the way to make a Member."""
    contact_id, type_id = call.contact_id, call.query.get("contactTypeId")
    if not type_id or type_id not in state.contact_types:
        return error(400, "InvalidContactType", f"Unknown contact type: {type_id!r}")
    if type_id == "Member" and call.version == "v2":
        return error(400, "InvalidContactType", "Use promoteToMember to make a contact a Member")
    with state.lock:
        contact = state.contacts.get(contact_id)
        if contact is None:
            return not_found(contact_id)
        if type_id == "Member" and contact["contactType"] != "Member":
            problem = missing_member_attributes(state, contact["attributes"])
            if problem:
                return problem
            contact["promotions"] += 1
        contact["contactType"] = type_id
    return 200, None


def create(state: SandboxState, call: Call) -> tuple[int, object]:
    """A new contact from its attributes, `contactType` and the tenant's key attribute.

    `contactType` left out (or null) makes a Member without a word: Engage's trap.
    Unknown names are dropped and empty values stored, as update does.
    """
    body = {} if call.body is None else call.body
    if not isinstance(body, dict):
        return error(400, "InvalidJson", "The request body must be a JSON object")
    options = {name: call.create_option(name) for name in CREATE_OPTIONS}
    unapproved = options["createAsUnapproved"]
    if unapproved is not None and unapproved.lower() not in ("true", "false"):
        return error(400, "InvalidParameter", f"createAsUnapproved must be true or false, not {unapproved!r}")
    contact_type = body.get("contactType")
    contact_type = "Member" if contact_type is None else contact_type
    if contact_type not in state.contact_types:
        return error(400, "InvalidContactType", f"Unknown contact type: {contact_type!r}")
    key = state.key_attribute
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return error(400, "MissingKeyAttribute", f"A contact needs its key attribute {key}")
    with state.lock:
        if any(_same(c["attributes"].get(key), str(value), key) for c in state.with_value(key, str(value))):
            return error(409, "ApprovedContactWithKeyExists", f"A contact with that {key} exists")
        if key_value(key, str(value)) in state.being_created:  # a bulk batch not yet processed holds it
            return error(409, "ContactWithKeyIsBeingCreated", f"A contact with that {key} is being created")
        contact: dict[str, Any] = {
            "id": new_contact_id(),
            "contactType": contact_type,
            "attributes": {},
            "promotions": 0,
            "created": {"version": call.version, **options},
        }
        problem = write_attributes(state, contact, body)
        if problem:
            return problem
        if contact_type == "Member":
            problem = missing_member_attributes(state, contact["attributes"])
            if problem:
                return problem
        state.contacts[contact["id"]] = contact
        state.index(contact)
        return 201, state.view(contact)


def delete(state: SandboxState, call: Call) -> tuple[int, object]:
    """Delete a contact (no body); `source` tells why: a v2 header, a v3 query parameter (the other place is
    ignored). Engage soft-deletes: the contact is gone from every answer at once. Gone already: 404."""
    with state.lock:
        contact = state.contacts.get(call.contact_id)
        if contact is None:
            return not_found(call.contact_id)
        state.unindex(contact)
        del state.contacts[call.contact_id]
        source = call.headers.get("source") if call.version == "v2" else call.query.get("source")
        state.deleted.append({"id": call.contact_id, "contactType": contact["contactType"], "source": source})
    return 200, None


def get(state: SandboxState, call: Call) -> tuple[int, object]:
    with state.lock:
        contact = state.contacts.get(call.contact_id)
        return (200, state.view(contact)) if contact else not_found(call.contact_id)


def lookup(state: SandboxState, call: Call) -> tuple[int, object]:
    query = call.query
    keys = [k for k in query if k in LOOKUP_KEYS]
    if len(keys) != 1 or set(query) - set(LOOKUP_KEYS) - {"contactType"}:
        return error(400, "InvalidSearchQuery", "Give exactly one of " + ", ".join(LOOKUP_KEYS))
    key, value = keys[0], query[keys[0]]
    if key == "email" and not EMAIL_RE.match(value):
        return error(400, "InvalidEmailAddress", "The email address is not valid")
    if key == "mobilePhone" and not PHONE_RE.match(value):
        return error(400, "InvalidPhoneNumber", "The mobile phone number is not valid")
    if key == "socialSecurityNumber" and not SSN_RE.match(value):
        return error(400, "InvalidSocialSecurityNumber", "The social security number is not valid")
    contact_type = query.get("contactType")
    if contact_type is not None and contact_type not in state.contact_types:
        return error(400, "InvalidContactType", f"Unknown contact type: {contact_type!r}")
    fields = {
        "email": ("email",),
        "mobilePhone": ("mobilePhone",),
        "socialSecurityNumber": ("socialSecurityNumber",),
        "customKey": (state.custom_key,),
        "any": ("email", "mobilePhone", "socialSecurityNumber", state.custom_key),
    }[key]
    with state.lock:
        found = {c["id"]: c for f in fields for c in state.with_value(f, value)}
        matches = [
            c["id"]
            for c in found.values()
            if (contact_type is None or c["contactType"] == contact_type)
            and any(_same(c["attributes"].get(f), value, f) for f in fields)
        ]
    if not matches:
        return error(404, "ContactNotFound", "No contact matches the query")
    if len(matches) > 1:
        return error(409, "MultipleMatches", "More than one contact matches the query")
    return 200, matches[0]


def _same(stored: object, wanted: str, field: str) -> bool:
    if not isinstance(stored, str) or not stored:
        return False
    return stored.lower() == wanted.lower() if field == "email" else stored == wanted


WRITES = frozenset({"update", "promote", "contactType", "create", "delete", "bulkCreate", "bulkUpdate"})
HANDLERS = {
    "update": update,
    "promote": promote,
    "contactType": change_type,
    "get": get,
    "lookup": lookup,
    "create": create,
    "delete": delete,
}


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make sandbox (python -m local.engage_sandbox), of which this is a part")
