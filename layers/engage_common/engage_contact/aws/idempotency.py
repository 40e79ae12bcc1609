"""Idempotency through Powertools and the DynamoDB table: a key seen before is answered from its first result.

The key is the command's `idempotencyKey`, else the API's `webhook-id` (or a
platform's delivery id), else, for SQS, the message id. A command with none of
these is always applied: deduplicating by content would drop a legitimate A → B → A.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import DependencyUnavailable, IdempotencyConflict, RequestInProgress

EXPIRES_AFTER_SECONDS = 24 * 60 * 60
# What a replay answers from; Engage's contact is left out: its names and addresses need not sit in the table.
REPLAY_FIELDS = frozenset(
    {"contactId", "sent", "droppedEmpty", "droppedUnchanged", "alreadyMember", "created", "unchanged", "stale"}
)


class IdempotencyGuard:
    """Runs a command once per key within the expiry; the same key with another command is a conflict."""

    def __init__(self, table_name: str, client: Any) -> None:
        """`client`: the container's DynamoDB client."""
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        self.config = IdempotencyConfig(
            event_key_jmespath="[operation, key]",
            payload_validation_jmespath="command",
            expires_after_seconds=EXPIRES_AFTER_SECONDS,
        )
        store = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        self._run = idempotent_function(data_keyword_argument="request", persistence_store=store, config=self.config)(
            _run_work
        )

    def run(self, request: dict[str, Any], context: Any, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """`work()`'s result, once per `request` (operation, key, and the command as received).

        The record keeps what a replay needs (REPLAY_FIELDS), never Engage's contact (personal data):
        a replay answers `"contact": null, "replayed": true`.
        """
        first: list[dict[str, Any]] = []

        def work_and_keep() -> dict[str, Any]:
            result = work()
            first.append(result)
            return {k: v for k, v in result.items() if k in REPLAY_FIELDS}

        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self.config.register_lambda_context(context)
        try:
            stored = self._run(request=request, work=work_and_keep)
        except IdempotencyValidationError:
            raise IdempotencyConflict(
                "this idempotency key was used before with a different command", {"idempotencyKey": request["key"]}
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise RequestInProgress("the same command is being handled right now; retry shortly") from None
        except IdempotencyPersistenceLayerError as exc:
            raise DependencyUnavailable("the idempotency table cannot be reached") from exc
        return first[0] if first else {**stored, "contact": None, "replayed": True}


def _run_work(request: dict[str, Any], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return work()
