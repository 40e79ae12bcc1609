"""`make soak`: thousands of commands through SQS while Engage and Secrets Manager fail, then a reconciliation.

Every command must end applied exactly as intended in the sandbox, or in a
dead-letter queue with its reason; no field may be emptied that a command did
not clear; no contact promoted twice; each contact's updates in order. The
last line is the verdict:

    soak: N commands, F faults, R retries, A applied, D dead-lettered, L lost, peak P/s (bound B)

Among them, creates of new customers (an update with `createIfMissing`, found by a new email): some sent
twice, some concurrently (two commands for one new key in different message groups), some under an
apply-then-503 on the create route. Their reconciliation adds: no key has two contacts, and every create
that Engage applied made the contact its command asked for (type and attributes).

Then Shopify consent events mixed with profile events go through the API, out of order and retried, while
Engage still fails (local.soak_consent): each contact's preferences must end as the latest consent sent.

SOAK_COMMANDS (default 5000) and SOAK_SEED (default 1) set the size and the draw; SOAK_API_VERSION=v3 starts
the stack with EngageApiVersion v3 (every call through Engage's v3 API).

Secrets Manager also becomes unreachable for real, through a TCP proxy in front of moto's (`local.fault_proxy`):
connections refused for SOAK_SECRETS_DOWN_SECONDS (default 60), then hanging (read timeouts) as long, while
the Engage key is rotated, so every container must read it again meanwhile. And a container of the update
function, in a process of its own, is SIGKILLed while Engage handles its batch: the batch comes back and is
applied once. Then DynamoDB throttles every call (ProvisionedThroughputExceededException) as long as
Secrets Manager was refused.

Bulk traffic runs alongside (local.soak_bulk): a backfill of SOAK_BULK_ROWS rows (default a fifth of
SOAK_COMMANDS; 0: none), queued in chunks by the backfill intake and written by the backfill writer (new
customers through Engage's bulk endpoint) while the live commands are applied, under the same faults; each of
its rows must end in Engage once or dead-lettered with its reason, and its counters must account for each row
once. Not with compressed time.
Backoff waits are skipped (the visibility each failure was given is the
functions' business and is tested elsewhere); everything else is real: the
functions, moto's server, the sandbox over HTTP, all on 127.0.0.1.

Erasures race updates: now and then a contact is erased (an `erase` command on the erase function's queue,
its policy `record` or `erase`), after which no command for it is planned; every command queued before it is
either applied before the erasure or skipped (`erased`) after it, never applied after it, and at the end the
table holds no item that names an erased contact (the reconciliation adds these checks; skipped commands
are counted as `skipped (erased)`).

SOAK_OUTAGE_HOURS=6: instead of scattered faults, Engage is down (503 on every
call) from the start for that many hours of simulated time, against the stack's
OutageToleranceHours (its default, or SOAK_TOLERANCE_HOURS). Time is compressed:
each failed record waits exactly the backoff the function gave it, on a clock
that jumps to the next record due, so hours pass in seconds (the rate budget is
the template's highest, 200/s, so hours of retries are not paced in real time).
It passes when nothing is dead-lettered but the invalid commands.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import soak_bulk, soak_consent
from .engage_sandbox import peak_per_second
from .engage_sandbox.state import Fault
from .fault_proxy import FaultProxy
from .stack import LocalStack
from .template import LAYER

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

CONTAINERS_PER_QUEUE = 2  # each queue drives two containers, which share the one rate budget
PEAK_ALLOWANCE = 1.11  # in no second more than the budget and a small burst (45/s: 49)
UPDATE_FIELDS = ("firstName", "lastName", "street", "city", "zipCode", "careOf")
CLEARABLE = ("careOf", "street", "zipCode")
FAULTS = (  # what Engage does wrong, and how often
    {"kind": "status", "status": 503, "fraction": 0.03},
    {"kind": "status", "status": 429, "fraction": 0.02, "headers": {"Retry-After": "0"}},
    {"kind": "hang", "seconds": 1.0, "fraction": 0.005},
    {"kind": "drop", "fraction": 0.01},
    {"kind": "apply_then_status", "status": 503, "fraction": 0.02},
    # a create Engage applies but answers 503: its outcome unknown, it must be looked up before it is sent again
    {"kind": "apply_then_status", "route": "create", "status": 503, "fraction": 0.2},
)
CREATE_TYPES = ("Contact", "Prospect")


@dataclass
class Planned:
    index: int
    operation: str  # update | promote | contact-type
    contact: str
    command: dict[str, Any]
    expect_error: str | None = None
    duplicate_of: int | None = None
    group: str | None = None  # a message group of its own, not the contact's: sent concurrently with another
    sent_at: float = 0.0  # when the producer queued it (epoch seconds)

    @property
    def creates(self) -> bool:
        return "createIfMissing" in self.command

    @property
    def key(self) -> str:
        return self.command["idempotencyKey"]


@dataclass
class Report:
    commands: int
    faults: int
    retries: int
    applied: int
    dead_lettered: int
    lost: int
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    peak: int = 0  # most Engage requests started in any one second, from the sandbox's log
    peak_bound: int = 0
    simulated_hours: float = 0.0  # with an outage: the simulated time the run took
    drained_after: float | None = None  # with an outage: simulated seconds from Engage's return to empty queues
    creates: int = 0  # commands that create a new customer (update with createIfMissing), duplicates included
    created: int = 0  # new customers' contacts in the sandbox at the end
    api_version: str = "v2"
    api_prefixes: list[str] = field(default_factory=list)  # /api/v2, /api/v3: where the sandbox's requests went
    consent_events: int = 0  # Shopify consent and profile deliveries of the consent kind (local.soak_consent)
    erasures: int = 0  # erase commands among the commands
    skipped: int = 0  # commands queued before their contact's erasure and (rightly) not applied after it
    bulk: dict[str, int] = field(default_factory=dict)  # the bulk kind's figures (local.soak_bulk.check)

    def line(self) -> str:
        erased = f", {self.skipped} skipped (erased)" if self.erasures else ""
        return (
            f"soak: {self.commands} commands, {self.faults} faults, {self.retries} retries, "
            f"{self.applied} applied, {self.dead_lettered} dead-lettered, {self.lost} lost{erased}, "
            f"peak {self.peak}/s (bound {self.peak_bound})"
        )


def _value(rng: random.Random, name: str, i: int) -> Any:
    roll = rng.random()
    if roll < 0.15:
        return rng.choice(["", None, "   "])  # empties: must never reach Engage
    return f"{name}-{i}"


def plan(count: int, seed: int, contacts: list[str]) -> list[Planned]:
    """The commands, in the order they are sent: updates mostly, one type change per contact at most."""
    rng = random.Random(seed)
    planned: list[Planned] = []
    typed: set[str] = set()
    live = list(contacts)  # an erased contact gets no command after its erasure
    while len(planned) < count:
        i = len(planned)
        contact = rng.choice(live)
        roll = rng.random()
        key = f"soak-{seed}-{i}"
        if 0.11 <= roll < 0.115 and len(live) > 1 and i > 20:  # erasures racing the contact's queued updates
            live.remove(contact)
            erasure = rng.choice(("record", "erase"))
            planned.append(
                Planned(
                    i,
                    "erase",
                    contact,
                    {"contactId": contact, "idempotencyKey": key, "erasure": erasure, "source": "soak"},
                )
            )
            continue
        if roll < 0.05 and contact not in typed:
            typed.add(contact)
            if rng.random() < 0.5:
                planned.append(
                    Planned(
                        i,
                        "promote",
                        contact,
                        {"contactId": contact, "idempotencyKey": key, "attributes": {"memberNumber": f"m{i}"}},
                    )
                )
            else:
                planned.append(
                    Planned(
                        i,
                        "contact-type",
                        contact,
                        {"contactId": contact, "idempotencyKey": key, "contactTypeId": "Prospect"},
                    )
                )
            continue
        if 0.07 <= roll < 0.11:
            planned.extend(_creates(rng, seed, len(planned), count))
            continue
        if roll < 0.07:
            typo = {"firstNam": f"typo-{i}", "externalId": f"m{i}"}  # a name Engage would silently ignore
            planned.append(
                Planned(
                    i,
                    "update",
                    contact,
                    {"contactId": contact, "idempotencyKey": key, "attributes": typo},
                    expect_error="InvalidRequest",
                )
            )
            continue
        attributes = {name: _value(rng, name, i) for name in rng.sample(UPDATE_FIELDS, rng.randint(1, 4))}
        attributes["externalId"] = f"m{i}"  # the marker that tells this command's Engage call apart
        clear = [n for n in CLEARABLE if rng.random() < 0.08 and attributes.get(n) in (None, "", "   ", ...)]
        command: dict[str, Any] = {"contactId": contact, "idempotencyKey": key, "attributes": attributes}
        if i % 3 == 0:  # a third send only what changed, with values often held already: the same end state
            command["sendOnlyChanged"] = True
            attributes.update({n: f"{n}-same" for n, v in attributes.items() if n != "externalId" and v and v.strip()})
        if clear:
            command["clear"] = clear
        planned.append(Planned(i, "update", contact, command))
        if rng.random() < 0.04 and len(planned) < count:  # a producer that sent it twice
            original = planned[-1]
            planned.append(Planned(len(planned), "update", contact, original.command, duplicate_of=original.index))
    return planned


def _creates(rng: random.Random, seed: int, first: int, count: int) -> list[Planned]:
    """A new customer's create (update with createIfMissing); sent once, twice, or with a concurrent second one."""
    email = f"new-{seed}-{first}@example.com"
    contact_type = rng.choice(CREATE_TYPES)

    def create(i: int, group: str | None = None) -> Planned:
        attributes = {"firstName": f"firstName-{i}", "city": f"city-{i}", "externalId": f"m{i}"}
        command = {
            "lookup": {"email": email},
            "idempotencyKey": f"soak-{seed}-{i}",
            "attributes": attributes,
            "createIfMissing": {"contactType": contact_type},
        }
        return Planned(i, "update", email, command, group=group)

    made = [create(first)]
    mode = rng.random()
    if mode < 1 / 3 and first + 1 < count:  # a producer that sent it twice
        made.append(Planned(first + 1, "update", email, made[0].command, duplicate_of=first))
    elif mode < 2 / 3 and first + 1 < count:  # another producer, at the same time, in a message group of its own
        made.append(create(first + 1, group=f"concurrent-{seed}-{first}"))
    return made


