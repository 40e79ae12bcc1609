"""`python -m local.trace_path`: the way one queued command travels through the layer's modules, counted.

One SQS record of an update by lookup with `sendOnlyChanged` goes through the update function's handler (a
container warmed by one record before it) against moto's AWS (in process) and the Engage sandbox. Every call
and return of the layer's code on the record's thread is noted (`sys.setprofile`); the module the command is
in is the innermost frame of the layer on the stack (a call into boto3 or Powertools stays where it was made).
Printed, from the SQS record to the Engage call that writes, and for the whole record (the outcome recorded):
the stops (a stay in one module until the command moves to another), the modules, and the returns (a stop in a
module the command had already left). A path that reads top to bottom enters each module once or twice.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from .template import LAYER

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

REGION = "eu-north-1"
KEY = "trace-api-key"
PACKAGE = LAYER / "engage_contact"
# The calls that write to Engage (engage/client.py): where "to the Engage call" ends.
WRITES = frozenset(
    f"engage/client.py:{name}"
    for name in ("update_contact", "promote_to_member", "change_contact_type", "create_contact")
)


class ModuleTrace:
    """The layer modules one thread's command was in, in order, with the function entered at each event.

    The command is in the innermost function of the layer on the stack that was handed it or one of its parts
    (an argument that is the `Command`, its lookup, payload or creation, or a callback bound to one of them): a
    helper called without them, or a call into boto3, leaves it where it was.
    """

    def __init__(self, command_type: type) -> None:
        self.command_type = command_type
        self.parts: tuple[Any, ...] = ()  # the traced command's lookup, payload and creation, once seen
        self.events: dict[int, list[tuple[str | None, str | None]]] = {}
        self._modules: dict[str, str | None] = {}

    def module(self, filename: str) -> str | None:
        if filename not in self._modules:
            path = Path(filename)
            self._modules[filename] = path.relative_to(PACKAGE).as_posix() if path.is_relative_to(PACKAGE) else None
        return self._modules[filename]

    def carries(self, frame: Any) -> bool:
        code = frame.f_code
        if self.module(code.co_filename) is None:
            return False
        count = code.co_argcount + code.co_kwonlyargcount
        values = [frame.f_locals.get(name) for name in code.co_varnames[:count]]
        values += [a for v in values if isinstance(v, functools.partial) for a in v.args]  # a callback bound to it
        for value in values:
            if isinstance(value, self.command_type):
                if not self.parts:
                    parts = (getattr(value, name, None) for name in ("lookup", "payload", "creation"))
                    self.parts = tuple(p for p in parts if p is not None)
                return True
        return any(value is part for value in values for part in self.parts)

    def where(self, frame: Any) -> str | None:
        """The module of the innermost frame of the layer handed the command (None: none on this stack)."""
        while frame is not None:
            if self.carries(frame):
                return self.module(frame.f_code.co_filename)
            frame = frame.f_back
        return None

    def __call__(self, frame: Any, event: str, _arg: Any) -> None:
        # An event of a frame outside the layer (boto3, moto in process, the standard library) cannot change where
        # the command is: the innermost carrier on its stack is its caller's, which the last event noted already.
        if self.module(frame.f_code.co_filename) is None:
            return
        if event == "call":
            entered = f"{self.module(frame.f_code.co_filename)}:{frame.f_code.co_name}"
            self.events.setdefault(threading.get_ident(), []).append((self.where(frame), entered))
        elif event == "return":
            self.events.setdefault(threading.get_ident(), []).append((self.where(frame.f_back), None))

    def path(self, until_write: bool) -> list[tuple[str, bool]]:
        """The stops of the thread that ran the command, to the first Engage write or to its end: each stop's
        module, and whether the command came to it by a call (else by returning to a caller)."""
        for events in self.events.values():
            if not any(module for module, _ in events):
                continue
            stops: list[tuple[str, bool]] = []
            for module, entered in events:
                if until_write and entered in WRITES:
                    stops.append(("engage/client.py", True))
                    break
                if module is not None and (not stops or stops[-1][0] != module):
                    stops.append((module, entered is not None))
            return stops
        raise RuntimeError("no thread carried the command: did the handler run it?")


def figures(stops: list[tuple[str, bool]]) -> dict[str, Any]:
    """Stops, modules, returns to a module already left (by a call or to a caller), and calls into a module
    the command had already entered by a call (a callback, or a second visit)."""
    modules = [m for m, _ in stops]
    entries = Counter(m for m, by_call in stops if by_call)
    return {
        "stops": len(stops),
        "modules": len(set(modules)),
        "returns": len(stops) - len(set(modules)),
        "calls_into_a_module_entered_before": sum(n - 1 for n in entries.values() if n > 1),
        "entered_by_call_more_than_twice": {m: n for m, n in entries.most_common() if n > 2},
        "entries_by_call": dict(entries.most_common()),
        "path": [m if by_call else f"({m})" for m, by_call in stops],
    }


def trace() -> dict[str, Any]:
    """Set up moto and the sandbox, warm a container with one record, trace the next one."""
    from moto import mock_aws

    from .engage_sandbox import DEMO_CONTACTS, EngageSandbox
    from .lambda_runtime import LocalContext, sqs_event

    env = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "trace",
        "AWS_SECRET_ACCESS_KEY": "trace",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with mock_aws(), EngageSandbox(api_keys=(KEY,)) as sandbox:
            import boto3

            secrets = boto3.client("secretsmanager")
            secret = secrets.create_secret(Name="trace-key", SecretString=KEY)["ARN"]
            digest_key = secrets.create_secret(Name="trace-digest-key", SecretString="trace-digest-key-" + "0" * 32)
            boto3.client("dynamodb").create_table(
                TableName="trace-idempotency",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            )
            os.environ.update(
                {
                    "ENGAGE_BASE_URL": sandbox.url,
                    "ENGAGE_API_KEY_SECRET_ARN": secret,
                    "DIGEST_KEY_SECRET_ARN": digest_key["ARN"],
                    "IDEMPOTENCY_TABLE": "trace-idempotency",
                    "WEBHOOK_SIGNING": "off",
                    "ENGAGE_REQUESTS_PER_SECOND": "200",
                }
            )
            from engage_contact.domain.command import Operation
            from engage_contact.handler import make_handler

            handler = make_handler(Operation.UPDATE)

            def record(n: int, email: str) -> dict[str, Any]:
                command = {"lookup": {"email": email}, "attributes": {"city": f"Lund {n}"}, "sendOnlyChanged": True}
                message = {
                    "MessageId": f"trace-{n}",
                    "ReceiptHandle": f"rh-{n}",
                    "Body": json.dumps(command),
                    "Attributes": {
                        "ApproximateReceiveCount": "1",
                        "MessageGroupId": f"trace-{n}",
                        "SentTimestamp": "1700000000000",
                    },
                }
                arn = f"arn:aws:sqs:{REGION}:123456789012:UpdateContactQueue.fifo"
                return sqs_event([message], arn, REGION)

            emails = [c["attributes"]["email"] for c in DEMO_CONTACTS]  # type: ignore[index]  # demo data: a dict each
            warm = handler(record(0, emails[1]), LocalContext())  # imports, clients, threads: as a warm container
            if warm.get("batchItemFailures"):
                raise RuntimeError(f"the warming record failed: {warm}")
            from engage_contact.domain.command import Command

            profile = ModuleTrace(Command)
            threading.setprofile(profile)
            sys.setprofile(profile)
            try:
                answer = handler(record(1, emails[0]), LocalContext(timeout_seconds=300))  # profiled: slower
            finally:
                sys.setprofile(None)
                threading.setprofile(None)
            if answer.get("batchItemFailures"):
                raise RuntimeError(f"the traced record failed: {answer}")
            routes = [r["route"] for r in sandbox.state.request_log()]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {
        "to_engage_call": figures(profile.path(True)),
        "whole_record": figures(profile.path(False)),
        "engage_routes": routes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.trace_path", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parsed = parser.parse_args(argv)
    result = trace()
    if parsed.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, title in (
        ("to_engage_call", "from the SQS record to the Engage call"),
        ("whole_record", "the whole record, its outcome recorded"),
    ):
        f = result[name]
        print(
            f"{title}: {f['stops']} stops in {f['modules']} modules, {f['returns']} returns to a module left, "
            f"{f['calls_into_a_module_entered_before']} calls into a module entered before"
        )
        print("  " + " > ".join(f["path"]) + "   ((m): back in m from a call it made)")
        print("  entered by a call: " + ", ".join(f"{m} {n}" for m, n in f["entries_by_call"].items()))
    print("Engage received: " + ", ".join(result["engage_routes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
