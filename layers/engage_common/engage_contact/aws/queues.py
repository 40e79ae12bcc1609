"""The SQS queues: commands put on a FIFO queue, dead letters with their reason, visibility for backoff."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..errors import DependencyUnavailable
from ..observability import fallback, logger

ERROR_MESSAGE_MAX = 1000


class Queues:
    """SQS through the container's client (built on first use)."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client
        self._urls: dict[str, str] = {}

    @property
    def sqs(self) -> Any:
        return self._client()

    def send_command(self, queue_url: str | None, command: dict[str, Any], group: str, deduplication_id: str) -> None:
        """Put a command on a FIFO queue, its contact as the message group."""
        if not queue_url:
            raise DependencyUnavailable("the queue's URL is not set: the command has nowhere to go")
        try:
            self.sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=json.dumps(command, allow_nan=False),
                MessageGroupId=group,
                MessageDeduplicationId=deduplication_id[:128],
            )
        except Exception as exc:
            raise DependencyUnavailable("the queue cannot be reached") from exc

    def send_body(self, queue_url: str, body: dict[str, Any]) -> None:
        """Put one message on a standard queue (the backfill's chunks: its writer copes with a second delivery)."""
        try:
            self.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body, allow_nan=False))
        except Exception as exc:
            raise DependencyUnavailable("the queue cannot be reached") from exc

    def send_commands(self, queue_url: str | None, commands: list[tuple[dict[str, Any], str, str]]) -> None:
        """Put (command, group, deduplication id) on a FIFO queue ten at a time, in order; any refused: raised."""
        if not queue_url:
            raise DependencyUnavailable("the queue's URL is not set: the commands have nowhere to go")
        for start in range(0, len(commands), 10):
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(c, allow_nan=False),
                    "MessageGroupId": group,
                    "MessageDeduplicationId": dedup[:128],
                }
                for i, (c, group, dedup) in enumerate(commands[start : start + 10])
            ]
            try:
                answer = self.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except Exception as exc:
                raise DependencyUnavailable("the queue cannot be reached") from exc
            if answer.get("Failed"):
                raise DependencyUnavailable(f"the queue refused {len(answer['Failed'])} command(s) of a batch")

    def dead_letter(
        self, queue_url: str, body: str, group: str | None, message_id: str, error_type: str, message: str
    ) -> None:
        """A message that retrying cannot mend, with its reason; the message id is the deduplication id.

        `group` None: a standard queue's dead letters (the backfill's), which take no group or deduplication id.
        """
        fifo = {"MessageGroupId": group, "MessageDeduplicationId": message_id} if group is not None else {}
        self.sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            **fifo,
            MessageAttributes={
                "errorType": {"DataType": "String", "StringValue": error_type},
                "sourceMessageId": {"DataType": "String", "StringValue": message_id},  # the id the sender saw
                "errorMessage": {"DataType": "String", "StringValue": message[:ERROR_MESSAGE_MAX] or "-"},
            },
        )

    def hide(self, arn: str, entries: list[tuple[str, int]]) -> None:
        """Make messages (receipt handle, seconds) invisible for their backoff; a failure is logged, not raised."""
        try:
            url = self.queue_url(arn)
            for start in range(0, len(entries), 10):
                batch = [
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": delay}
                    for i, (handle, delay) in enumerate(entries[start : start + 10])
                ]
                answer = self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=batch)
                for failure in answer.get("Failed", []):
                    logger.warning("visibility not changed", extra={"code": failure.get("Code")})
        except Exception as exc:  # the message is still reported failed: retried at the queue's own visibility
            fallback("BackoffNotSet", exc)

    def queue_url(self, arn: str) -> str:
        """The URL of the queue an event source ARN names (arn:aws:sqs:region:account:name), looked up once."""
        if arn not in self._urls:
            *_, account, name = arn.split(":")
            self._urls[arn] = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._urls[arn]