class Producer:
    """Sends the planned commands in plan order, a chunk at a time, as producers would over a while.

    (All at once, moto's FIFO queue slows to a crawl: its deduplication scans the whole queue.)
    """

    def __init__(self, stack: LocalStack, planned: list[Planned], chunk: int = 100) -> None:
        self.sqs = stack.client("sqs")
        self.urls = {
            op: stack.queue_url_of(stack.spec.function_routed("POST", f"/contacts/{op}"))
            for op in ("update", "promote", "contact-type")
        }
        self.urls["erase"] = stack.queue_url_of(stack.spec.function_named("erase_contact"))
        self.pending = list(planned)
        self.chunk = chunk

    def send_next(self) -> int:
        from engage_contact.domain.contacts import message_group

        chunk, self.pending = self.pending[: self.chunk], self.pending[self.chunk :]
        for operation, url in self.urls.items():
            items = [p for p in chunk if p.operation == operation]
            for start in range(0, len(items), 10):
                entries = [
                    {
                        "Id": str(n),
                        "MessageBody": json.dumps(p.command),
                        "MessageGroupId": p.group or message_group(p.command),
                        "MessageDeduplicationId": str(uuid.uuid4()),
                    }
                    for n, p in enumerate(items[start : start + 10])
                ]
                answer = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
                if answer.get("Failed"):
                    raise RuntimeError(f"could not enqueue: {answer['Failed']}")
                for p in items[start : start + 10]:
                    p.sent_at = time.time()
        return len(chunk)


