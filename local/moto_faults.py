"""Faults of AWS itself, put into moto where this project runs it: DynamoDB throttled, or DynamoDB and Secrets
Manager slow.

moto answers every call at once; the functions must also be right when DynamoDB refuses a write for a while
(`ProvisionedThroughputExceededException`, which DynamoDB answers when a table or partition is over its
capacity), or answers slowly. `throttle("UpdateItem")` makes moto refuse that operation, `slow("UpdateItem",
0.04)` (or `slow("GetSecretValue", 2)`) delays each answer, until the `with` ends; each counts the calls it
met (`calls`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

# DynamoDB's operations and moto's handler methods for them.
OPERATIONS = {
    "UpdateItem": "update_item",
    "PutItem": "put_item",
    "DeleteItem": "delete_item",
    "GetItem": "get_item",
    "BatchGetItem": "batch_get_item",
    "TransactWriteItems": "transact_write_items",
}
SECRETS_MANAGER = {"GetSecretValue": "get_secret_value"}  # slowed only (a throttle is DynamoDB's)
THROTTLED = "The level of configured provisioned throughput for the table was exceeded."
_lock = threading.Lock()
_faults: dict[str, dict[str, Any]] = {}  # operation -> {"throttle": bool, "delay": seconds, "calls": n}


def _patch(operation: str) -> None:
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
    from moto.dynamodb.responses import DynamoHandler
    from moto.secretsmanager.responses import SecretsManagerResponse

    handler: type = SecretsManagerResponse if operation in SECRETS_MANAGER else DynamoHandler
    method = {**OPERATIONS, **SECRETS_MANAGER}[operation]
    original = getattr(handler, method)
    if getattr(original, "_engage_fault", False):
        return

    def faulty(self: Any) -> Any:
        with _lock:
            fault = _faults.get(operation)
            if fault is not None and fault["only"] is not None and not _names(self, fault["only"]):
                fault = None  # a call of other items: not met by this fault
            if fault is not None:
                fault["calls"] += 1
        if fault is not None and fault["delay"]:
            time.sleep(fault["delay"])
        if fault is not None and fault["throttle"] and not _spared(self, fault["sparing"]):
            raise DynamodbException(ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException", THROTTLED)
        return original(self)

    faulty._engage_fault = True  # type: ignore[attr-defined]  # our mark on the function: moto patched once
    setattr(handler, method, faulty)


def _spared(handler: Any, sparing: str | None) -> bool:
    """Whether the call names one item whose key starts with `sparing` (that item's reads go through)."""
    if sparing is None:
        return False
    try:
        return handler.body["Key"]["id"]["S"].startswith(sparing)
    except (AttributeError, KeyError, TypeError):
        return False


def _names(handler: Any, prefix: str) -> bool:
    """Whether the call (an item's, or a transaction's) names an item whose key starts with `prefix`."""
    body = getattr(handler, "body", None) or {}
    parts = [body, *(next(iter(t.values()), {}) for t in body.get("TransactItems", []) if isinstance(t, dict))]
    keys = [(part.get("Key") or part.get("Item") or {}).get("id", {}).get("S", "") for part in parts]
    return any(isinstance(key, str) and key.startswith(prefix) for key in keys)


def start(
    operation: str, *, throttle: bool = False, delay: float = 0.0, sparing: str | None = None, only: str | None = None
) -> None:
    """From now on moto refuses `operation` as throttled (but for the items whose key starts with `sparing`), or
    answers it `delay` seconds late; with `only`, just the calls that name an item whose key starts with it."""
    _patch(operation)
    with _lock:
        _faults[operation] = {"throttle": throttle, "delay": delay, "calls": 0, "sparing": sparing, "only": only}


def stop(operation: str) -> int:
    """moto answers `operation` as before; how many calls met the fault meanwhile."""
    with _lock:
        return _faults.pop(operation, {"calls": 0})["calls"]


@contextlib.contextmanager
def _fault(operation: str, **fault: Any) -> Iterator[dict[str, int]]:
    seen = {"calls": 0}
    start(operation, **fault)
    try:
        yield seen
    finally:
        seen["calls"] = stop(operation)


def throttle(
    operation: str, sparing: str | None = None, only: str | None = None
) -> contextlib.AbstractContextManager[dict[str, int]]:
    """moto refuses `operation` inside the block (but for items whose key starts with `sparing`; with `only`, just
    for the calls naming an item whose key starts with it); the dict then says how many calls met the fault."""
    return _fault(operation, throttle=True, sparing=sparing, only=only)


def slow(operation: str, seconds: float) -> contextlib.AbstractContextManager[dict[str, int]]:
    """moto answers `operation` `seconds` late inside the block; the dict then says how many calls (`calls`)."""
    return _fault(operation, delay=seconds)


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make soak (python -m local.soak) or make test, which use it")
