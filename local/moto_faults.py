"""Faults of AWS itself, put into moto where this project runs it: DynamoDB throttling its writes.

moto answers every call; the functions must also be right when DynamoDB refuses a write for a while
(`ProvisionedThroughputExceededException`, which DynamoDB answers when a table or partition is over its
capacity). `throttle("UpdateItem")` makes moto refuse that operation until `stop()` (or the `with` ends).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

# DynamoDB's operations and moto's handler methods for them.
OPERATIONS = {"UpdateItem": "update_item", "PutItem": "put_item", "DeleteItem": "delete_item",
              "GetItem": "get_item", "BatchGetItem": "batch_get_item"}  # fmt: skip
THROTTLED = "The level of configured provisioned throughput for the table was exceeded."
_lock = threading.Lock()
_throttled: dict[str, int] = {}  # operation -> how many refusals so far (while throttled)


def _patch(operation: str) -> None:
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
    from moto.dynamodb.responses import DynamoHandler

    method = OPERATIONS[operation]
    original = getattr(DynamoHandler, method)
    if getattr(original, "_engage_fault", False):
        return

    def refusing(self: Any) -> Any:
        with _lock:
            refuse = operation in _throttled
            if refuse:
                _throttled[operation] += 1
        if refuse:
            raise DynamodbException(ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException", THROTTLED)
        return original(self)

    refusing._engage_fault = True  # type: ignore[attr-defined]
    setattr(DynamoHandler, method, refusing)


def start(operation: str) -> None:
    """moto refuses `operation` (a DynamoDB operation name) as throttled from now on."""
    _patch(operation)
    with _lock:
        _throttled.setdefault(operation, 0)


def stop(operation: str) -> int:
    """moto answers `operation` again; how many calls it refused meanwhile."""
    with _lock:
        return _throttled.pop(operation, 0)


@contextlib.contextmanager
def throttle(operation: str) -> Iterator[dict[str, int]]:
    """moto refuses `operation` inside the block; the dict then says how many were refused (`refused`)."""
    seen = {"refused": 0}
    start(operation)
    try:
        yield seen
    finally:
        seen["refused"] = stop(operation)
