"""The sparse payload: what is sent to Engage, built from a command's `attributes` and `clear`, never passed through.

Engage overwrites a field with any empty value it receives. So empty values are
left out at any depth, strings are trimmed, `false` and `0` are kept, and `clear`
is the only way to send `""`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest, NoData
from .attributes import (
    IDENTIFIERS,
    OBJECT_ATTRIBUTES,
    PREFERENCE_FIELDS,
    STANDARD_ATTRIBUTES,
    AttributeCatalogue,
    preference_problems,
    problem_with_value,
)
from .listing import first_few, name_some, short
from .values import value_problems

MAX_DEPTH = 8


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
    problems = Problems()
    for name in [*attributes, *clear]:
        problems.name(name, catalogue.problem_with_name(name))
    problems.clear_names(clear)
    dropped: list[str] = []
    cleaned: dict[str, Any] = {}
    for name, value in attributes.items():
        value = _clean(value, name, dropped)
        if value is not _EMPTY:
            cleaned[name] = value
            problems.value(name, value)
    problems.add(f"'{name}' is both in 'clear' and given a value in 'attributes'" for name in clear if name in cleaned)
    problems.raise_any()
    sent = {**cleaned, **dict.fromkeys(clear, "")}
    if require_data and not sent:
        raise NoData("nothing left to send: every attribute was empty", {"droppedEmpty": dropped})
    return SparsePayload(sent=sent, dropped_empty=dropped)


class Problems:
    """Every problem of one command's attributes, so that one answer names them all."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.unknown: list[str] = []

    def add(self, problems: Iterable[str]) -> None:
        self.found.extend(problems)

    def name(self, name: str, problem: str | None) -> None:
        if problem:
            self.found.append(problem)
            if problem.startswith("unknown"):
                self.unknown.append(name)

    def clear_names(self, clear: list[str]) -> None:
        self.add(f"'{name}' is an object and cannot be cleared" for name in clear if name in OBJECT_ATTRIBUTES)
        self.add(
            f"'{name}' is an identifier: it may be changed but never cleared" for name in clear if name in IDENTIFIERS
        )

    def value(self, name: str, value: Any) -> None:
        problem = problem_with_value(name, value)
        self.add(value_problems(name, value, custom=name not in STANDARD_ATTRIBUTES))
        if problem:
            self.found.append(problem)
        elif name == "preferences":
            self.add(preference_problems(value))
            self.unknown.extend(f"preferences.{k}" for k in value if k not in PREFERENCE_FIELDS)

    def raise_any(self) -> None:
        """One InvalidRequest naming the first few problems and counting the rest (in the message and details)."""
        if self.found:
            problems, unknown = list(dict.fromkeys(self.found)), list(dict.fromkeys(self.unknown))
            details = {
                "problems": first_few(problems),
                "problemCount": len(problems),
                "unknownNames": [short(n) for n in first_few(unknown)],
                "unknownNameCount": len(unknown),
            }
            raise InvalidRequest(name_some(problems), details)
