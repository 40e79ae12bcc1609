"""A conditional write (or transaction) to the idempotency table, read the one way every store here needs it.

The one place DynamoDB's refusals are told apart: a condition that did not hold
(`ConditionalCheckFailedException`, or a transaction cancelled for its first item's condition) is an answer;
anything else (throttled past its retry, unreachable, out of time) is DependencyUnavailable, AWS's code kept
as its cause. Works alike with the light client and a boto3 one (both raise botocore's `ClientError`).
"""

from __future__ import annotations

from typing import Any

from ..errors import DependencyUnavailable

UNREACHABLE = "the idempotency table cannot be reached"


def update_if(client: Any, **params: Any) -> tuple[bool, dict[str, Any]]:
    """UpdateItem with a ConditionExpression: see `write_if`."""
    return write_if(client.update_item, **params)


def write_if(write: Any, **params: Any) -> tuple[bool, dict[str, Any]]:
    """A conditional write (a client's `update_item` or `put_item`): (True, DynamoDB's answer) when written,
    (False, the item DynamoDB returned on the failed check, {} unless asked for) when the condition did not hold.

    DependencyUnavailable (AWS's code kept as its cause) when the table cannot be reached.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return True, write(**params)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False, exc.response.get("Item") or {}
        raise DependencyUnavailable(UNREACHABLE) from exc
    except BotoCoreError as exc:
        raise DependencyUnavailable(UNREACHABLE) from exc


def transact_if(client: Any, items: list[dict[str, Any]]) -> bool:
    """TransactWriteItems whose first item carries the condition: True when written, False when that condition did
    not hold (the transaction was done before); DependencyUnavailable for any other refusal or failure."""
    return transact(client, items) is None


def transact(client: Any, items: list[dict[str, Any]]) -> int | None:
    """TransactWriteItems: None when written, else the index of the first item whose condition did not hold
    (nothing was written); DependencyUnavailable for any other refusal or failure."""
    from botocore.exceptions import ClientError

    try:
        client.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            failed = [i for i, code in enumerate(reasons) if code == "ConditionalCheckFailed"]
            if failed and all(code in ("ConditionalCheckFailed", "None", None) for code in reasons):
                return failed[0]
        raise DependencyUnavailable(UNREACHABLE) from exc
    except Exception as exc:
        raise DependencyUnavailable(UNREACHABLE) from exc
    return None
