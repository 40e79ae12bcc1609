"""The backfill writer function: the backfill's own queue into Engage, bulk first (`backfill.bulk_writer`).

Its SQS batches (up to 40 chunks of a Map batch each) are written in two steps: the delivery's bulk part
(`BulkWriter.prepare`), then each chunk through the SQS batch utility (`BulkWriter.finish`: its rows left,
the single way, with the update function's own command path, idempotency and counters). A plain command
on the queue (a dead-lettered row sent back by a redrive) takes the single way. Its container's Engage
calls are paced at BACKFILL_RATE_SHARE of the budget: live calls always find the rest free.
"""

from __future__ import annotations

import json
from typing import Any

from . import observability
from .aws.bulk_jobs import BulkJobs
from .aws.clients import AWS_RESERVE_SECONDS
from .backfill import bulk_writer
from .backfill.bulk_update import BulkUpdates
from .backfill.bulk_writer import SINGLE_CONCURRENCY, BulkWriter, Chunk, read_chunk
from .container import Container
from .domain.command import Operation, parse_command
from .domain.json_body import decode_json
from .engage.retry import Deadline
from .errors import EngageContactError, InvalidRequest, name_of, policy_of
from .handler import ContactFunction
from .observability import logger


class BackfillWriterFunction:
    def __init__(self, container: Container, writer: BulkWriter | None = None) -> None:
        self.container = container
        self.function = ContactFunction(Operation.UPDATE, container)  # the single path: run, idempotency, counters
        self.writer = writer or self.build_writer()

    def build_writer(self, **options: Any) -> BulkWriter:
        table = self.container.settings.idempotency_table
        if not table:
            raise InvalidRequest("the backfill writer needs the idempotency table (IDEMPOTENCY_TABLE)")
        jobs = BulkJobs(table, self.container.dynamodb())
        settings, container = self.container.settings, self.container

        def parse(command: dict[str, Any]) -> Any:
            return parse_command(command, Operation.UPDATE, settings.catalogue)

        def updates(writer: BulkWriter) -> BulkUpdates:
            return BulkUpdates(
                container.engage,
                jobs,
                parse,
                container.sent_record,
                container.event_times,
                settings.avoid_triggering_export,
                SINGLE_CONCURRENCY,
                writer.read_status,
                writer.clock,
                lambda: bulk_writer.CLAIM_SECONDS,
                writer.patience,
            )

        return BulkWriter(
            container.engage,
            jobs,
            settings.bulk_max,
            creation_of=lambda command: parse(command).creation,
            updates=updates,
            **options,
        )

    def __call__(self, event: Any, context: Any) -> Any:
        from .triggers import sqs

        try:
            chunks = self.chunks(event.get("Records") or [])
            deadline = Deadline.from_context(context, AWS_RESERVE_SECONDS)
            try:
                self.writer.prepare(list(chunks.values()), deadline)
            except EngageContactError as error:  # the chunks are retried: their records say where each stands
                logger.warning("backfill bulk step failed", extra={"errorType": name_of(error)})
            settings, queues = self.container.queue_settings, self.container.queues
            return sqs.process_batch(
                event,
                settings,
                queues,
                lambda record: self.on_record(record, chunks, context),
                on_dead_letter=lambda record, error: self.on_dead_letter(record, chunks),
            )
        finally:
            observability.flush()

    @staticmethod
    def chunks(records: list[dict[str, Any]]) -> dict[str, Chunk]:
        found = {}
        for record in records:
            try:
                queued = (record.get("attributes") or {}).get("SentTimestamp")
                queued_ms = int(str(queued)) if str(queued or "").isdigit() else None
                chunk = read_chunk(record["messageId"], decode_json(record.get("body") or ""), queued_ms)
            except Exception:  # noqa: S112 - on_record reads it again and dead-letters it with the reason
                continue
            if chunk is not None:
                found[record["messageId"]] = chunk
        return found

    def on_record(self, record: Any, chunks: dict[str, Chunk], context: Any) -> None:
        chunk = chunks.get(record.message_id)
        if chunk is not None:
            deadline = Deadline.from_context(context, AWS_RESERVE_SECONDS)
            self.writer.finish(chunk, lambda row, command: self.single(command, context), SINGLE_CONCURRENCY, deadline)
            return
        data = decode_json(record.body or "")
        if read_chunk(record.message_id, data) is None:  # a malformed chunk raises InvalidRequest: dead-lettered
            self.single(data, context)

    def single(self, command: dict[str, Any], context: Any) -> None:
        """One row the single way; a failure retrying cannot mend dead-letters the row alone, with its reason."""
        try:
            self.function.run(command, context, "backfill")
        except Exception as error:
            if not policy_of(error).dead_letter_at_once:
                raise
            self.dead_letter_row(command, name_of(error), str(error))
            return
        # applied, or a replay (a crash may have come between its first success and its count): counted once
        self.function.count_backfill_row(command, "applied")

    def dead_letter_row(self, command: dict[str, Any], error_type: str, message: str) -> None:
        url = self.container.settings.dead_letter_queue_url
        if url:
            key = str(command.get("idempotencyKey") or "row")
            self.container.queues.dead_letter(url, json.dumps(command), None, key, error_type, message)
        self.function.count_backfill_row(command, "dead_lettered")
        observability.count("BackfillRowsDeadLettered")

    def on_dead_letter(self, record: Any, chunks: dict[str, Chunk]) -> None:
        """A chunk moved whole to the dead letters (its last receive): its rows not yet counted are counted there."""
        chunk = chunks.get(record.message_id)
        if chunk is None:
            self.function.on_dead_letter(record, None)  # a plain command: counted as the update function does
            return
        for row in self.writer.pending_rows(chunk):
            self.function.count_backfill_row(chunk.rows[row], "dead_lettered")


def make_writer_handler(container: Container | None = None) -> BackfillWriterFunction:
    """The backfill writer's Lambda handler (its container's calls yield to live ones)."""
    return BackfillWriterFunction(container or Container.from_env(background=True))