def skip_every_backoff(sources: list) -> int:
    return sum(source.skip_backoff() for source in sources)


HIDDEN_SECONDS = 3600  # real visibility of a record waiting on the simulated clock


class CompressedTime:
    """A simulated clock for a long Engage outage: each failed record waits its own backoff, hours in seconds.

    The functions' backoff (the visibility they give each failed record) is read from outside, by wrapping
    each container's `Queues.hide`; when nothing is visible, the clock jumps to the next record due and
    makes visible only what is due by then. Engage comes back when the clock passes the outage's end.
    """

    def __init__(self, stack: LocalStack, containers: list, outage_hours: float) -> None:
        self.now = 0.0
        self.outage_end = outage_hours * 3600
        self.stack = stack
        self.due: dict[str, float] = {}  # receipt handle -> simulated time it is visible again
        self.down = True
        self.back_at: float | None = None  # simulated time Engage came back (the first release after the outage)
        for function in containers:
            function.handler.container.engage.sleep = lambda seconds: None  # waits within an invocation, too
            queues = function.handler.container.queues
            hide = queues.hide

            def recording(arn, entries, hide=hide):
                self.due.update((handle, self.now + delay) for handle, delay in entries)
                # hidden for real until the clock releases it: a short backoff must not pass in real time
                return hide(arn, [(handle, HIDDEN_SECONDS) for handle, _ in entries])

            queues.hide = recording

    def start_outage(self) -> None:
        self.stack.own_sandbox().state.add_faults([Fault.from_json({"kind": "status", "status": 503})])  # every call

    def release(self, sources: list) -> int:
        """Advance to the next record due; make visible what is due by then. How many were released."""
        waiting = [self.due.get(h, self.now) for source in sources for h in source.handed_back]
        if not waiting:
            return 0
        self.now = max(self.now, min(waiting))
        if self.down and self.now >= self.outage_end:
            self.stack.own_sandbox().state.clear_faults()  # Engage is back
            self.down = False
            self.back_at = self.now
        released = 0
        for source in sources:
            ready = [h for h in source.handed_back if self.due.get(h, self.now) <= self.now]
            rest = [h for h in source.handed_back if self.due.get(h, self.now) > self.now]
            source.handed_back = ready
            released += source.skip_backoff()
            source.handed_back = rest
        return released


class SecretsUnreachable:
    """Secrets Manager unreachable for real, through the functions' FaultProxy: connections refused for
    `seconds`, then hanging (read timeouts) as long, then reachable again. The Engage key is rotated as it
    starts, so every container's cached key is refused and must be read again meanwhile."""

    def __init__(self, stack: LocalStack, proxy: Any, start_round: int, seconds: float) -> None:
        self.stack, self.proxy, self.start_round, self.seconds = stack, proxy, start_round, seconds
        self.started = 0.0  # (monotonic) when the phase after "before" began
        self.phase = "before"

    def step(self, rounds: int) -> None:
        if self.phase == "before" and rounds >= self.start_round:
            from .stack import ENGAGE_KEY_SECRET

            self.stack.client("secretsmanager").put_secret_value(
                SecretId=ENGAGE_KEY_SECRET, SecretString=UNREACHABLE_KEY
            )
            self.stack.own_sandbox().state.configure({"apiKeys": [UNREACHABLE_KEY]})
            self.proxy.refuse()
            self.started, self.phase = time.monotonic(), "refused"
            print(f"(Secrets Manager unreachable from round {rounds}: refused, then hanging)", file=sys.stderr)
        elif self.phase == "refused" and time.monotonic() - self.started >= self.seconds:
            self.proxy.hang()
            self.phase = "hanging"
        elif self.phase == "hanging" and time.monotonic() - self.started >= 2 * self.seconds:
            self.proxy.mend()
            self.phase = "after"


