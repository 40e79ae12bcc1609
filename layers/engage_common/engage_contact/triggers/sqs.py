"""SQS in: FIFO batches with partial failures, backoff through visibility, dead letters with their reason."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..aws.queues import Queues
from ..errors import EngageContactError, InternalError, name_of, policy_of
from ..observability import correlate, count, logger
from .backoff import QueueSettings, backoff_for  # 10 s, 30 s, 60 s, 300 s, then 900 s (by receive count)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


class HeldBack(Exception):
    """A record not tried because an earlier record of its message group failed in this batch."""


class ConcurrentGroupsProcessor(BatchProcessor):
    """Powertools' BatchProcessor, extended to run the records of different message groups concurrently.

    Those of one group run in order, and a failed record holds back the later records of its own group
    only, as a FIFO queue requires (Powertools' SqsFifoPartialProcessor with skip_group_on_error does the
    same one record at a time: a batch's wait would be the sum of its Engage round trips instead of about
    one; how much it saves: `batch100_speedup` in docs/performance.md);
    the response is Powertools' partial batch response.
    """

    def __init__(self, concurrency: int) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.concurrency = max(int(concurrency), 1)

    def process(self) -> list[tuple]:
        groups: dict[str, list[tuple[int, dict]]] = {}
        for index, record in enumerate(self.records):
            group = (record.get("attributes") or {}).get("MessageGroupId") or record["messageId"]
            groups.setdefault(group, []).append((index, record))
        outcomes: dict[int, tuple] = {}  # by the record's place in the batch

        def run_group(members: list[tuple[int, dict]]) -> None:
            failed = False
            for index, record in members:
                if failed:
                    try:
                        raise HeldBack("an earlier message of this group failed")
                    except HeldBack:
                        outcomes[index] = self.failure_handler(SQSRecord(record), sys.exc_info())
                    continue
                outcome = outcomes[index] = self._handle(record)
                failed = outcome[0] == "fail"

        if len(groups) == 1 or self.concurrency == 1:
            for members in groups.values():
                run_group(members)
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(groups))) as pool:
                list(pool.map(run_group, groups.values()))
        return [outcomes[index] for index in range(len(self.records))]

    def _handle(self, record: dict) -> tuple:
        # Our own loop's step, on Powertools' public surface (the handler it was given, and its success and
        # failure handlers), so a Powertools release that reshapes its private record loop cannot break ours.
        data = SQSRecord(record)
        try:
            result = self.handler(record=data)
        except Exception:
            return self.failure_handler(record=data, exception=sys.exc_info())
        return self.success_handler(record=record, result=result)


def process_batch(
    event: dict[str, Any],
    context: Any,
    settings: QueueSettings,
    queues: Queues,
    handle_record: Callable[[SQSRecord], Any],
    on_dead_letter: Callable[[SQSRecord, BaseException], None] | None = None,
) -> PartialItemFailureResponse:
    """Handle each record in order; report what retrying can mend, dead-letter what it cannot."""
    group_delays: dict[str, int] = {}

    def record_handler(record: SQSRecord) -> None:
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
            if isinstance(error, EngageContactError):
                raise
            defect = InternalError()  # the batch utility logs what it is given: never a defect's own text
        raise defect

    # A batch that failed whole is reported like any other, so its records get their backoff too.
    processor = ConcurrentGroupsProcessor(settings.batch_concurrency)
    result = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
    if failed:
        back_off(queues, [r for r in event["Records"] if r["messageId"] in failed], group_delays)
    return result


def _last_receive(settings: QueueSettings, record: SQSRecord) -> bool:
    """The queue's redrive would move it without a reason next time: move it now, with one."""
    limit = settings.max_receive_count
    return limit is not None and _receives(record) >= limit


def _receives(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count or 1)
    except ValueError:
        return 1


def back_off(queues: Queues, records: list[dict[str, Any]], group_delays: dict[str, int]) -> None:
    """Hide failed records, and those held back behind them, for their group's backoff."""
    by_queue: dict[str, list[tuple[str, int]]] = {}
    for raw in records:
        record = SQSRecord(raw)
        delay = group_delays.get(record.attributes.message_group_id or "", backoff_for(_receives(record)))
        by_queue.setdefault(record.event_source_arn, []).append((record.receipt_handle, delay))
    for arn, entries in by_queue.items():
        queues.hide(arn, entries)


def dead_letter(queues: Queues, queue_url: str, record: SQSRecord, error: BaseException) -> None:
    """Move a record that retrying cannot mend to the dead-letter queue at once, with its reason."""
    message = str(error) if policy_of(error).status != 500 else "an unexpected error occurred"
    group = record.attributes.message_group_id or record.message_id
    queues.dead_letter(queue_url, record.body or "", group, record.message_id, name_of(error), message)
    count("MessagesDeadLettered")
    logger.info("record dead-lettered", extra={"messageId": record.message_id, "errorType": name_of(error)})
