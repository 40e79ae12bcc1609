"""A timeline of the local stack for the benches (`LOCAL_TRACE_FILE`): where a live command's time goes.

When the variable names a file, the stack appends one JSON line per event: a poller's receive (`received`:
the queue's function and the message ids, when SQS handed them over), a batch's handling (`handled`: when the
handler started and ended), each wait for a turn of the Engage budget (`turn`: `background` for a backfill
writer's container, asked and given), and each call of the light DynamoDB client (`dynamodb`: its round trip
to the table, moto here). `local.bench_backfill` joins them with the sandbox's request log. Nothing
is written without the variable, and nothing here is deployed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

_lock = threading.Lock()
_stream: Any = None


def start() -> None:
    """Open the trace named by LOCAL_TRACE_FILE (if any) and time the layer's waits for a turn."""
    global _stream
    path = os.environ.get("LOCAL_TRACE_FILE")
    if not path or _stream is not None:
        return
    _stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the stack's whole life
    from engage_contact.engage import client, pacing

    def timed_wait(budget: Any, within: Any, sleep: Any, *args: Any) -> int:
        asked = time.time()
        missed = pacing.wait_for_turn(budget, within, sleep, *args)
        note("turn", background=isinstance(budget, pacing.BackgroundShare), asked=asked, given=time.time())
        return missed

    client.wait_for_turn = timed_wait  # type: ignore[assignment]  # the trace wraps the layer's own step
    from engage_contact.aws import dynamodb_light

    untimed = dynamodb_light.LightDynamoDb.call

    def timed_call(self: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        asked = time.time()
        try:
            return untimed(self, operation, params)
        finally:
            note("dynamodb", operation=operation, asked=asked, ms=(time.time() - asked) * 1000)

    dynamodb_light.LightDynamoDb.call = timed_call  # type: ignore[method-assign]  # timed, only while tracing


def note(kind: str, **fields: Any) -> None:
    if _stream is None:
        return
    line = json.dumps({"kind": kind, "t": time.time(), **fields})
    with _lock:
        _stream.write(line + "\n")


def read(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as stream:
            return [json.loads(line) for line in stream if line.strip()]
    except FileNotFoundError:
        return []


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make bench (python -m local.bench), which sets LOCAL_TRACE_FILE for it")
