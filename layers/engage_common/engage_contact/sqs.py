"""SQS in: FIFO batches with partial failures, backoff through visibility, dead letters with their reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from .errors import name_of, policy_of
from .observability import count, logger
from .runtime import Runtime

# Background work backs off about 10 s, 30 s, 60 s, then 300 s (by receive count).
BACKOFF_SECONDS = (10, 30, 60, 300)
ERROR_MESSAGE_MAX = 1000


def is_sqs_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        bool(records)
        and isinstance(records, list)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def backoff_for(receive_count: int) -> int:
    return BACKOFF_SECONDS[min(max(receive_count, 1), len(BACKOFF_SECONDS)) - 1]


def process_batch(
    event: dict[str, Any], context: Any, runtime: Runtime, handle_record: Callable[[SQSRecord], Any]
) -> dict[str, Any]:
    """Handle each record in order; report what retrying can mend, dead-letter what it cannot."""
    group_delays: dict[str, int] = {}

    def record_handler(record: SQSRecord) -> None:
        logger.set_correlation_id(record.message_id)
        try:
            handle_record(record)
        except Exception as error:
            if runtime.settings.dead_letter_queue_url and (
                policy_of(error).dead_letter_at_once or _last_receive(runtime, record)
            ):
                dead_letter(runtime, record, error)
                return  # it left the source queue with its reason: a success for the batch
            group_delays.setdefault(record.attributes.message_group_id or "", backoff_for(_receives(record)))
            logger.warning("record failed; it will be retried", extra={
                "messageId": record.message_id, "errorType": name_of(error)})  # fmt: skip
            raise

    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # A batch that failed whole is reported like any other, so its records get their backoff too.
    processor.raise_on_entire_batch_failure = False
    result = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
    if failed:
        back_off(runtime, [r for r in event["Records"] if r["messageId"] in failed], group_delays)
    return result


def _last_receive(runtime: Runtime, record: SQSRecord) -> bool:
    """The queue's redrive would move it without a reason next time: move it now, with one."""
    limit = runtime.settings.max_receive_count
    return limit is not None and _receives(record) >= limit


def _receives(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count or 1)
    except ValueError:
        return 1


def back_off(runtime: Runtime, records: list[dict[str, Any]], group_delays: dict[str, int]) -> None:
    """Hide failed records, and those held back behind them, for their group's backoff."""
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for raw in records:
        record = SQSRecord(raw)
        delay = group_delays.get(record.attributes.message_group_id or "", backoff_for(_receives(record)))
        by_queue.setdefault(record.event_source_arn, []).append(
            {"Id": str(len(by_queue.get(record.event_source_arn, []))), "ReceiptHandle": record.receipt_handle,
             "VisibilityTimeout": delay})  # fmt: skip
    for arn, entries in by_queue.items():
        try:
            for start in range(0, len(entries), 10):
                answer = runtime.sqs.change_message_visibility_batch(
                    QueueUrl=runtime.queue_url(arn), Entries=entries[start : start + 10]
                )
                for failure in answer.get("Failed", []):
                    logger.warning("visibility not changed", extra={"code": failure.get("Code")})
        except Exception as exc:  # the message is still reported failed: retried at the queue's own visibility
            logger.warning("could not set the backoff visibility", extra={"errorType": type(exc).__name__})


def dead_letter(runtime: Runtime, record: SQSRecord, error: BaseException) -> None:
    """Move a record that retrying cannot mend to the dead-letter queue at once, with its reason."""
    message = str(error) if policy_of(error).status != 500 else "an unexpected error occurred"
    runtime.sqs.send_message(
        QueueUrl=runtime.settings.dead_letter_queue_url,
        MessageBody=record.body or "",
        MessageGroupId=record.attributes.message_group_id or record.message_id,
        MessageDeduplicationId=record.message_id,
        MessageAttributes={
            "errorType": {"DataType": "String", "StringValue": name_of(error)},
            "errorMessage": {"DataType": "String", "StringValue": message[:ERROR_MESSAGE_MAX] or "-"},
        },
    )
    count("MessagesDeadLettered")
    logger.info("record dead-lettered", extra={"messageId": record.message_id, "errorType": name_of(error)})
