"""Engage's contact attributes: which names a contact has, which may be written, and what a value must look like.

Engage silently drops a name it does not know, so a name is checked here, with the
closest known name suggested (`firstNam` -> `firstName`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .listing import MAX_NAME_CHARS, looks_like_a_name, short

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

# Patterns that validate input are used with fullmatch: `$` would match before a trailing newline.
CUSTOM_ATTRIBUTE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}")
MOBILE_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")


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
            return f"'{short(name)}' is never writable through this function{hint}"
        if name in self.known:
            return None
        return unknown_name(name, self.known)


def unknown_name(name: str, known: Iterable[str], where: str = "") -> str:
    """An unknown-name message with the closest known name, which Engage would never give."""
    known = sorted(known)
    # no name that long is close to a known one (and difflib would be slow on it); a value-like one is not quoted
    if len(name) > MAX_NAME_CHARS or not looks_like_a_name(name):
        return f"unknown attribute '{where}{short(name)}' (Engage would silently ignore it)"
    lowered = {k.lower(): k for k in known}
    guess = lowered.get(name.lower()) or next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.6)), None)
    hint = f"; did you mean '{guess}'?" if guess else ""
    return f"unknown attribute '{where}{name}'{hint} (Engage would silently ignore it)"


def problem_with_value(name: str, value: Any) -> str | None:
    """A light check of a cleaned value, where Engage would refuse it anyway."""
    if name in OBJECT_ATTRIBUTES:
        return None if isinstance(value, Mapping) else f"'{name}' must be an object"
    if name in LIST_ATTRIBUTES:
        return None if isinstance(value, list) else f"'{name}' must be a list"
    if name not in STANDARD_ATTRIBUTES:
        return None  # a custom attribute's type is the tenant's business
    if isinstance(value, (Mapping, list)):
        return f"'{name}' must be a single value, not an object or a list"
    if name == "email" and not (isinstance(value, str) and EMAIL.fullmatch(value)):
        return "'email' does not look like an email address"
    if name == "mobilePhone" and not (isinstance(value, str) and MOBILE_PHONE.fullmatch(value)):
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


def preference_problems(value: Mapping) -> list[str]:
    problems = []
    for key, flag in value.items():
        if key not in PREFERENCE_FIELDS:
            problems.append(unknown_name(key, PREFERENCE_FIELDS, "preferences."))
        elif not isinstance(flag, bool):
            problems.append(f"'preferences.{key}' must be true or false")
    return problems