# One container in a process of its own: it takes one batch from its queue, says the batch's receipt handles,
# and is SIGKILLed by the soak as soon as Engage has received its first request.
KILLED_SCRIPT = """
import importlib.util, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import boto3
from local.lambda_runtime import SqsEventSource
spec = importlib.util.spec_from_file_location("killed_function", sys.argv[3])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
function = getattr(module, sys.argv[4])
def handler(event, context):
    print("HANDLES " + json.dumps([r["receiptHandle"] for r in event["Records"]]), flush=True)
    return function(event, context)
sqs = boto3.client("sqs", endpoint_url=sys.argv[5], region_name=sys.argv[6])
SqsEventSource(sqs, sys.argv[7], handler).poll_once()
"""


def kill_a_container_mid_batch(stack: LocalStack, operation: str = "update") -> bool:
    """SIGKILL a container of `operation`'s function while it handles a batch: its messages come back (here at
    once, as if their visibility had run out) and must be applied once. Whether Engage saw the container's work
    before the kill."""
    import signal
    import subprocess

    from .stack import HOST, REGION
    from .template import ROOT

    spec = stack.spec.function_routed("POST", f"/contacts/{operation}")
    module, handler = spec.handler.rsplit(".", 1)
    env = {**os.environ, **stack.environments[spec.logical_id]}
    seen = len(stack.own_sandbox().state.request_log())
    moto = f"http://{HOST}:{stack.ports['MOTO_PORT']}"
    arguments = [
        str(ROOT),
        str(LAYER),
        str(spec.code_uri / f"{module}.py"),
        handler,
        moto,
        REGION,
        stack.queue_url_of(spec),
    ]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_SCRIPT, *arguments], env=env, stdout=subprocess.PIPE, text=True
    )
    handles: list[str] = []
    assert child.stdout is not None  # stdout=PIPE
    for line in child.stdout:  # the batch it took (nothing: it found none)
        if line.startswith("HANDLES "):
            handles = json.loads(line[len("HANDLES ") :])
            break
    deadline = time.monotonic() + 20
    while handles and time.monotonic() < deadline and len(stack.own_sandbox().state.request_log()) == seen:
        time.sleep(0.002)
    busy = bool(handles) and child.poll() is None and len(stack.own_sandbox().state.request_log()) > seen
    child.send_signal(signal.SIGKILL)
    child.wait()
    sqs = stack.client("sqs")
    for handle in handles:  # Lambda would see them again after their visibility: here, at once
        with contextlib.suppress(Exception):
            sqs.change_message_visibility(QueueUrl=stack.queue_url_of(spec), ReceiptHandle=handle, VisibilityTimeout=0)
    return busy


THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    }
)


class DynamoDbThrottled:
    """DynamoDB throttles every call of the functions (through their FaultProxy) for `seconds`, once the Secrets
    Manager outage is over."""

    def __init__(self, proxy: Any, seconds: float) -> None:
        self.proxy, self.seconds = proxy, seconds
        self.started = 0.0  # (monotonic) when the phase after "before" began
        self.phase = "before"

    def step(self, ready: bool) -> None:
        if self.phase == "before" and ready:
            self.proxy.answer(400, THROTTLED.encode())
            self.started, self.phase = time.monotonic(), "throttling"
            print("(DynamoDB throttling every call)", file=sys.stderr)
        elif self.phase == "throttling" and time.monotonic() - self.started >= self.seconds:
            self.proxy.mend()
            self.phase = "after"


def _drain(
    stack: LocalStack,
    sources: list,
    producer: Producer,
    budget_seconds: float,
    secrets_outage: tuple[int, int] | None,
    release: Any = skip_every_backoff,
    unreachable: SecretsUnreachable | None = None,
    kills: list[bool] | None = None,
    throttled: DynamoDbThrottled | None = None,
) -> int:
    """Feed and poll until everything is sent and every queue is empty; `release` backoff waits. The rounds."""
    sqs = stack.client("sqs")
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < budget_seconds:
        rounds += 1
        if secrets_outage and rounds == secrets_outage[0]:
            _break_secrets(stack)
        if secrets_outage and rounds == secrets_outage[1]:
            _mend_secrets(stack)
        if unreachable is not None:
            unreachable.step(rounds)
        if throttled is not None:
            throttled.step(unreachable is None or unreachable.phase == "after")
        if rounds % 5 == 1 and producer.pending and _depth(sqs, sources) < 2 * producer.chunk:
            producer.send_next()  # keep a working set in the queues: moto slows down as a queue grows
        if kills is not None and rounds == KILL_ROUND:  # the first consumer of the first commands
            kills.append(kill_a_container_mid_batch(stack))
        handled = sum(1 for source in sources if source.poll_once() is not None)
        if handled:
            continue
        if producer.pending:
            producer.send_next()
            continue
        if release(sources):
            continue
        if _depth(sqs, sources) == 0 and all(f is None or f.phase == "after" for f in (unreachable, throttled)):
            return rounds
        time.sleep(0.05)
    return rounds


