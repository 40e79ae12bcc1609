"""The DynamoDB call every container makes on its first command (the rate budget's lease), without a boto3 client.

With a shared rate budget every command, keyed or not, writes to the table before it calls
Engage; a boto3 client for that one UpdateItem would add about 180 ms to every cold start
(botocore's endpoint catalogue and DynamoDB's model). Errors are raised as botocore's
`ClientError`, with AWS's code, so callers read them as they would a boto3 client's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import DependencyUnavailable
from .json_protocol import AwsCallFailed, JsonProtocolClient, JsonService

DYNAMODB = JsonService(
    name="dynamodb", api_version="2012-08-10", target_prefix="DynamoDB_20120810", json_version="1.0",
    endpoint_setting="AWS_ENDPOINT_URL_DYNAMODB", title="DynamoDB",
)  # fmt: skip


class LightDynamoDb:
    """UpdateItem only (the request and answer in DynamoDB's own JSON, as boto3's client takes and gives them)."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = JsonProtocolClient(DYNAMODB, sleep)

    def warm(self) -> None:
        """Ready for a first call that is only its round trip (a lease's turns are timed from before it)."""
        self.client.warm()

    def update_item(self, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return self.client.call("UpdateItem", params)
        except AwsCallFailed as exc:
            error = {"Error": {"Code": exc.code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": exc.status}}
        except DependencyUnavailable:  # no endpoint or no credentials
            error = {"Error": {"Code": "DependencyUnavailable", "Message": ""}, "ResponseMetadata": {}}
        raise ClientError(error, "UpdateItem")
