"""The container's one DynamoDB client for the idempotency table, in the light family (`aws.json_protocol`).

Every store in the table uses it: the rate budget's lease, the idempotency record, event times, contact
leases, what Engage last confirmed, the backfill's counters and bulk chunks, the erase function's records.
Requests and answers are in DynamoDB's own JSON, as boto3's client takes and gives them; errors are raised
as botocore's `ClientError`, with AWS's code and the modeled fields of the error (the `Item` a failed
condition returns, a cancelled transaction's `CancellationReasons`), read by `aws.table`.
"""

from __future__ import annotations

from typing import Any

from .json_protocol import JsonService, LightClient

DYNAMODB = JsonService(
    name="dynamodb",
    api_version="2012-08-10",
    target_prefix="DynamoDB_20120810",
    json_version="1.0",
    endpoint_setting="AWS_ENDPOINT_URL_DYNAMODB",
    title="DynamoDB",
)


class LightDynamoDb(LightClient):
    """The item calls the stores make, keyword arguments as boto3's client takes them."""

    service = DYNAMODB

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

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        return self.call("TransactWriteItems", params)

    def scan(self, **params: Any) -> dict[str, Any]:
        return self.call("Scan", params)
