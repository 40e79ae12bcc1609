"""Only what changed: the record of what Engage last confirmed, kept truthful around every write of attributes.

The rule the record keeps: an entry for an attribute exists only while Engage is known to hold that
value. So every update or promotion forgets the entries of the names it sends, at the same time as its
Engage call (a call that fails, or whose answer is lost, leaves nothing behind that could later hide a
change); an update with `sendOnlyChanged` (or a create, or a promotion) records the entries again once
Engage confirmed them. One contact's commands are serialised by their FIFO message group, so no two of
them interleave these steps. Where the table cannot be reached, the whole payload is sent, and the
command says so once in the log and in the `SentDigestsUnavailable` metric.

The command path (operations.py) consults the records at two points around its one Engage call: `before`
(what to send; the forgetting starts) and `after` (what Engage confirmed, a created contact, what a lookup
resolved to). Nothing of theirs is handed into the call.
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
    """What one command sends to one contact, and what the record learns once Engage confirmed it."""

    sent: dict[str, Any]
    unchanged: list[str] | None = None  # None: the command did not ask to send only what changed
    record: dict[str, str] = field(default_factory=dict)  # digests of the entries to record when confirmed
    unavailable: bool = False  # the table failed once for this command already (and that was said)
    contact_id: str = ""
    forgetting: Future[None] | None = None  # the names sent, being forgotten beside the Engage call
    unseen: bool = False  # no record when the batch began: nothing was forgotten before the call (`expect`)

    @property
    def names(self) -> list[str]:
        """The compared entries the call writes (preferences per field)."""
        return list(flatten(self.sent))

    @property
    def nothing_left(self) -> bool:
        """Engage holds all of it: no call."""
        return self.unchanged is not None and not self.sent


@dataclass(frozen=True)
class Outcome:
    """What became of the command on one contact, for `SentRecord.after`."""

    contact_id: str
    result: dict[str, Any] | None = None  # the command's success result; None: the Engage call failed
    plan: Plan | None = None  # what `before` planned (None: nothing planned, a create or a type change)
    remembered: bool = False  # the contact remembered for the command's customer, written to without a lookup
    created: bool = False  # created with the command's attributes (`result["sent"]`)
    gone: bool = False  # Engage no longer has that contact (404)


class NoRecord:
    """Without the table (or for a command that keeps none): nothing remembered, all sent, nothing recorded."""

    def remembered(self, command: Command) -> str | None:
        return None

    def before(self, command: Command, contact_id: str) -> Plan | None:
        return None

    def after(self, command: Command, outcome: Outcome, deadline: Deadline | None = None) -> None:
        return None


NO_RECORD = NoRecord()


class SentRecord:
    """The per-contact records the command path consults: before its Engage call and after it.

    `remembered`: the contact a shop customer's lookup last resolved to (while the contact is resolved);
    `before`: what to send to a contact, its names forgotten beside the call; `after`: what Engage confirmed.
    """

    def __init__(self, store: SentDigests, key: Callable[[], bytes], clock: Callable[[], float] = time.time) -> None:
        """`key`: the deployment's digest key (asked for each time: it may rotate)."""
        self.store = store
        self.key = key
        self.clock = clock
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._absent: Future[set[str]] | None = None  # the batch's contacts without a record (see `expect`)
        self._recorded: set[str] = set()  # contacts this container recorded since

    # --- the two points of the path ----------------------------------------------------------------
    def before(self, command: Command, contact_id: str) -> Plan | None:
        """What the command sends to the contact (None: it writes no attributes); forgetting the names it sends
        starts now, beside the Engage call (`after` waits for it)."""
        if command.payload is None or not command.payload.sent:
            return None
        plan = self._plan(command, contact_id)
        plan.contact_id = contact_id
        if not plan.sent or plan.nothing_left:  # a promotion without attributes, or nothing changed
            return plan
        if self._nothing_to_forget(contact_id):
            plan.unseen = True  # checked again after the call (`_forget_if_recorded_since`)
        else:
            plan.forgetting = self._threads().submit(self.store.forget, contact_id, plan.names)
        return plan

    def after(self, command: Command, outcome: Outcome, deadline: Deadline | None = None) -> None:
        """What Engage confirmed is recorded (when there is time for it), a created contact's attributes with
        it, and what the command's lookup resolved to is remembered or forgotten."""
        plan = outcome.plan
        if plan is not None and plan.sent:
            self._settle(plan, outcome.result is not None, deadline)
        if outcome.created and outcome.result is not None:  # what the create sent is what Engage holds
            attributes = {k: v for k, v in outcome.result["sent"].items() if k != "contactType"}
            created = Plan(attributes, record=digests(self.key(), outcome.contact_id, attributes))
            self._record(outcome.contact_id, created)
        if outcome.gone and outcome.remembered:  # merged or removed in Engage: the key is looked up again
            self._remember(command, None)
        elif outcome.result is not None:
            self._resolved(command, outcome.result, outcome.contact_id if outcome.remembered else None)

    # --- resolving the contact -------------------------------------------------------------------
    def remembered(self, command: Command) -> str | None:
        """The contact a shop customer's update by lookup (with `sendOnlyChanged`) last resolved to, if any.

        Only a command that names its customer by the platform's id (`sourceCustomer`) is written to the
        remembered contact without a lookup: the link is that customer's, and the contact is the same person
        even when Engage's key has changed since. A command known only by its key's value is always looked
        up: the value may belong to another contact by now, and a write to the old one would be misdirected.
        """
        if command.lookup is None or not command.send_only_changed or command.source_customer is None:
            return None
        try:
            return self.store.contact_for(customer_key(command))
        except DependencyUnavailable as error:  # looked up as if nothing were remembered
            observability.fallback("RememberedContactUnread", error)
            return None

    # --- a batch's contacts --------------------------------------------------------------------------
    def expect(self, contact_ids: list[str]) -> None:
        """The contacts of the batch about to run (none: the batch is over). Which of them have no record is read
        once for all, beside their first steps: a command of such a contact forgets nothing before its Engage
        call (one read for the batch instead of a write per command), until this container records for it."""
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

    # --- the steps behind `before` and `after` -----------------------------------------------------
    # --- a bulk batch (backfill/bulk_update.py): one request for many contacts, so its names are forgotten
    # before the request and its entries recorded once the batch's status confirms each row ---------------
    def plan(self, command: Command, contact_id: str) -> Plan:
        """What the command would send to the contact (only what changed), nothing forgotten yet."""
        return self._plan(command, contact_id)

    def confirmed(self, contact_id: str, plan: Plan, deadline: Deadline | None = None) -> None:
        """Entries Engage confirmed for one row of a bulk batch, recorded."""
        self._record(contact_id, plan, deadline)

    def _plan(self, command: Command, contact_id: str) -> Plan:
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

    def _settle(self, plan: Plan, confirmed: bool, deadline: Deadline | None) -> None:
        """After the call: the forgetting waited for, then what Engage confirmed recorded."""
        if plan.nothing_left:
            return
        if plan.forgetting is not None:
            wait([plan.forgetting])
            error = plan.forgetting.exception()
            if error is not None:
                # Nothing forgotten: recording now could leave half a record. An entry of an older value
                # may outlive this write, until the record's lifetime ends (see README, "Only what changed").
                plan.unavailable = plan.unavailable or _said(error, "forget")
                return
        recorded = confirmed and self._record(plan.contact_id, plan, deadline)
        if plan.unseen and not (recorded and set(plan.record) >= set(plan.names)):
            self._forget_if_recorded_since(plan)

    def _forget_if_recorded_since(self, plan: Plan) -> None:
        """A write that forgot nothing before its call (its contact had no record when the batch began) and
        recorded not every name it sent: if another container (the API path) recorded for the contact since,
        what it recorded for these names may be untrue now; forgotten, so no later update is left out."""
        try:
            if plan.contact_id not in self.store.absent([plan.contact_id]):
                self.store.forget(plan.contact_id, plan.names)
        except DependencyUnavailable as error:
            plan.unavailable = plan.unavailable or _said(error, "forget")

    def _record(self, contact_id: str, plan: Plan, deadline: Deadline | None = None) -> bool:
        """Record entries Engage confirmed, when there is time for it (never at the expense of the work after);
        whether they were."""
        if not plan.record or (deadline is not None and deadline.remaining() <= RECORD_NEEDS_SECONDS):
            return False
        with self._lock:
            self._recorded.add(contact_id)
        now = self.clock()
        try:
            self.store.record(contact_id, {name: entry(d, now) for name, d in plan.record.items()}, now)
        except DependencyUnavailable as exc:  # forgotten before: the next update is only sent whole
            plan.unavailable = plan.unavailable or _said(exc, "record")
            return False
        return True

    def _resolved(self, command: Command, result: dict[str, Any], remembered: str | None) -> None:
        """Remember what a shop customer's lookup resolved to; forget it when it no longer holds.

        No longer: the update changed the key itself, or Engage's answer shows another value under the key (it
        was changed in Engage) or another contact type than the lookup asks for. `remembered`: the contactId
        this command used without a lookup (rewritten only when it has to be forgotten).
        """
        if command.lookup is None or not command.send_only_changed or command.source_customer is None:
            return  # a command known only by its key's value is always looked up: nothing to remember
        if result.get("notFound"):
            return
        contact_id, sent = result["contactId"], result["sent"]
        changed_key = command.lookup.key in sent and sent[command.lookup.key] != command.lookup.value
        holds = not changed_key and still_found_by(command.lookup, result.get("contact"))
        if remembered is not None and not holds:
            observability.count("RememberedContactMoved")
            observability.logger.warning(
                "the contact a shop customer's lookup last resolved to no longer has its key in Engage; "
                "the next command looks it up",
                extra={"lookup": command.lookup.key},
            )
        if remembered == contact_id and holds:
            return  # remembered already
        self._remember(command, contact_id if holds else None)

    def _remember(self, command: Command, contact_id: str | None) -> None:
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
