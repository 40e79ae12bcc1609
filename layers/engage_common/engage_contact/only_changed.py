"""Only what changed: the record of what Engage last confirmed, kept truthful around every write of attributes.

The rule the record keeps: an entry for an attribute exists only while Engage is known to hold that
value. So every update or promotion forgets the entries of the names it sends, at the same time as its
Engage call and before it reports success (a call that fails, or whose answer is lost, leaves nothing
behind that could later hide a change); an update with `sendOnlyChanged` (or a create, or a promotion)
records the entries again once Engage confirmed them. One contact's commands are serialised by their
FIFO message group, so no two of them interleave these steps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from .aws.clients import AWS_CALL_MAX_SECONDS
from .aws.sent_digests import SentDigests
from .domain.command import Command, Operation
from .domain.sent_digests import changed_only, digests, entry, flatten
from .engage.retry import Deadline

FORGETTING_THREADS = 16  # one per record of a batch handled at once, and some


@dataclass(frozen=True)
class Plan:
    """What one command sends, and what the record learns once Engage confirmed it."""

    sent: dict[str, Any]
    unchanged: list[str] | None = None  # None: the command did not ask to send only what changed
    record: dict[str, str] = field(default_factory=dict)  # digests of the entries to record when confirmed


class SentRecord:
    """The flow around the store: plan a command's payload, send it with the record kept truthful."""

    def __init__(self, store: SentDigests, key: Callable[[], bytes], clock: Callable[[], float] = time.time) -> None:
        """`key`: the deployment's digest key (read when needed: it may rotate)."""
        self.store = store
        self.key = key
        self.clock = clock
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def plan(self, command: Command, contact_id: str) -> Plan:
        """The payload to send: without what Engage holds when the command sends only what changed."""
        payload = command.payload.sent
        if command.operation is Operation.UPDATE and not command.send_only_changed:
            return Plan(payload)  # a plain update only forgets: it adds no wait for the record
        clear = [n for n, v in payload.items() if v == ""]  # only `clear` sends an empty value
        new = digests(self.key(), contact_id, payload, clear)
        if not command.send_only_changed:
            return Plan(payload, record=new)
        stored = self.store.read(contact_id)
        if stored is None:  # the table cannot be read: everything goes, and is recorded if it can be
            return Plan(payload, [], new)
        kept = changed_only(payload, new, stored, self.clock(), self.store.lifetime_seconds)
        return Plan(kept.sent, kept.unchanged, kept.digests)

    def send(self, contact_id: str, plan: Plan, call: Callable[[], Any], deadline: Deadline) -> Any:
        """`call()` (the Engage call that writes `plan.sent`) with the names it sends forgotten meanwhile."""
        names = list(flatten(plan.sent))
        if not names:  # a promotion without attributes writes none
            return call()
        forgetting = self._threads().submit(self.store.forget, contact_id, names)
        try:
            answer = call()
        except BaseException:
            wait([forgetting])  # its own failure is logged; Engage's is the one to report
            raise
        forgetting.result()  # DependencyUnavailable: an old entry might hide a later change
        self.confirmed(contact_id, plan.record, deadline)
        return answer

    def confirmed(self, contact_id: str, record: dict[str, str], deadline: Deadline | None = None) -> None:
        """Record entries Engage confirmed, when there is time for it (never at the expense of the work after)."""
        if record and (deadline is None or deadline.remaining() > AWS_CALL_MAX_SECONDS):
            now = self.clock()
            self.store.record(contact_id, {name: entry(d, now) for name, d in record.items()}, now)

    def created(self, contact_id: str, body: dict[str, Any]) -> None:
        """A contact find-or-create made: what the create sent is what Engage holds."""
        attributes = {k: v for k, v in body.items() if k != "contactType"}
        self.confirmed(contact_id, digests(self.key(), contact_id, attributes))

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(FORGETTING_THREADS, thread_name_prefix="forget")
            return self._pool
