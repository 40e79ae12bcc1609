"""The container's one SQS client, in the light family (`aws.json_protocol`): SQS speaks AWS's JSON 1.0 protocol.

What the functions send: a command on a FIFO queue (the webhook intake, a promotion, a privacy request), a
backfill's chunks and rows, a dead letter with its reason, a backoff's visibility; and a queue's URL from
its ARN. Keyword arguments and answers as boto3's client takes and gives them (the IAM actions are the
same: sqs:SendMessage covers SendMessageBatch, sqs:ChangeMessageVisibility its batch).
"""

from __future__ import annotations

from typing import Any

from .json_protocol import JsonService, LightClient

SQS = JsonService(
    name="sqs",
    api_version="2012-11-05",
    target_prefix="AmazonSQS",
    json_version="1.0",
    endpoint_setting="AWS_ENDPOINT_URL_SQS",
    title="SQS",
)


class LightSqs(LightClient):
    """SendMessage, SendMessageBatch, ChangeMessageVisibilityBatch and GetQueueUrl."""

    service = SQS

    def send_message(self, **params: Any) -> dict[str, Any]:
        return self.call("SendMessage", params)

    def send_message_batch(self, **params: Any) -> dict[str, Any]:
        return self.call("SendMessageBatch", params)

    def change_message_visibility_batch(self, **params: Any) -> dict[str, Any]:
        return self.call("ChangeMessageVisibilityBatch", params)

    def get_queue_url(self, **params: Any) -> dict[str, Any]:
        return self.call("GetQueueUrl", params)
