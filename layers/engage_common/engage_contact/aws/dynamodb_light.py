"""The container's DynamoDB client for the idempotency table: its few item calls, without a boto3 client.

Every command that uses the table (the rate budget's lease, and with a key the idempotency
record and the record of what Engage confirmed) would otherwise build boto3's DynamoDB client:
`import boto3` and the client would make every such cold start load botocore's endpoint
catalogue, DynamoDB's model and boto3's S3 transfer manager, more than the rest of the layer's
imports together (how much: `cold_start_keyed_vs_client_ratio` in docs/performance.md). Requests and answers are in
DynamoDB's own JSON, as boto3's client takes and gives them; errors are raised as botocore's
`ClientError`, with AWS's code and the modeled fields of the error (the `Item` a failed condition
returns), so callers read them as they would a boto3 client's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import DependencyUnavailable
from .json_protocol import AwsCallFailed, JsonProtocolClient, JsonService

DYNAMODB = JsonService(
    name="dynamodb",
    api_version="2012-08-10",
    target_prefix="DynamoDB_20120810",
    json_version="1.0",
    endpoint_setting="AWS_ENDPOINT_URL_DYNAMODB",
    title="DynamoDB",
)


class LightDynamoDb:
    """GetItem, BatchGetItem, PutItem, UpdateItem and DeleteItem, keyword arguments as boto3's client takes them."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = JsonProtocolClient(DYNAMODB, sleep)

    def warm(self) -> None:
        """Ready for a first call that is only its round trip (a lease's turns are timed from before it)."""
        self.client.warm()

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self.call("GetItem", params)

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        return self.call("BatchGetItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self.call("PutItem", params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        return self.call("UpdateItem", params)

    def delete_item(self, **params: Any) -> dict[str, Any]:
        return self.call("DeleteItem", params)

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return self.client.call(operation, params)
        except AwsCallFailed as exc:
            modeled = (
                {k: v for k, v in exc.body.items() if k not in ("__type", "message", "Message")}
                if isinstance(exc.body, dict)
                else {}
            )
            error = {
                "Error": {"Code": exc.code, "Message": ""},
                "ResponseMetadata": {"HTTPStatusCode": exc.status},
                **modeled,
            }
        except DependencyUnavailable:  # no endpoint or no credentials
            error = {"Error": {"Code": "DependencyUnavailable", "Message": ""}, "ResponseMetadata": {}}
        raise ClientError(error, operation)
