"""Only what changed: the record of what Engage last confirmed, kept truthful around every write of attributes.

The rule the record keeps: an entry for an attribute exists only while Engage is known to hold that
value. So every update or promotion forgets the entries of the names it sends, at the same time as its
Engage call (a call that fails, or whose answer is lost, leaves nothing behind that could later hide a
change); an update with `sendOnlyChanged` (or a create, or a promotion) records the entries again once
Engage confirmed them. One contact's commands are serialised by their FIFO message group, so no two of
them interleave these steps. Where the table cannot be reached, the whole payload is sent, and the
command says so once in the log and in the `SentDigestsUnavailable` metric.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from . import observability
from .aws.clients import AWS_CONNECT_TIMEOUT_SECONDS, AWS_READ_TIMEOUT_SECONDS
from .aws.sent_digests import SentDigests
from .domain.command import Command, Operation
from .domain.contacts import customer_key, still_found_by
from .domain.sent_digests import changed_only, digests, entry, flatten
from .engage.retry import Deadline
from .errors import DependencyUnavailable

FORGETTING_THREADS = 16  # one per record of a batch handled at once, and some
# Recording is skipped (the next update is only sent whole) when Engage's part of the invocation has less
# left than one attempt of a DynamoDB call: it never eats the time kept for the calls after Engage.
RECORD_NEEDS_SECONDS = AWS_CONNECT_TIMEOUT_SECONDS + AWS_READ_TIMEOUT_SECONDS


@dataclass
class Plan:
    """What one command sends, and what the record learns once Engage confirmed it."""

    sent: dict[str, Any]
    unchanged: list[str] | None = None  # None: the command did not ask to send only what changed
    record: dict[str, str] = field(default_factory=dict)  # digests of the entries to record when confirmed
    unavailable: bool = False  # the table failed once for this command already (and that was said)


class SentRecord:
    """The flow around the store: plan a command's payload, send it with the record kept truthful."""

    def __init__(self, store: SentDigests, key: Callable[[], bytes], clock: Callable[[], float] = time.time) -> None:
        """`key`: the deployment's digest key (asked for each time: it may rotate)."""
        self.store = store
        self.key = key
        self.clock = clock
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._absent: Future[set[str]] | None = None  # the batch's contacts without a record (see `expect`)
        self._recorded: set[str] = set()  # contacts this container recorded since

    def plan(self, command: Command, contact_id: str) -> Plan:
        """The payload to send: without what Engage holds when the command sends only what changed."""
        payload = command.payload.sent
        if command.operation is Operation.UPDATE and not command.send_only_changed:
            return Plan(payload)  # a plain update only forgets: it adds no wait for the record
        clear = [n for n, v in payload.items() if v == ""]  # only `clear` sends an empty value
        new = digests(self.key(), contact_id, payload, clear)
        if not command.send_only_changed:
            return Plan(payload, record=new)
        try:
            stored = self.store.read(contact_id)
        except DependencyUnavailable as exc:  # everything goes: correct, only not economical
            return Plan(payload, [], new, unavailable=_said(exc, "read"))
        kept = changed_only(payload, new, stored, self.clock(), self.store.lifetime_seconds)
        return Plan(kept.sent, kept.unchanged, kept.digests)

    def expect(self, contact_ids: list[str]) -> None:
        """The contacts of the batch about to run (none: the batch is over). Which of them have no record is read
        once for all, beside their first steps: a command of such a contact has nothing to forget (one read for
        the batch instead of a write per command), until this container records for it."""
        absent = self._threads().submit(self._read_absent, contact_ids) if contact_ids else None
        with self._lock:
            self._recorded.clear()
            self._absent = absent

    def _read_absent(self, contact_ids: list[str]) -> set[str]:
        try:
            return self.store.absent(contact_ids)
        except DependencyUnavailable as error:  # every command of the batch forgets as before: said once
            observability.fallback("SentDigestsReadAheadFailed", error)
            raise

    def _nothing_to_forget(self, contact_id: str) -> bool:
        absent = self._absent
        if absent is None or absent.exception() is not None:  # unread: every command forgets as before
            return False
        with self._lock:
            return contact_id in absent.result() and contact_id not in self._recorded

    def send(self, contact_id: str, plan: Plan, call: Callable[[], Any], deadline: Deadline) -> Any:
        """`call()` (the Engage call that writes `plan.sent`) with the names it sends forgotten meanwhile."""
        names = list(flatten(plan.sent))
        if not names:  # a promotion without attributes writes none
            return call()
        if self._nothing_to_forget(contact_id):
            answer = call()
            self.confirmed(contact_id, plan, deadline)
            return answer
        forgetting = self._threads().submit(self.store.forget, contact_id, names)
        try:
            answer = call()
        finally:
            wait([forgetting])
        error = forgetting.exception()
        if error is not None:
            # Nothing forgotten: recording now could leave half a record. An entry of an older value
            # may outlive this write, until the record's lifetime ends (see README, "Only what changed").
            plan.unavailable = plan.unavailable or _said(error, "forget")
            return answer
        self.confirmed(contact_id, plan, deadline)
        return answer

    def confirmed(self, contact_id: str, plan: Plan, deadline: Deadline | None = None) -> None:
        """Record entries Engage confirmed, when there is time for it (never at the expense of the work after)."""
        if plan.record and (deadline is None or deadline.remaining() > RECORD_NEEDS_SECONDS):
            with self._lock:
                self._recorded.add(contact_id)
            now = self.clock()
            try:
                self.store.record(contact_id, {name: entry(d, now) for name, d in plan.record.items()}, now)
            except DependencyUnavailable as exc:  # forgotten before: the next update is only sent whole
                plan.unavailable = plan.unavailable or _said(exc, "record")

    def created(self, contact_id: str, body: dict[str, Any]) -> None:
        """A contact find-or-create made: what the create sent is what Engage holds."""
        attributes = {k: v for k, v in body.items() if k != "contactType"}
        self.confirmed(contact_id, Plan(attributes, record=digests(self.key(), contact_id, attributes)))

    def remembered(self, command: Command) -> str | None:
        """For an update by lookup that sends only what changed: the contact its lookup last resolved to, if any.

        It is used without looking the key up again; `resolved` forgets it when Engage's answer shows the key
        (or the contact type asked for) is no longer that contact's, and the operation forgets it on a 404.
        """
        if command.lookup is None or not command.send_only_changed:
            return None
        try:
            return self.store.contact_for(customer_key(command))
        except DependencyUnavailable as error:  # looked up as if nothing were remembered
            observability.fallback("RememberedContactUnread", error)
            return None

    def resolved(self, command: Command, result: dict[str, Any], remembered: str | None = None) -> None:
        """Remember what the command's lookup resolved to; forget it when it no longer holds.

        No longer: the update changed the key itself, or Engage's answer shows another value under the key (it
        was changed in Engage) or another contact type than the lookup asks for. `remembered`: the contactId
        this command used without a lookup (rewritten only when it has to be forgotten).
        """
        if command.lookup is None or not command.send_only_changed or result.get("notFound"):
            return
        contact_id, sent = result["contactId"], result["sent"]
        changed_key = command.lookup.key in sent and sent[command.lookup.key] != command.lookup.value
        holds = not changed_key and still_found_by(command.lookup, result.get("contact"))
        if remembered is not None and not holds:
            observability.count("RememberedContactMoved")
            observability.logger.warning(
                "the contact a lookup last resolved to no longer has its key in Engage; the next command looks it up",
                extra={"lookup": command.lookup.key},
            )
        if remembered == contact_id and holds:
            return  # remembered already
        self.forget_contact(command, contact_id if holds else None)

    def forget_contact(self, command: Command, contact_id: str | None = None) -> None:
        """Forget (or, with a contactId, remember) what the command's lookup resolves to."""
        try:
            self.store.remember_contact(customer_key(command), contact_id, self.clock())
        except DependencyUnavailable as error:  # only economy is lost: the next one looks up
            observability.fallback("RememberedContactNotKept", error)

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(FORGETTING_THREADS, thread_name_prefix="forget")
            return self._pool


def _said(error: BaseException, step: str) -> bool:
    """Log and count, once per command, that the record could not be used; the whole payload goes."""
    observability.count("SentDigestsUnavailable")
    cause = error.__cause__ or error
    observability.logger.warning(
        "sent digests unavailable: the whole payload goes to Engage",
        extra={"step": step, "errorType": type(cause).__name__},
    )
    return True
