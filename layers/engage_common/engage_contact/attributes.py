"""Engage's contact attributes and the sparse payload built from them.

Engage overwrites a field with any empty value it receives and silently drops
names it does not know. So what we send is built, never passed through: empty
values are left out at any depth, `clear` is the only way to send `""`, and a
name Engage would ignore is refused here with the closest known name.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequest, NoData

STANDARD_ATTRIBUTES = frozenset(
    {
        "firstName", "lastName", "email", "mobilePhone", "socialSecurityNumber",
        "externalId", "memberNumber", "street", "careOf", "zipCode", "city",
        "country", "countryCode", "birthDay", "gender", "store", "createdInStore",
        "preferences", "consents",
    }
)  # fmt: skip
PREFERENCE_FIELDS = frozenset({"acceptsEmail", "acceptsSms", "acceptsPostal"})
OBJECT_ATTRIBUTES = frozenset({"preferences"})
LIST_ATTRIBUTES = frozenset({"consents"})
# contactType changes through promote / change type; the rest Engage sets itself.
NEVER_WRITABLE = frozenset({"contactType", "id", "contactId", "age", "rfm", "nps", "retail"})
NEVER_WRITABLE_PREFIXES = ("nps.", "retail.")
# May be changed, never cleared: a contact without its identifier is unlinked from every later lookup.
IDENTIFIERS = frozenset({"email", "mobilePhone", "socialSecurityNumber", "externalId", "memberNumber"})

CUSTOM_ATTRIBUTE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
MOBILE_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_DEPTH = 8


@dataclass(frozen=True)
class AttributeCatalogue:
    """The names a tenant's contacts have: Engage's standard ones plus its configured custom ones."""

    custom: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        clashing = sorted(self.custom & (STANDARD_ATTRIBUTES | NEVER_WRITABLE))
        if clashing:
            raise ValueError(f"custom attributes clash with Engage's own names: {', '.join(clashing)}")

    @property
    def known(self) -> frozenset[str]:
        return STANDARD_ATTRIBUTES | self.custom

    def problem_with_name(self, name: str) -> str | None:
        """Why `name` cannot be written at the top level, or None when it can."""
        if name in NEVER_WRITABLE or name.startswith(NEVER_WRITABLE_PREFIXES):
            hint = " (use the promote or change-type function)" if name == "contactType" else ""
            return f"'{name}' is never writable through this function{hint}"
        if name in self.known:
            return None
        return unknown_name(name, self.known)


def unknown_name(name: str, known: Iterable[str], where: str = "") -> str:
    """An unknown-name message with the closest known name, which Engage would never give."""
    known = sorted(known)
    lowered = {k.lower(): k for k in known}
    guess = lowered.get(name.lower()) or next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.6)), None)
    hint = f"; did you mean '{guess}'?" if guess else ""
    return f"unknown attribute '{where}{name}'{hint} (Engage would silently ignore it)"


@dataclass(frozen=True)
class SparsePayload:
    """What is sent to Engage, and which attributes were left out for being empty."""

    sent: dict[str, Any]
    dropped_empty: list[str] = field(default_factory=list)


def _clean(value: Any, path: str, dropped: list[str], depth: int = 0) -> Any:
    """The value with every empty part removed; `_EMPTY` when nothing is left of it."""
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"'{path}' is nested more than {MAX_DEPTH} levels deep", {"field": path})
    if isinstance(value, str):
        value = value.strip()
    elif isinstance(value, Mapping):
        value = {
            k: cleaned
            for k, v in value.items()
            if (cleaned := _clean(v, f"{path}.{k}", dropped, depth + 1)) is not _EMPTY
        }
    elif isinstance(value, list):
        value = [
            cleaned
            for i, v in enumerate(value)
            if (cleaned := _clean(v, f"{path}.{i}", dropped, depth + 1)) is not _EMPTY
        ]
    if value is None or value == "" or value == {} or value == []:
        dropped.append(path)
        return _EMPTY
    return value  # False and 0 are values, never "empty"


_EMPTY = object()


def _check_value(name: str, value: Any) -> str | None:
    """A light check of a cleaned value, where Engage would refuse it anyway."""
    if name in OBJECT_ATTRIBUTES:
        return None if isinstance(value, Mapping) else f"'{name}' must be an object"
    if name in LIST_ATTRIBUTES:
        return None if isinstance(value, list) else f"'{name}' must be a list"
    if name not in STANDARD_ATTRIBUTES:
        return None  # a custom attribute's type is the tenant's business
    if isinstance(value, (Mapping, list)):
        return f"'{name}' must be a single value, not an object or a list"
    if name == "email" and not (isinstance(value, str) and EMAIL.match(value)):
        return "'email' does not look like an email address"
    if name == "mobilePhone" and not (isinstance(value, str) and MOBILE_PHONE.match(value)):
        return "'mobilePhone' must start with + and a country code, digits only (+46701234567)"
    if name == "birthDay" and not _is_iso_date(value):
        return "'birthDay' must be a date as YYYY-MM-DD"
    return None


def _is_iso_date(value: Any) -> bool:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_preferences(value: Mapping) -> list[str]:
    problems = []
    for key, flag in value.items():
        if key not in PREFERENCE_FIELDS:
            problems.append(unknown_name(key, PREFERENCE_FIELDS, "preferences."))
        elif not isinstance(flag, bool):
            problems.append(f"'preferences.{key}' must be true or false")
    return problems


def build_sparse_payload(
    attributes: Mapping[str, Any] | None,
    clear: Iterable[str] = (),
    catalogue: AttributeCatalogue = AttributeCatalogue(),
    *,
    require_data: bool = True,
) -> SparsePayload:
    """Build what is sent to Engage from a command's `attributes` and `clear`.

    Raises InvalidRequest for unknown, never-writable or malformed names and
    values (all of them, in one message), and NoData when `require_data` and
    nothing is left to send.
    """
    attributes = attributes or {}
    clear = list(dict.fromkeys(clear))
    problems: list[str] = []
    unknown: list[str] = []
    for name in [*attributes, *clear]:
        problem = catalogue.problem_with_name(name)
        if problem:
            problems.append(problem)
            unknown.extend([name] if problem.startswith("unknown") else [])
    problems.extend(f"'{name}' is an object and cannot be cleared" for name in clear if name in OBJECT_ATTRIBUTES)
    problems.extend(
        f"'{name}' is an identifier: it may be changed but never cleared" for name in clear if name in IDENTIFIERS
    )

    dropped: list[str] = []
    cleaned: dict[str, Any] = {}
    for name, value in attributes.items():
        value = _clean(value, name, dropped)
        if value is _EMPTY:
            continue
        cleaned[name] = value
        problem = _check_value(name, value)
        if problem:
            problems.append(problem)
        elif name == "preferences":
            preference_problems = _check_preferences(value)
            problems.extend(preference_problems)
            unknown.extend(f"preferences.{k}" for k in value if k not in PREFERENCE_FIELDS)

    both = [name for name in clear if name in cleaned]
    problems.extend(f"'{name}' is both in 'clear' and given a value in 'attributes'" for name in both)
    if problems:
        details = {"problems": list(dict.fromkeys(problems)), "unknownNames": list(dict.fromkeys(unknown))}
        raise InvalidRequest("; ".join(details["problems"]), details)

    sent = {**cleaned, **dict.fromkeys(clear, "")}
    if require_data and not sent:
        raise NoData("nothing left to send: every attribute was empty", {"droppedEmpty": dropped})
    return SparsePayload(sent=sent, dropped_empty=dropped)
