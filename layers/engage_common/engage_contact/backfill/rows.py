"""A backfill row into the one update command: the same parser and sparse payload as every other command.

A row that cannot become a valid command is an invalid row: its number and a reason that names
columns and rules, never the row's values (they are personal data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.attributes import AttributeCatalogue
from ..domain.command import Operation, parse_command
from ..domain.contacts import message_group
from ..errors import EngageContactError
from .mapping import EXPECTED, ROW_TRANSFORMS, Column, RowMapping

KEY_PREFIX = "backfill:"
# Every command built from a row sends only what changed (contract, "Only what changed"): a backfill run again,
# or over customers the webhooks already brought, spends no request on values Engage holds.
SEND_ONLY_CHANGED = True


class InvalidRow(Exception):
    """A row that is not turned into a command: its reason names no value of the row."""

    def __init__(self, row: int, reason: str) -> None:
        super().__init__(reason)
        self.row = row
        self.reason = reason

    def report(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason}


@dataclass(frozen=True)
class RowCommand:
    row: int
    command: dict[str, Any]
    group: str  # the customer's key: two rows for one customer are applied in file order

    @property
    def deduplication_id(self) -> str:
        return self.command["idempotencyKey"]


def idempotency_key(backfill_id: str, row: int) -> str:
    """`backfill:<id>:<row>`: the same backfill run again never applies a row twice."""
    return f"{KEY_PREFIX}{backfill_id}:{row}"


def backfill_row(key: Any) -> tuple[str, int] | None:
    """(backfill id, row) of a backfill command's idempotency key; None for any other key."""
    if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
        return None
    backfill_id, _, row = key[len(KEY_PREFIX) :].rpartition(":")
    return (backfill_id, int(row)) if backfill_id and row.isdigit() else None


def first_row(commands: list[RowCommand]) -> tuple[str, int]:
    """(backfill id, row) of a batch's first row command; ValueError for a command of no backfill's row."""
    where = backfill_row(commands[0].deduplication_id)
    if where is None:
        raise ValueError("a backfill row's command has no backfill idempotency key")
    return where


def row_command(
    mapping: RowMapping, values: Mapping[str, Any], backfill_id: str, row: int, catalogue: AttributeCatalogue
) -> RowCommand:
    """The row's update command, checked by parse_command as any command is; InvalidRow otherwise."""
    key = cell(mapping.key_column, values, row)
    if key is None:
        raise InvalidRow(row, f"the key column {mapping.key_column.name!r} is empty")
    attributes: dict[str, Any] = {}
    for column in mapping.columns:
        value = cell(column, values, row)
        if value is None:
            continue
        if "." in column.attribute:
            parent, child = column.attribute.split(".", 1)
            attributes.setdefault(parent, {})[child] = value
        else:
            attributes[column.attribute] = value
    command: dict[str, Any] = {
        "lookup": {mapping.lookup_key: key},
        "attributes": attributes,
        "idempotencyKey": idempotency_key(backfill_id, row),
    }
    if mapping.create_if_missing is not None:
        command["createIfMissing"] = dict(mapping.create_if_missing)
    if SEND_ONLY_CHANGED:
        command["sendOnlyChanged"] = True
    try:
        parse_command(command, Operation.UPDATE, catalogue)
    except EngageContactError as error:  # the contract's messages name fields and rules, not values
        raise InvalidRow(row, f"{error.name}: {error}") from None
    return RowCommand(row, command, message_group(command))


def cell(column: Column, values: Mapping[str, Any], row: int) -> Any:
    """The column's value through its transform; None when empty. A value the transform cannot read is refused."""
    raw = values.get(column.name)
    if isinstance(raw, str):
        if any("\udc80" <= ch <= "\udcff" for ch in raw):  # bytes that were not UTF-8, kept as surrogates
            raise InvalidRow(row, f"column {column.name!r} is not UTF-8 text")
        raw = raw.strip()
    if raw is None or raw == "":
        return None
    if isinstance(raw, (dict, list)):
        raise InvalidRow(row, f"column {column.name!r} holds an object or a list, not a value")
    value = ROW_TRANSFORMS[column.transform](raw)
    if value is None or value == "":
        expected = EXPECTED.get(column.transform, "a value")
        raise InvalidRow(row, f"column {column.name!r} is not {expected}")
    return value
