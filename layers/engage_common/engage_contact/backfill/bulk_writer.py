"""A backfill's rows through Engage's bulk endpoint: new customers created 4,000 a request, the rest one by one.

The backfill queue carries CHUNKS (`{"backfillChunk": {"id", "firstRow", "commands"}}`: one Map batch's
update commands). A delivery of up to 40 chunks is written in two steps:

1. `prepare` (the whole delivery): the rows that would create a contact (createIfMissing, no create option
   the bulk endpoint cannot express) go in one `POST /contacts/bulk` per contact type, at most `bulk_max`
   items; each chunk's durable record (`aws.bulk_jobs`) is claimed BEFORE the request and holds the batch id
   after it; the status is read until Engage says the batch is done. A row Engage created is applied; a row
   refused because its key exists (or is being created) or one the status does not name goes the single
   path, as does a row it refused (the single create then dead-letters it with its own error, or finds the
   customer). Two rows for one key: only the first goes in a bulk request, the other the single path after it.
2. `finish` (each chunk, through the SQS batch utility: backoff and dead letters as for any record): the
   rows left go the single path (`single`: lookup first, then update or create; idempotent by the row's
   key), and the chunk is done.

A crash anywhere leaves a record to resume from: `sending` (the bulk request's outcome unknown) sends its
rows the single path, which looks each up before it creates it (Engage holds a key "being created" until
its batch is processed: the single create then answers 409 and is tried again later); `sent` reads the
status again; a status that never completes sends the rows the single path after `patience` seconds.
No row is sent in a second bulk request, so none is created twice, and each is counted once.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..aws.bulk_jobs import BulkJobs, ChunkState
from ..engage.client import EngageClient
from ..engage.retry import Deadline
from ..errors import EngageContactError, EngageRateLimited, InvalidRequest, RequestInProgress
from ..observability import count, logger

CHUNK = "backfillChunk"
# Refusals that mean "a contact with this key exists, or is being made": the row is applied the single way.
KEY_TAKEN = frozenset(
    {"ApprovedContactWithKeyExists", "ContactWithKeyIsBeingCreated", "ContactAlreadyExists", "DuplicateContact", "409"}
)
STATUS_WAITS = (1.0, 2.0, 3.0, 5.0, 10.0)  # before each status read, the last one repeated
PATIENCE_SECONDS = 900.0  # a batch not done after this long: its rows go the single path
CLAIM_SECONDS = 120.0  # a `sending` claim younger than this may be another invocation's request under way
FINISH_RESERVE_SECONDS = 20.0  # status reads stop this long before the invocation's end
SINGLE_CONCURRENCY = 4  # a chunk's customers written the single way at once (chunks themselves run 10 at once)


@dataclass
class Chunk:
    message_id: str
    backfill: str
    first_row: int
    rows: dict[int, dict[str, Any]]  # row -> its update command, in file order
    # when the chunk was queued (SQS's SentTimestamp): its rows are as of then (a newer live event wins)
    queued_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(tz=dt.UTC))

    def key_of(self, row: int) -> str | None:
        lookup = self.rows[row].get("lookup") or {}
        return next((v for k, v in lookup.items() if k != "contactType" and isinstance(v, str)), None)


def chunk_body(backfill: str, first_row: int, commands: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """A chunk message's body: a batch of rows' commands (the intake's side)."""
    return {CHUNK: {"id": backfill, "firstRow": first_row, "commands": [{"row": r, "command": c} for r, c in commands]}}


def read_chunk(message_id: str, data: Any, queued_ms: int | None = None) -> Chunk | None:
    """The chunk a message holds; None for a plain command (a dead letter redriven); InvalidRequest otherwise."""
    if not (isinstance(data, dict) and set(data) == {CHUNK}):
        return None
    body = data[CHUNK]
    items = body.get("commands") if isinstance(body, dict) else None
    if not (isinstance(body.get("id"), str) and isinstance(body.get("firstRow"), int) and isinstance(items, list)):
        raise InvalidRequest("a backfill chunk holds 'id', 'firstRow' and 'commands'")
    rows = {}
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("row"), int) and isinstance(item.get("command"), dict)):
            raise InvalidRequest("each of a chunk's 'commands' is {row, command}")
        rows[item["row"]] = item["command"]
    chunk = Chunk(message_id, body["id"], body["firstRow"], rows)
    if queued_ms is not None:
        chunk.queued_at = dt.datetime.fromtimestamp(queued_ms / 1000, tz=dt.UTC)
    return chunk


