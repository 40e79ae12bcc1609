"""A chunk's rows of customers Engage holds, through Engage's bulk update (`PATCH /contacts/bulk`).

After the bulk create (`backfill.bulk_writer`), a chunk's rows left are customers Engage already has (or rows
the create could not express). The rows the documented bulk update can express go in ONE `PATCH` per
chunk; every other row, and every row whose outcome is not a confirmed update, takes the single path.

A row goes in the bulk update when it is an update by lookup (the first pending row of its customer in the
chunk) whose contact type is known (the lookup's, or its `createIfMissing`'s), whose payload sends no
`consents` (a list Engage replaces whole) and clears nothing. Its customer is looked up WITH that contact
type, so a contact of another type (a Member) is not found and takes the single path, and the `PATCH` is
sent with that `contactType` (Voyado: without it the tenant's default type is used). The item is
`{"contactId", ...only what changed}`: the same sparse payload and the same record of what Engage confirmed
(`only_changed.SentRecord`) as a single update. Before the request each contact is HELD in the event-time
store (`aws.event_times.EventTimes.hold`) as of its chunk's queueing: a contact a newer live event was applied
to is not written at all (stale), and a live command with an event time waits while the batch is in flight.

The chunk's record (`aws.bulk_jobs`) is `patching` before the request and `patched` (with the batch id)
after it, so a crash never sends a second bulk request for the same rows: a 429 gives the chunk back
(`single`, tried again on its next delivery); a request whose outcome is unknown (5xx, no answer, a crash
before the batch id was recorded) is settled by reading each contact back on the chunk's next deliveries:
once Engage holds every row's values they are applied; a row it still lacks after `patience` takes the
single path. Nothing is written twice while Engage applies what it took, and every row is counted once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import observability
from ..aws.bulk_jobs import BulkJobs, ChunkState
from ..domain.command import Command
from ..domain.contacts import Lookup, command_group
from ..domain.sent_digests import flatten
from ..engage.client import EngageClient
from ..engage.retry import Deadline
from ..errors import DependencyUnavailable, EngageContactError, EngageRateLimited
from ..observability import count, logger
from ..only_changed import Plan, SentRecord

REFUSED_ATTRIBUTES = frozenset({"consents"})  # a list Engage replaces whole: a bulk item would reset the rest
HOLD_MARGIN_SECONDS = 120.0  # a held contact is let go this long after the batch's patience at the latest


@dataclass
class _Item:
    row: int
    command: Command
    contact_id: str
    plan: Plan


class BulkUpdates:
    """The bulk-update step of a chunk (see the module's docstring)."""

    def __init__(
        self,
        client: EngageClient,
        jobs: BulkJobs,
        parse: Callable[[dict[str, Any]], Command],
        record: Callable[[], SentRecord | None],
        event_times: Callable[[], Any],
        avoid_triggering_export: bool = False,
        concurrency: int = 4,
        status: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.time,
        claim_seconds: Callable[[], float] = lambda: 120.0,
        patience: float = 900.0,
    ) -> None:
        """`status(batch_id, keys, started, deadline)`: the batch's status once done, None when not (yet)."""
        self.client = client
        self.jobs = jobs
        self.parse = parse
        self.record = record
        self.event_times = event_times
        self.avoid_triggering_export = avoid_triggering_export
        self.concurrency = concurrency
        self.status = status
        self.clock = clock
        self.claim_seconds = claim_seconds
        self.patience = patience

    # --- which rows ------------------------------------------------------------------------------------------------
    def contact_type(self, command: Command) -> str | None:
        """The contact type a row is bulk-updated as; None when the bulk update cannot express it."""
        if command.lookup is None or command.contact_id is not None or command.payload is None:
            return None
        sent = command.payload.sent
        if not sent or REFUSED_ATTRIBUTES & set(sent) or any(v == "" for v in flatten(sent).values()):
            return None
        if command.lookup.contact_type:
            return command.lookup.contact_type
        return command.creation.contact_type if command.creation is not None else None

    def candidates(self, chunk: Any, pending: list[int]) -> dict[int, tuple[Command, str]]:
        """The first pending row of each customer the bulk update can express, of the chunk's most common type."""
        found: dict[int, tuple[Command, str]] = {}
        seen: set[str] = set()
        for row in sorted(pending):
            if row not in chunk.rows:
                continue
            key = (chunk.key_of(row) or str(row)).lower()
            if key in seen:
                continue  # a later row of the customer: the single path, after this one
            seen.add(key)
            try:
                command = self.parse(chunk.rows[row])
            except EngageContactError:
                continue  # the single path says what is wrong with it
            contact_type = self.contact_type(command)
            if contact_type is not None:
                found[row] = (command, contact_type)
        types = [t for _, t in found.values()]
        common = max(set(types), key=types.count) if types else None
        return {row: found[row] for row in found if found[row][1] == common}

    # --- the step ----------------------------------------------------------------------------------------------
    def run(self, chunk: Any, state: ChunkState, deadline: Deadline) -> None:
        """Settle the chunk's bulk update: `patching`/`patched` resumed, or a new one from `single`."""
        if state.state == "patched" and state.batch_id:
            self._settle(chunk, state, deadline, None)
        elif state.state == "patching":
            if self.clock() - state.started > self.claim_seconds():
                self._unknown(chunk, state, deadline)
        elif state.state == "single":
            self._start(chunk, state, deadline)

    def _start(self, chunk: Any, state: ChunkState, deadline: Deadline) -> None:
        candidates = self.candidates(chunk, state.pending)
        if len(candidates) < 2:  # one row is no batch: the single path is as cheap, and answers at once
            return
        contact_type = next(iter(candidates.values()))[1]
        job = uuid.uuid4().hex
        found = self._look_up(candidates, deadline)
        held, stale = self._hold(chunk, found, job)
        items, unchanged = self._plan(held, found)
        applied = stale + unchanged  # nothing to send: a newer event was applied, or Engage holds it all
        if len(items) < 2:  # too few for a batch: the single path writes them
            for row in list(items):
                self._release(held.pop(row), job)
            items = {}
        # each item's place in the request; -1: applied without a call (kept in the record for a resumed settle)
        places = {item.row: n for n, item in enumerate(items.values())} | dict.fromkeys(applied, -1)
        if not places or not self.jobs.claim_update(chunk.backfill, chunk.first_row, job, places):
            self._release_all(held, job)
            return  # nothing for the bulk update, or another invocation has the chunk
        if not items:
            pending = [r for r in state.pending if r not in places]
            self._finish(chunk, ChunkState("patching", job, places=places), pending, applied, ({}, held))
            return
        self._forget(items)
        bodies = [{"contactId": item.contact_id, **item.plan.sent} for item in items.values()]
        try:
            batch_id = self.client.bulk_update(bodies, deadline, self.avoid_triggering_export, contact_type)
        except EngageRateLimited:  # Engage took nothing: tried again on the chunk's next delivery
            self.jobs.release_update(chunk.backfill, chunk.first_row, job)
            self._release_all(held, job)
            raise
        except EngageContactError as error:
            # refused whole, or its outcome unknown: the chunk stays `patching`, and its contacts are read back once
            # Engage had time to apply a batch it may have taken (the chunk's next delivery after CLAIM_SECONDS)
            logger.warning("bulk update failed; its contacts are read back later", extra={"errorType": error.name})
            return
        count("BulkUpdateRequests")
        self.jobs.sent(chunk.backfill, chunk.first_row, batch_id, len(bodies), places, state="patched")
        patched = ChunkState("patched", job, batch_id, self.clock(), len(bodies), places, state.pending)
        self._settle(chunk, patched, deadline, (items, held))

    def _look_up(
        self, candidates: dict[int, tuple[Command, str]], deadline: Deadline
    ) -> dict[int, tuple[Command, str]]:
        """Each candidate's contactId, looked up with its contact type; a row not found so takes the single path."""

        def find(row: int) -> tuple[int, str | None]:
            command, contact_type = candidates[row]
            assert command.lookup is not None  # a candidate is an update by lookup (`_candidate`)
            lookup = Lookup(command.lookup.key, command.lookup.value, contact_type)
            try:
                return row, self.client.find_contact_id(lookup, deadline)
            except EngageContactError:  # not found (new, or another type), several, or Engage failing: single path
                return row, None

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            ids = dict(pool.map(find, list(candidates)))
        return {row: (candidates[row][0], contact_id) for row, contact_id in ids.items() if contact_id}

    def _hold(self, chunk: Any, found: dict[int, tuple[Command, str]], job: str) -> tuple[dict[int, str], list[int]]:
        """Hold each contact (as of the chunk's queueing) while the batch is in flight.

        The rows to write (row -> the held group; "" when the store cannot be reached: unordered, as the command
        path goes on), and the rows found stale. A contact another batch holds is left to the single path."""
        store = self.event_times()
        held: dict[int, str] = {}
        stale: list[int] = []
        seconds = self.patience + HOLD_MARGIN_SECONDS
        for row, (command, _) in found.items():
            if store is None:
                held[row] = ""
                continue
            group = command_group(command)
            try:
                taken = store.hold(group, chunk.queued_at, seconds, job)
            except DependencyUnavailable as error:
                observability.fallback("ContactHoldUnavailable", error)
                held[row] = ""
                continue
            if taken is False:
                stale.append(row)
            elif taken:
                held[row] = group
        return held, stale

    def _plan(self, held: dict[int, str], found: dict[int, tuple[Command, str]]) -> tuple[dict[int, _Item], list[int]]:
        """Each held row's item (only what changed, as a single update plans it); the rows with nothing to send."""
        record = self.record()
        items: dict[int, _Item] = {}
        unchanged: list[int] = []
        for row in held:
            command, contact_id = found[row]
            plan = record.plan(command, contact_id) if record is not None else Plan(command.payload.sent)
            if plan.sent:
                items[row] = _Item(row, command, contact_id, plan)
            else:
                unchanged.append(row)
        return items, unchanged

    def _forget(self, items: dict[int, _Item]) -> None:
        """The names each item sends are forgotten before Engage may apply them (the record stays truthful)."""
        record = self.record()
        if record is None:
            return
        for item in items.values():
            try:
                record.store.forget(item.contact_id, list(flatten(item.plan.sent)))
            except DependencyUnavailable:
                item.plan.record = {}  # nothing forgotten: nothing recorded either, the next one sends it whole

    # --- reading the outcome -------------------------------------------------------------------------------------
    def _settle(self, chunk: Any, state: ChunkState, deadline: Deadline, made: Any) -> None:
        """`made`: (items by row, held groups) when this invocation sent the batch; None when resumed."""
        items = made[0] if made else {}
        keys: list[str | None] = [None] * state.size
        for row, index in state.places.items():
            if 0 <= index < state.size and row in items:
                keys[index] = items[row].contact_id
        assert self.status is not None  # given by the writer that sent the batch
        status = self.status(state.batch_id, keys, state.started, deadline)
        if status is None:
            if self.clock() - state.started > self.patience:
                count("BulkBatchesGivenUp")
                self._unknown(chunk, state, deadline, made)
            return  # still `patched`: the chunk comes back and reads it again
        record = self.record()
        applied, pending = [], [r for r in state.pending if r not in state.places]
        for row, index in state.places.items():
            outcome = status.rows.get(index) if index >= 0 else None
            if index < 0 or (outcome is not None and outcome.contact_id):
                applied.append(row)
                if row in items and record is not None:
                    record.confirmed(items[row].contact_id, items[row].plan, deadline)
            else:
                pending.append(row)  # refused (the single call says why) or not named: the single path
                if outcome is not None:
                    count("BulkRowsRefused")
        self._finish(chunk, state, sorted(pending), applied, made)
        count("BulkRowsApplied", len(applied))

    def _unknown(self, chunk: Any, state: ChunkState, deadline: Deadline, made: Any = None) -> None:
        """The batch may or may not have been applied: a row whose values Engage holds now is applied."""
        items = made[0] if made else {}
        landed = [r for r, i in state.places.items() if i < 0]
        pending = [r for r in state.pending if r not in state.places]

        def check(row: int) -> tuple[int, bool]:
            command = self.parse(chunk.rows[row])
            try:
                contact_id = items[row].contact_id if row in items else None
                if contact_id is None:
                    assert command.lookup is not None  # every row of a bulk update was found by its lookup
                    lookup = Lookup(command.lookup.key, command.lookup.value, self.contact_type(command))
                    contact_id = self.client.find_contact_id(lookup, deadline, attempts=1)
                contact = self.client.get_contact(contact_id, deadline, attempts=1)
            except EngageContactError:
                return row, False
            return row, holds_values(contact, command.payload.sent)

        rows = [r for r, i in state.places.items() if i >= 0 and r in chunk.rows]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            checked = dict(pool.map(check, rows))
        count("BulkUpdateOutcomesRead")
        if not all(checked.values()) and self.clock() - state.started <= self.patience:
            return  # Engage may still apply it: read again on the chunk's next delivery, the single way after patience
        landed += [r for r, holds in checked.items() if holds]
        pending += [r for r, holds in checked.items() if not holds]
        self._finish(chunk, state, sorted(pending), landed, made)

    def _finish(self, chunk: Any, state: ChunkState, pending: list[int], applied: list[int], made: Any) -> None:
        self.jobs.to_single(chunk.backfill, chunk.first_row, pending, len(applied))
        if made:
            self._release_all(made[1], state.job)
            return
        for row in state.places:  # resumed after a crash: the holds are on this chunk's rows' customers
            try:
                self._release(command_group(self.parse(chunk.rows[row])), state.job)
            except (EngageContactError, KeyError):
                continue

    def _release_all(self, held: dict[int, str], job: str) -> None:
        for group in held.values():
            self._release(group, job)

    def _release(self, group: str | None, job: str) -> None:
        store = self.event_times()
        if not group or store is None:
            return
        try:
            store.release(group, job)
        except DependencyUnavailable as error:  # the hold ends by itself
            observability.fallback("ContactHoldNotReleased", error)


def holds_values(contact: Any, sent: dict[str, Any]) -> bool:
    """Whether Engage's contact (flat, or with `attributes`) shows every value of `sent` (compared flat)."""
    if not isinstance(contact, dict):
        return False
    attributes = contact.get("attributes")
    fields = {**(attributes if isinstance(attributes, dict) else {}), **contact}
    return all(_value(fields, name) == value for name, value in flatten(sent).items())


def _value(fields: dict[str, Any], name: str) -> Any:
    parent, dot, child = name.partition(".")
    if not dot:
        return fields.get(name)
    inner = fields.get(parent)
    return inner.get(child) if isinstance(inner, dict) else None
