"""SQS in: FIFO batches with partial failures, backoff through visibility, dead letters with their reason.

Why not Powertools' batch utility (`BatchProcessor` with `process_partial_response`, used here before): importing
any of it imports asyncio (for its async processor) and all forty of Powertools' event data classes (its
`SQSRecord` lives in a package that loads every one), which a first SQS batch paid on its cold start
(`cold_start_keyed_vs_client_ratio`; the before and after: docs/performance.md) for a loop this module had
made its own already (records of different message groups at once). The answer is the same partial batch
response, `{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`, the records in the order they failed,
and a record reads its fields as Powertools' `SQSRecord` does (a required one missing: KeyError).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypedDict

from ..aws.queues import Queues
from ..errors import name_of, policy_of
from ..observability import correlate, count, logger
from .backoff import QueueSettings, backoff_for  # 10 s, 30 s, 60 s, 300 s, then 900 s (by receive count)


class ItemFailure(TypedDict):
    itemIdentifier: str


class PartialItemFailureResponse(TypedDict):
    """Lambda's partial batch response: the records to be received again; the others are deleted."""

    batchItemFailures: list[ItemFailure]


class UnexpectedBatchTypeError(Exception):
    """The event holds no list of records (Powertools' name for it, kept)."""


class SqsAttributes:
    """A record's `attributes`, by the names Powertools' `SQSRecordAttributes` gives them."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @property
    def message_group_id(self) -> str | None:
        return self.data.get("MessageGroupId")

    @property
    def approximate_receive_count(self) -> str:
        return self.data["ApproximateReceiveCount"]

    @property
    def sent_timestamp(self) -> str:
        return self.data["SentTimestamp"]


class SqsRecord:
    """One record of an SQS event (the raw dict in `raw`), its fields by Powertools' `SQSRecord` names."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @property
    def message_id(self) -> str:
        return self.raw["messageId"]

    @property
    def receipt_handle(self) -> str:
        return self.raw["receiptHandle"]

    @property
    def body(self) -> str:
        return self.raw["body"]

    @property
    def attributes(self) -> SqsAttributes:
        return SqsAttributes(self.raw["attributes"])

    @property
    def event_source_arn(self) -> str:
        return self.raw["eventSourceARN"]


class ConcurrentGroupsProcessor:
    """A batch's records, those of different message groups concurrently.

    Those of one group run in order, and a failed record holds back the later records of its own group
    only, as a FIFO queue requires (Powertools' SqsFifoPartialProcessor with skip_group_on_error does the
    same one record at a time: a batch's wait would be the sum of its Engage round trips instead of about
    one; how much it saves: `batch100_speedup` in docs/performance.md).
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(int(concurrency), 1)

    def process(self, records: list[dict[str, Any]], handler: Callable[[SqsRecord], Any]) -> list[str]:
        """Run `handler` on each record; the message ids of those that failed (or were held back), in that order."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            group = (record.get("attributes") or {}).get("MessageGroupId") or record["messageId"]
            groups.setdefault(group, []).append(record)
        failed_ids: list[str] = []
        lock = threading.Lock()

        def run_group(members: list[dict[str, Any]]) -> None:
            failed = False
            for raw in members:
                record = SqsRecord(raw)
                if not failed:
                    try:
                        handler(record)
                        continue
                    except Exception:
                        failed = True  # the later records of its group are held back, not tried
                with lock:
                    failed_ids.append(record.message_id)

        if len(groups) == 1 or self.concurrency == 1:
            for members in groups.values():
                run_group(members)
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(groups))) as pool:
                list(pool.map(run_group, groups.values()))
        return failed_ids


def process_batch(
    event: dict[str, Any],
    settings: QueueSettings,
    queues: Queues,
    handle_record: Callable[[SqsRecord], Any],
    on_dead_letter: Callable[[SqsRecord, BaseException], None] | None = None,
) -> PartialItemFailureResponse:
    """Handle each record in order; report what retrying can mend, dead-letter what it cannot."""
    group_delays: dict[str, int] = {}

    def record_handler(record: SqsRecord) -> None:
        correlate(record.message_id)
        try:
            handle_record(record)
            return
        except Exception as error:
            if settings.dead_letter_queue_url and (
                policy_of(error).dead_letter_at_once or _last_receive(settings, record)
            ):
                dead_letter(queues, settings.dead_letter_queue_url, record, error)
                if on_dead_letter is not None:
                    on_dead_letter(record, error)
                return  # it left the source queue with its reason: a success for the batch
            group_delays.setdefault(record.attributes.message_group_id or "", backoff_for(_receives(record)))
            logger.warning(
                "record failed; it will be retried", extra={"messageId": record.message_id, "errorType": name_of(error)}
            )
            raise

    records = event.get("Records", [])
    if not records or not isinstance(records, list):
        raise UnexpectedBatchTypeError("the event holds no list of SQS records")
    # A batch that failed whole is reported like any other, so its records get their backoff too.
    failed = ConcurrentGroupsProcessor(settings.batch_concurrency).process(records, record_handler)
    if failed:
        held = set(failed)
        back_off(queues, [r for r in records if r["messageId"] in held], group_delays)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _last_receive(settings: QueueSettings, record: SqsRecord) -> bool:
    """The queue's redrive would move it without a reason next time: move it now, with one."""
    limit = settings.max_receive_count
    return limit is not None and _receives(record) >= limit


def _receives(record: SqsRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count or 1)
    except ValueError:
        return 1


def back_off(queues: Queues, records: list[dict[str, Any]], group_delays: dict[str, int]) -> None:
    """Hide failed records, and those held back behind them, for their group's backoff."""
    by_queue: dict[str, list[tuple[str, int]]] = {}
    for raw in records:
        record = SqsRecord(raw)
        delay = group_delays.get(record.attributes.message_group_id or "", backoff_for(_receives(record)))
        by_queue.setdefault(record.event_source_arn, []).append((record.receipt_handle, delay))
    for arn, entries in by_queue.items():
        queues.hide(arn, entries)


def dead_letter(queues: Queues, queue_url: str, record: SqsRecord, error: BaseException) -> None:
    """Move a record that retrying cannot mend to the dead-letter queue at once, with its reason."""
    message = str(error) if policy_of(error).status != 500 else "an unexpected error occurred"
    group = record.attributes.message_group_id or record.message_id
    queues.dead_letter(queue_url, record.body or "", group, record.message_id, name_of(error), message)
    count("MessagesDeadLettered")
    logger.info("record dead-lettered", extra={"messageId": record.message_id, "errorType": name_of(error)})
