"""Engage's contact API (v2) as the sandbox plays it, traps included.

Each handler takes the state and the parsed request and gives back
`(status, body)`; `body` is JSON-serialisable, or `None` for an empty answer.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from .state import EMAIL_RE, LOOKUP_KEYS, PHONE_RE, PREFERENCE_FIELDS, SSN_RE, SandboxState

CONTACT_PATH = re.compile(r"^/api/v2/contacts/(?P<id>[^/]+)(?P<action>/promoteToMember|/updateContactType)?/?$")


def route_of(method: str, path: str) -> tuple[str | None, str | None]:
    """(route name, contact id) for an API path; (None, None) when Engage has no such resource."""
    if path.rstrip("/") == "/api/v2/contacts/id":
        return ("lookup", None) if method == "GET" else ("method", None)
    match = CONTACT_PATH.match(path)
    if not match:
        return None, None
    contact_id = unquote(match.group("id"))
    action = match.group("action")
    if action is None:
        return {"POST": "update", "GET": "get"}.get(method, "method"), contact_id
    if method != "POST":
        return "method", contact_id
    return ("promote" if action == "/promoteToMember" else "contactType"), contact_id


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
    return None


def parse_body(raw: bytes) -> tuple[object, tuple[int, dict] | None]:
    if not raw.strip():
        return None, None
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError):
        return None, error(400, "InvalidJson", "The request body is not valid JSON")


def update(state: SandboxState, contact_id: str, body: object, query: dict) -> tuple[int, object]:
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


def promote(state: SandboxState, contact_id: str, body: object, query: dict) -> tuple[int, object]:
    body = {} if body is None else body
    if not isinstance(body, dict):
        return error(400, "InvalidJson", "The request body must be a JSON object")
    with state.lock:
        contact = state.contacts.get(contact_id)
        if contact is None:
            return not_found(contact_id)
        if contact["contactType"] == "Member":
            return error(400, "ContactIsAlreadyMember", "The contact is already a member")
        merged = {**contact["attributes"], **{k: v for k, v in body.items() if state.writable(k)}}
        missing = [name for name in state.member_required if merged.get(name) in (None, "")]
        if missing:
            return error(400, "MissingRequiredAttributes", f"A member requires: {', '.join(missing)}")
        problem = write_attributes(state, contact, body)
        if problem:
            return problem
        contact["contactType"] = "Member"
        contact["promotions"] += 1
        return 200, state.view(contact)


def change_type(state: SandboxState, contact_id: str, body: object, query: dict) -> tuple[int, object]:
    type_id = query.get("contactTypeId")
    if not type_id or type_id not in state.contact_types:
        return error(400, "InvalidContactType", f"Unknown contact type: {type_id!r}")
    if type_id == "Member":
        return error(400, "InvalidContactType", "Use promoteToMember to make a contact a Member")
    with state.lock:
        contact = state.contacts.get(contact_id)
        if contact is None:
            return not_found(contact_id)
        contact["contactType"] = type_id
    return 200, None


def get(state: SandboxState, contact_id: str, body: object, query: dict) -> tuple[int, object]:
    with state.lock:
        contact = state.contacts.get(contact_id)
        return (200, state.view(contact)) if contact else not_found(contact_id)


def lookup(state: SandboxState, contact_id: None, body: object, query: dict) -> tuple[int, object]:
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
        matches = [
            c["id"]
            for c in state.contacts.values()
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


WRITES = frozenset({"update", "promote", "contactType"})
HANDLERS = {"update": update, "promote": promote, "contactType": change_type, "get": get, "lookup": lookup}