@dataclass
class _Request:
    """One bulk request in the making: its items, and for each chunk its rows' places in it."""

    contact_type: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    places: dict[str, dict[int, int]] = field(default_factory=dict)  # message id -> row -> index
    chunks: list[Chunk] = field(default_factory=list)


class BulkWriter:
    def __init__(
        self,
        client: EngageClient,
        jobs: BulkJobs,
        bulk_max: int = 4000,
        creation_of: Callable[[dict[str, Any]], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        patience: float = PATIENCE_SECONDS,
        updates: Callable[[BulkWriter], Any] | None = None,
    ) -> None:
        """`creation_of(command)`: the command's checked creation (`domain.creation`), None without createIfMissing;
        `updates(writer)`: the bulk-update step (`backfill.bulk_update.BulkUpdates`), None: rows left go one by one."""
        self.client = client
        self.jobs = jobs
        self.bulk_max = bulk_max
        self.creation_of = creation_of
        self.sleep = sleep
        self.clock = clock
        self.patience = patience
        self.updates = updates(self) if updates is not None else None

    # --- 1. the delivery's bulk part -------------------------------------------------------------------
    def prepare(self, chunks: list[Chunk], deadline: Deadline) -> None:
        fresh: list[Chunk] = []
        waiting: dict[str, list[tuple[Chunk, ChunkState]]] = {}
        for chunk in chunks:
            state = self.jobs.read(chunk.backfill, chunk.first_row)
            if state is None:
                fresh.append(chunk)
            elif state.state == "sending" and self.clock() - state.started > CLAIM_SECONDS:
                self._unknown(chunk, "a bulk request whose outcome is unknown (no batch id recorded)")
            elif state.state == "sent" and state.batch_id:
                waiting.setdefault(state.batch_id, []).append((chunk, state))
        for request in self._plan(fresh):
            self._send(request, deadline, waiting)
        for batch_id, members in waiting.items():
            self._settle(batch_id, members, deadline)

    def _plan(self, chunks: list[Chunk]) -> list[_Request]:
        """The bulk requests a delivery's new chunks make: the first row of each key, grouped by contact type.

        A chunk's rows go in one request (its record holds one batch id); a chunk with none goes the single path.
        """
        requests: dict[str, list[_Request]] = {}
        seen: set[str] = set()
        for chunk in chunks:
            by_type: dict[str, dict[int, dict[str, Any]]] = {}
            for row, command in chunk.rows.items():
                contact_type = self._bulk_type(command)
                key = (chunk.key_of(row) or "").lower()
                if contact_type is None or not key or key in seen:
                    continue
                seen.add(key)
                assert self.creation_of is not None  # _bulk_type found none without it
                body = {k: v for k, v in self.creation_of(command).body.items() if k != "contactType"}
                by_type.setdefault(contact_type, {})[row] = body
            if len(by_type) != 1:  # none, or several types in one chunk (rare): the single path, whole
                self._single_whole(chunk)
                continue
            contact_type, bodies = next(iter(by_type.items()))
            group = requests.setdefault(contact_type, [_Request(contact_type)])
            if len(group[-1].bodies) + len(bodies) > self.bulk_max:
                group.append(_Request(contact_type))
            request = group[-1]
            request.places[chunk.message_id] = {row: len(request.bodies) + n for n, row in enumerate(bodies)}
            request.bodies.extend(bodies.values())
            request.chunks.append(chunk)
        return [r for group in requests.values() for r in group if r.bodies]

    def _single_whole(self, chunk: Chunk) -> None:
        if self.jobs.claim(chunk.backfill, chunk.first_row, "single"):
            self.jobs.to_single(chunk.backfill, chunk.first_row, list(chunk.rows), 0)

    def _bulk_type(self, command: dict[str, Any]) -> str | None:
        """The contact type a row would be bulk-created as; None when the bulk endpoint cannot express its create."""
        if self.creation_of is None or "contactId" in command or command.get("clear"):
            return None
        try:
            creation = self.creation_of(command)
        except EngageContactError:
            return None  # the single path says what is wrong with it
        # source, storeExternalId and createAsUnapproved have no place in a bulk request
        return creation.contact_type if creation is not None and not creation.options else None

    def _send(self, request: _Request, deadline: Deadline, waiting: dict[str, list]) -> None:
        job = uuid.uuid4().hex
        claimed = [c for c in request.chunks if self.jobs.claim(c.backfill, c.first_row, job)]
        if len(claimed) != len(request.chunks):  # another invocation holds some: they are retried later, whole
            self._release(claimed, job)
            return
        try:
            batch_id = self.client.bulk_create(request.bodies, request.contact_type, deadline)
        except EngageRateLimited:  # Engage took nothing: the chunks are claimed again on their next delivery
            self._release(claimed, job)
            return
        except EngageContactError as exc:
            # refused whole (each row's own call will say why), or its outcome unknown (each row is looked up first)
            logger.warning("bulk request failed; its rows go one by one", extra={"errorType": exc.name})
            for chunk in claimed:
                self._unknown(chunk, exc.name)
            return
        count("BulkRequests")
        size = len(request.bodies)
        for chunk in claimed:
            places = request.places[chunk.message_id]
            self.jobs.sent(chunk.backfill, chunk.first_row, batch_id, size, places)
            state = ChunkState("sent", job, batch_id, self.clock(), size, places)
            waiting.setdefault(batch_id, []).append((chunk, state))

    def _release(self, chunks: list[Chunk], job: str) -> None:
        for chunk in chunks:
            self.jobs.release(chunk.backfill, chunk.first_row, job)

    def _unknown(self, chunk: Chunk, reason: str) -> None:
        """Its rows may be in a batch Engage took: each goes the single path, which looks it up before creating."""
        logger.info("bulk outcome unknown; rows go the single path", extra={"reason": reason})
        self.jobs.to_single(chunk.backfill, chunk.first_row, list(chunk.rows), 0)

    # --- reading a batch's status and settling its chunks ------------------------------------------------------
    def _settle(self, batch_id: str, members: list[tuple[Chunk, ChunkState]], deadline: Deadline) -> None:
        started = min(state.started for _, state in members)
        status = self.read_status(batch_id, _keys(members), started, deadline)
        if status is None:
            if self.clock() - started > self.patience:
                count("BulkBatchesGivenUp")
                for chunk, _ in members:
                    self._unknown(chunk, "the batch's status never said it was done")
            return  # still `sent`: the chunk's message comes back and the status is read again
        for chunk, state in members:
            self._settle_chunk(chunk, state, status)

    def read_status(self, batch_id: str, keys: list[str | None], started: float, deadline: Deadline) -> Any:
        """The batch's status once Engage says it is done; None when this invocation's time or the patience ends."""
        for wait in _waits():
            if deadline.remaining() - wait < FINISH_RESERVE_SECONDS:
                return None
            self.sleep(wait)  # Engage needs a moment: the first read comes after one wait, not at once
            status = self.client.bulk_status(batch_id, keys, deadline)
            if status.done:
                return status
            if self.clock() - started > self.patience:
                logger.warning("bulk batch not done in time; rows go the single path", extra={"state": status.state})
                return None
        return None

    def _settle_chunk(self, chunk: Chunk, state: ChunkState, status: Any) -> None:
        """Rows Engage created are applied; every other row goes the single path, refused ones included: a
        refusal may be the tenant's key rule on a customer who exists, and the single path (lookup first)
        either applies the row or dead-letters it with the single call's own error."""
        applied, pending = 0, [row for row in chunk.rows if row not in state.places]
        for row, index in state.places.items():
            outcome = status.rows.get(index)
            if outcome is not None and outcome.contact_id:
                applied += 1
            else:
                pending.append(row)
                if outcome is not None and outcome.error_code not in KEY_TAKEN:
                    count("BulkRowsRefused")
        self.jobs.to_single(chunk.backfill, chunk.first_row, sorted(pending), applied)
        count("BulkRowsApplied", applied)

    # --- 2. each chunk's rows left ----------------------------------------------------------------------------
    def finish(
        self,
        chunk: Chunk,
        single: Callable[[int, dict[str, Any]], None],
        concurrency: int = 1,
        deadline: Deadline | None = None,
    ) -> None:
        """The chunk's rows left: those of customers Engage holds in one bulk update where it can express them
        (`updates`), then the rest the single way (`single(row, command)` raises what retrying may mend).

        Rows of different customers run `concurrency` at a time; one customer's rows in file order, and a
        failed row holds back that customer's later rows only. Any failure is raised once all have run.
        """
        state = self.jobs.read(chunk.backfill, chunk.first_row)
        if state is not None and self.updates is not None and deadline is not None:
            state = self._bulk_update(chunk, state, deadline)
        if state is not None and state.state == "done":
            return
        if state is None or state.state != "single":
            raise RequestInProgress("the chunk's bulk batch is still being processed", {"firstRow": chunk.first_row})
        groups: dict[str, list[int]] = {}
        for row in state.pending:
            if row in chunk.rows:
                groups.setdefault((chunk.key_of(row) or str(row)).lower(), []).append(row)
        failures = _run_groups(list(groups.values()), lambda row: single(row, chunk.rows[row]), concurrency)
        if failures:
            raise failures[0]
        self.jobs.done(chunk.backfill, chunk.first_row)

    def _bulk_update(self, chunk: Chunk, state: ChunkState, deadline: Deadline) -> ChunkState | None:
        """The chunk's rows of customers Engage holds, in one bulk update; the chunk's state after it."""
        if state.state not in ("single", "patching", "patched"):
            return state
        assert self.updates is not None  # called only with bulk updates (see `write`)
        self.updates.run(chunk, state, deadline)
        after = self.jobs.read(chunk.backfill, chunk.first_row)
        if after is not None and after.state in ("patching", "patched"):
            raise RequestInProgress("the chunk's bulk update is still being processed", {"firstRow": chunk.first_row})
        return after

    def pending_rows(self, chunk: Chunk) -> list[int]:
        """The rows of a chunk not yet counted (all of them while its bulk part is unsettled)."""
        state = self.jobs.read(chunk.backfill, chunk.first_row)
        if state is not None and state.state == "done":
            return []
        unsettled = ("single", "patching", "patched")
        return list(state.pending) if state is not None and state.state in unsettled else list(chunk.rows)


def _run_groups(groups: list[list[int]], run_row: Callable[[int], None], concurrency: int) -> list[BaseException]:
    """Each group's rows in order, groups `concurrency` at a time; a failed row stops its own group only."""
    failures: list[BaseException] = []

    def run(rows: list[int]) -> None:
        for row in rows:
            try:
                run_row(row)
            except Exception as error:  # raised by the caller once every group has had its turn
                failures.append(error)
                return

    if concurrency > 1 and len(groups) > 1:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(groups))) as pool:
            list(pool.map(run, groups))
    else:
        for rows in groups:
            run(rows)
    return failures


def _keys(members: list[tuple[Chunk, ChunkState]]) -> list[str | None]:
    """Each bulk item's key value (None where this delivery does not hold its chunk): to match a status by key."""
    size = max(state.size for _, state in members)
    keys: list[str | None] = [None] * size
    for chunk, state in members:
        for row, index in state.places.items():
            if row in chunk.rows and 0 <= index < size:
                keys[index] = chunk.key_of(row)
    return keys


def _waits() -> Any:
    yield from STATUS_WAITS
    while True:
        yield STATUS_WAITS[-1]