def _depth(sqs: Any, sources: list) -> int:
    """Messages in the source queues, visible or in flight."""
    left = 0
    for source in sources:
        attrs = sqs.get_queue_attributes(QueueUrl=source.queue_url, AttributeNames=["All"])["Attributes"]
        left += int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    return left


ROTATED_KEY = "sandbox-api-key-rotated"
UNREACHABLE_KEY = "sandbox-api-key-rotated-while-unreachable"
KILL_ROUND = 1  # a container is SIGKILLed mid-batch in this round (not with compressed time)


def _break_secrets(stack: LocalStack) -> None:
    """Engage's key is rotated while its secret cannot be used: every cached key now gets 401, every read fails."""
    from .stack import ENGAGE_KEY_SECRET

    stack.client("secretsmanager").put_secret_value(SecretId=ENGAGE_KEY_SECRET, SecretString='{"apiKey": ""}')
    stack.own_sandbox().state.configure({"apiKeys": [ROTATED_KEY]})


def _mend_secrets(stack: LocalStack) -> None:
    from .stack import ENGAGE_KEY_SECRET

    stack.client("secretsmanager").put_secret_value(SecretId=ENGAGE_KEY_SECRET, SecretString=ROTATED_KEY)


def _dead_letters(stack: LocalStack) -> dict[str, list[str]]:
    """Idempotency key -> the errorType of each of its dead-lettered messages."""
    sqs = stack.client("sqs")
    found: dict[str, list[str]] = {}
    for spec in (f for f in stack.spec.functions.values() if f.queue):  # the intake has no queue of its own
        url = stack.queue_urls[stack.spec.dead_letter_of(stack.spec.queue_of(spec)).logical_id]
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
            ).get("Messages", [])
            if not messages:
                break
            # read and removed: a FIFO queue hands out a group's next message only once the one before is gone
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )
            for message in messages:
                key = json.loads(message["Body"]).get("idempotencyKey", "?")
                reason = (message.get("MessageAttributes") or {}).get("errorType", {}).get("StringValue", "redrive")
                found.setdefault(key, []).append(reason)
    return found


def reconcile(
    stack: LocalStack, planned: list[Planned], seeded: dict[str, dict], only_invalid_dead: bool = False
) -> tuple[int, int, int, list[str], int]:
    """(applied, dead-lettered, lost, violations, skipped as erased), from the sandbox's log and state and the
    dead-letter queues.

    `only_invalid_dead`: a dead letter of a valid command is a violation (an outage within the tolerance).
    """
    from engage_contact.domain.command import Operation, parse_command

    catalogue = stack.functions[next(iter(stack.functions))].handler.container.settings.catalogue
    dead = _dead_letters(stack)
    log = stack.own_sandbox().state.request_log()
    violations: list[str] = []
    applied_markers: dict[str, list[str]] = {}  # contact -> markers of applied updates, in Engage's order
    promoted: set[str] = set()
    typed: set[str] = set()
    for entry in log:
        contact = entry["contactId"]  # every entry has one (None on a route about no one contact)
        if entry["route"] in ("update", "create") and entry["applied"]:
            body = json.loads(entry["body"])
            applied_markers.setdefault(contact, []).append(body.get("externalId"))
        elif entry["route"] == "promote" and (entry["applied"] or entry.get("errorCode") == "ContactIsAlreadyMember"):
            promoted.add(contact)
        elif entry["route"] == "contactType" and entry["applied"]:
            # v3 promotes through updateContactType?contactTypeId=Member
            (promoted if (entry.get("query") or {}).get("contactTypeId") == "Member" else typed).add(contact)
    by_email = _contacts_by_email(stack)

    erasures = _erasures(stack, planned, dead, log, violations)
    by_index = {p.index: p for p in planned}
    applied = dead_lettered = lost = skipped = 0
    for p in planned:
        original = by_index[p.duplicate_of] if p.duplicate_of is not None else p
        reasons = dead.get(p.key, [])
        if reasons:
            dead_lettered += 1
            reason = reasons.pop(0)  # one dead letter accounts for one message
            if p.expect_error and reason != p.expect_error:
                violations.append(f"{p.key} dead-lettered as {reason}, expected {p.expect_error}")
            if only_invalid_dead and not p.expect_error:
                violations.append(f"{p.key} ({p.operation}) dead-lettered as {reason} during the outage")
            if p.contact in erasures and reason == "ContactNotFound":
                violations.append(f"{p.key} ({p.operation}) reached Engage after its contact's erasure")
            continue
        if p.expect_error:
            lost += 1
            violations.append(f"{p.key} should have been refused with {p.expect_error}")
            continue
        done = {
            "update": lambda o: f"m{o.index}" in applied_markers.get(by_email.get(o.contact, [o.contact])[0], []),
            "promote": lambda o: o.contact in promoted,
            "contact-type": lambda o: o.contact in typed,
            "erase": lambda o: o.contact in erasures,
        }[p.operation](original)
        if done:
            applied += 1
        elif p.contact in erasures:  # queued before its contact's erasure, and not applied after it
            skipped += 1
        else:
            lost += 1
            violations.append(f"{p.key} ({p.operation}) was neither applied nor dead-lettered")

    # nothing emptied that was not cleared, and per-contact order
    clears = {f"m{p.index}": set(p.command.get("clear", [])) for p in planned if p.operation == "update"}
    # (concurrent creates for one key have no order between them: theirs is not checked)
    order = {f"m{p.index}": p.index for p in planned if p.operation == "update" and not p.creates}
    for entry in log:
        if entry["route"] == "update" and entry["applied"]:
            body = json.loads(entry["body"])
            for name, value in body.items():
                if value in ("", None) and name not in clears.get(body.get("externalId"), set()):
                    violations.append(f"{body.get('externalId')} sent {name} empty without clearing it")
    for contact, markers in applied_markers.items():
        indexes = [order[m] for m in markers if m in order]
        if indexes != sorted(indexes):
            violations.append(f"contact {contact}: updates applied out of order: {markers}")
    for contact in stack.own_sandbox().state.list_contacts():
        if contact["_promotions"] > 1:
            violations.append(f"contact {contact['id']} promoted {contact['_promotions']} times")
    violations += _check_creates(stack, planned, catalogue, log, by_email, set(dead))

    # the final state is what the intended updates, in order, make of the seeded contact
    failed = set(dead)
    final = {c["id"]: c for c in stack.own_sandbox().state.list_contacts()}
    for contact, start in seeded.items():
        if contact in erasures:  # what its skipped commands would have written is checked above, not here
            continue
        expected = dict(start)
        for p in planned:
            skip = p.duplicate_of is not None or p.key in failed or p.expect_error
            if p.contact != contact or p.operation != "update" or skip:
                continue
            expected.update(parse_command(p.command, Operation.UPDATE, catalogue).payload.sent)
        for name, value in expected.items():
            if final[contact].get(name) != value:
                violations.append(f"contact {contact}: {name} is {final[contact].get(name)!r}, expected {value!r}")
    return applied, dead_lettered, lost, violations, skipped


def _erasures(
    stack: LocalStack, planned: list[Planned], dead: dict[str, list[str]], log: list[dict], violations: list[str]
) -> dict[str, float]:
    """Erased contact -> when its erasure took effect (its mark's time, s); every write of Engage to an erased
    contact started before it, and no item of the table names an erased contact but its erasure's mark."""
    from engage_contact.privacy.records import erased_at

    dynamodb = stack.client("dynamodb")
    table = stack.environments[next(iter(stack.environments))]["IDEMPOTENCY_TABLE"]
    erasures = {}
    for p in planned:
        if p.operation == "erase" and p.key not in dead:
            at = erased_at(dynamodb, table, p.contact)
            if at is None:
                violations.append(f"{p.key}: the erasure of {p.contact} left no mark")
            else:
                erasures[p.contact] = at / 1000
    for entry in log:
        erased = erasures.get(entry["contactId"])
        if erased is not None and entry["applied"] and entry["route"] != "delete" and entry["started"] > erased:
            violations.append(f"{entry['contactId']}: a command queued before its erasure was applied after it")
    items = dynamodb.scan(TableName=table)["Items"]  # a soak's table is small
    for contact in erasures:
        held = [i["id"]["S"] for i in items if contact in json.dumps(i)]
        if held:
            violations.append(f"erased contact {contact} is still named by {held}")
    return erasures


def _contacts_by_email(stack: LocalStack) -> dict[str, list[str]]:
    """Email (without case) -> the ids of the contacts holding it, in the sandbox's final state."""
    found: dict[str, list[str]] = {}
    for contact in stack.own_sandbox().state.list_contacts():
        if contact.get("email"):
            found.setdefault(contact["email"].lower(), []).append(contact["id"])
    return found


def _check_creates(
    stack: LocalStack,
    planned: list[Planned],
    catalogue: Any,
    log: list[dict],
    by_email: dict[str, list[str]],
    failed: set[str],
) -> list[str]:
    """One key, one contact; each applied create made what its command asked; the contact ends as one asked."""
    from engage_contact.domain.command import Operation, parse_command

    violations = [f"{len(ids)} contacts hold the key {email}" for email, ids in by_email.items() if len(ids) > 1]
    creates = {f"m{p.index}": p for p in planned if p.creates and p.duplicate_of is None}
    for entry in log:
        if entry["route"] != "create" or not entry["applied"]:
            continue
        body = json.loads(entry["body"])
        p = creates.get(body.get("externalId"))
        if p is None:
            violations.append(f"a create no command asked for: {body.get('externalId')}")
            continue
        creation = parse_command(p.command, Operation.UPDATE, catalogue).creation
        if creation is None:
            violations.append(f"{p.key} created a contact, but its command asks for no create")
            continue
        expected = creation.body
        if body != expected:
            differ = sorted(k for k in body.keys() | expected.keys() if body.get(k) != expected.get(k))
            violations.append(f"{p.key} created with other values than it asked for: {differ}")
        made = stack.own_sandbox().state.get_contact(entry["contactId"])
        if made is None:
            violations.append(f"{p.key} created {entry['contactId']}, which Engage no longer holds")
            continue
        if made["contactType"] != p.command["createIfMissing"]["contactType"]:
            violations.append(f"{p.key} created a {made['contactType']}, asked for a {expected['contactType']}")
    for email in {p.contact for p in creates.values()}:
        asked = [p for p in creates.values() if p.contact == email and p.key not in failed]
        (contact_id, *_) = by_email.get(email, [None])
        if not asked or contact_id is None:
            continue
        final = stack.own_sandbox().state.get_contact(contact_id)
        if final is None:
            violations.append(f"{email}: its contact {contact_id} is no longer in Engage")
            continue
        for name in ("firstName", "city", "externalId"):  # the last one applied wins: one of the commands' values
            if final.get(name) not in {p.command["attributes"][name] for p in asked}:
                violations.append(f"{email}: {name} is {final.get(name)!r}, which no command for it asked")
    return violations


def _count_retries(containers: list) -> list[str]:
    """Each container's Engage retries, counted from outside through the client's observe hook."""
    retried: list[str] = []
    for function in containers:
        client = function.handler.container.engage
        observe = client.observe

        def counting(name, value, observe=observe):
            if name == "retry":
                retried.append(name)
            observe(name, value)

        client.observe = counting
    return retried


def _forget_aws(stack: LocalStack) -> None:
    """moto keeps its state per process: reset it, so another soak in this process starts from nothing."""
    import requests

    try:
        requests.post(f"{stack.moto_url}/moto-api/reset", timeout=10)
    except requests.RequestException as exc:
        print(f"soak: moto was not reset: {type(exc).__name__}", file=sys.stderr)


def run(
    commands: int,
    seed: int,
    contacts: int | None = None,
    quiet: bool = False,
    outage_hours: float | None = None,
    tolerance_hours: str | None = None,
    api_version: str = "v2",
    secrets_down_seconds: float = 5.0,
    bulk_rows: int | None = None,
) -> Report:
    """The soak; with `outage_hours`, Engage is down that long (simulated time) instead of failing now and then.

    `api_version`: the stack's EngageApiVersion template parameter (v2 or v3).
    """
    started = time.monotonic()
    # one thread drives every queue: no update is under way while an erasure runs, so it need not settle
    parameters = {
        "EngageTimeoutSeconds": "0.5",
        "EngageApiVersion": api_version,
        "ErasureSettleSeconds": "0",
        **({"OutageToleranceHours": tolerance_hours} if tolerance_hours else {}),
        # with compressed time every wait is skipped, the rate budget's too: hours of retries would otherwise be
        # paced at 45 requests/s of real time (the template's highest budget; the peak is not checked then)
        **({"EngageRequestsPerSecond": "200"} if outage_hours else {}),
    }
    # the template's budget (45/s), shared by every container
    # Secrets Manager through a proxy that can refuse connections or hang (not with compressed time)
    proxy = None if outage_hours else FaultProxy()
    dynamodb = None if outage_hours else FaultProxy()  # and DynamoDB, through one that can throttle
    stack = LocalStack(0, 0, 0, parameters=parameters, environment={"SQS_BATCH_CONCURRENCY": "4"})
    stack.start(pollers=False)
    # the functions' clients find their endpoint at their first call, in this process's environment
    if proxy is not None and dynamodb is not None:
        proxy.target = ("127.0.0.1", stack.ports["MOTO_PORT"])
        os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = proxy.url
        dynamodb.target = proxy.target
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb.url
    try:
        state = stack.own_sandbox().state
        state.configure({"rateLimit": 100_000})
        state.reset()
        contact_ids = [
            state.add_contact(
                {
                    "contactType": "Contact",
                    "attributes": {"firstName": f"seed-{n}", "careOf": "keep", "email": f"c{n}@example.com"},
                }
            )
            for n in range(contacts or max(commands // 8, 5))
        ]
        seeded = {
            cid: {k: v for k, v in state.existing_contact(cid).items() if k in UPDATE_FIELDS} for cid in contact_ids
        }
        planned = plan(commands, seed, contact_ids)
        containers = [
            stack.functions[spec.logical_id] if n == 0 else stack.container(spec)
            for spec in stack.spec.functions.values()
            if spec.queue
            for n in range(CONTAINERS_PER_QUEUE)
        ]
        clock = CompressedTime(stack, containers, outage_hours) if outage_hours else None
        if clock:
            clock.start_outage()
        else:
            state.add_faults([Fault.from_json(f) for f in FAULTS])
        state.rng.seed(seed)
        sources = [stack.event_source(c.spec, c) for c in containers]
        producer = Producer(stack, planned)
        backfill: list[soak_bulk.BulkRow] = []
        if not clock and (bulk_rows if bulk_rows is not None else commands // 5):
            rows = bulk_rows if bulk_rows is not None else commands // 5
            backfill = soak_bulk.plan(seed, rows, soak_bulk.seed_contacts(state, rows))
            soak_bulk.queue(stack, backfill)  # its chunks wait on the backfill's queue, drained with the live ones
        retried = _count_retries(containers)
        release = clock.release if clock else skip_every_backoff
        unreachable = SecretsUnreachable(stack, proxy, 8, secrets_down_seconds) if proxy else None
        kills: list[bool] | None = None if clock else []
        throttled = DynamoDbThrottled(dynamodb, secrets_down_seconds) if dynamodb else None
        _drain(
            stack,
            sources,
            producer,
            budget_seconds=max(600.0, commands * 0.5),
            secrets_outage=None if clock else (5, 7),
            release=release,
            unreachable=unreachable,
            kills=kills,
            throttled=throttled,
        )
        # the consent kind: Shopify consent and profile events through the API, shuffled and retried
        consent_contacts = soak_consent.seed_contacts(state, max(len(contact_ids) // 4, 5))
        consent_events = soak_consent.plan(seed, len(consent_contacts))
        refused = soak_consent.send(stack, consent_events)
        _drain(
            stack,
            sources,
            Producer(stack, []),
            budget_seconds=max(300.0, len(consent_events) * 0.5),
            secrets_outage=None,
            release=release,
        )
        state.clear_faults()
        bulk, bulk_violations = soak_bulk.check(stack, backfill, _contacts_by_email(stack)) if backfill else ({}, [])
        applied, dead_lettered, lost, violations, skipped = reconcile(
            stack, planned, seeded, only_invalid_dead=bool(clock)
        )
        violations += soak_consent.check(stack, consent_events, consent_contacts, set(_dead_letters(stack)))
        violations += [f"{refused} consent deliveries were refused by the API"] if refused else []
        violations += bulk_violations
        if clock and clock.down:
            violations.append(f"the queues emptied at {clock.now / 3600:.2f} simulated hours, Engage still down")
        budget = float(stack.environments[next(iter(stack.environments))]["ENGAGE_REQUESTS_PER_SECOND"])
        peak, bound = peak_per_second(state.request_log()), int(budget * PEAK_ALLOWANCE)
        if peak > bound and not clock:  # with compressed time, waits are skipped: the rate is not the point
            violations.append(f"{peak} Engage requests started in one second, over the budget's bound of {bound}")
        retries = len(retried)
        redeliveries = sum(s.deliveries for s in sources if s.function_name != "backfill_writer") - len(planned)
        report = Report(
            len(planned),
            state.faults_fired,
            retries + max(redeliveries, 0),
            applied,
            dead_lettered,
            lost,
            violations,
            time.monotonic() - started,
            peak,
            bound,
        )
        report.erasures, report.skipped = sum(1 for p in planned if p.operation == "erase"), skipped
        report.bulk = bulk
        if kills is not None and not any(kills):
            report.violations.append("no container was killed while Engage had its work (the fault did not happen)")
        report.simulated_hours = clock.now / 3600 if clock else 0.0
        # the figure: from Engage's return (the outage's end) to empty queues: the backoff a record had reached
        # when Engage came back is what keeps the backlog waiting after it
        report.drained_after = clock.now - clock.outage_end if clock and clock.back_at is not None else None
        report.consent_events = len(consent_events)
        report.creates = sum(1 for p in planned if p.creates)
        report.created = len({p.contact for p in planned if p.creates} & set(_contacts_by_email(stack)))
        report.api_version = api_version
        report.api_prefixes = sorted({"/".join(e["path"].split("/")[:3]) for e in state.request_log()})
        if report.api_prefixes != [f"/api/{api_version}"]:
            report.violations.append(f"a {api_version} stack called Engage under {report.api_prefixes}")
    finally:
        _forget_aws(stack)
        stack.stop()
        if proxy is not None and dynamodb is not None:
            os.environ.pop("AWS_ENDPOINT_URL_SECRETS_MANAGER", None)
            os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
            proxy.close()
            dynamodb.close()
    return report


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m local.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args(argv)
    commands = int(os.environ.get("SOAK_COMMANDS", "5000"))
    seed = int(os.environ.get("SOAK_SEED", "1"))
    outage = float(os.environ.get("SOAK_OUTAGE_HOURS") or 0) or None
    tolerance = os.environ.get("SOAK_TOLERANCE_HOURS") or None
    version = os.environ.get("SOAK_API_VERSION") or "v2"
    secrets_down = float(os.environ.get("SOAK_SECRETS_DOWN_SECONDS") or 60)
    bulk_rows = int(os.environ["SOAK_BULK_ROWS"]) if os.environ.get("SOAK_BULK_ROWS") else None
    report = run(
        commands,
        seed,
        outage_hours=outage,
        tolerance_hours=tolerance,
        api_version=version,
        secrets_down_seconds=secrets_down,
        bulk_rows=bulk_rows,
    )
    for violation in report.violations[:50]:
        print(f"violation: {violation}", file=sys.stderr)
    if outage:
        print(f"(Engage down for {outage:g} h; {report.simulated_hours:.2f} h simulated)", file=sys.stderr)
        if report.drained_after is not None:
            print(
                f"(queues empty {report.drained_after / 60:.1f} simulated minutes after Engage came back)",
                file=sys.stderr,
            )
    print(f"({report.seconds:.0f} s)", file=sys.stderr)
    if report.bulk:
        print(
            "bulk: {rows} rows, {applied} applied, {deadLettered} dead-lettered, {invalid} invalid, "
            "{lost} lost, {bulkRequests} bulk requests".format(**report.bulk),
            flush=True,
        )
    print(report.line(), flush=True)
    handled = report.applied + report.dead_lettered + report.skipped
    ok = report.lost == 0 and handled == report.commands and not report.violations
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
