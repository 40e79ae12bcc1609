"""The three functions' one handler: tell the trigger by the event's shape, run the command, shape the answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import api_gateway, observability
from .client import Deadline
from .command import Command, Operation, check_size, decode_json, parse_command
from .observability import correlate
from .operations import execute
from .runtime import Runtime
from .trigger import is_api_event, is_sqs_event

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from .idempotency import IdempotencyGuard

Handler = Callable[[Any, Any], Any]


class ContactFunction:
    """One function (update, promote or change type) over the three triggers."""

    def __init__(self, operation: Operation, runtime: Runtime) -> None:
        self.operation = Operation(operation)
        self.runtime = runtime
        self._guard: IdempotencyGuard | None = None
        self._guard_lock = threading.Lock()

    @property
    def guard(self) -> IdempotencyGuard | None:
        """Built on the first command that has a key: a cold start without one pays nothing for it."""
        with self._guard_lock:  # a batch's records may ask at once
            if self._guard is None and self.runtime.settings.idempotency_table:
                from .idempotency import IdempotencyGuard

                table = self.runtime.settings.idempotency_table
                self._guard = IdempotencyGuard(table, self.runtime.aws_client("dynamodb"))
            return self._guard

    def __call__(self, event: Any, context: Any) -> Any:
        try:
            if is_sqs_event(event):
                from . import sqs  # Powertools' batch utility: only the SQS path needs it

                return sqs.process_batch(event, context, self.runtime, lambda record: self.on_record(record, context))
            if is_api_event(event):
                return self.on_request(event, context)
            return self.on_invoke(event, context)
        finally:
            observability.flush()

    # --- the one path every trigger takes ------------------------------------------------
    def parse(self, data: Any) -> Command:
        return parse_command(data, self.operation, self.runtime.settings.catalogue)

    def run(self, data: Any, context: Any, trigger: str, fallback_key: str | None = None) -> dict[str, Any]:
        """Check the command and run it once per idempotency key (when there is a key and a table)."""
        try:
            command = self.parse(data)
            key = command.idempotency_key or fallback_key
            if key:
                correlate(key)
            if key and self.guard is not None:
                request = {"operation": self.operation.value, "key": key, "command": data}
                result = self.guard.run(request, context, lambda: self.execute(command, context))
            else:
                result = self.execute(command, context)
        except Exception as error:
            observability.failure(self.operation.value, error, trigger)
            raise
        observability.success(self.operation.value, result, trigger)
        return result

    def execute(self, command: Command, context: Any) -> dict[str, Any]:
        return execute(command, self.runtime.engage, Deadline.from_context(context))

    # --- triggers --------------------------------------------------------------------------
    def on_invoke(self, event: Any, context: Any) -> dict[str, Any]:
        """Step Functions or the SDK: the event is the command; errors are raised with the contract's names."""
        correlate(getattr(context, "aws_request_id", None))
        data = decode_json(event) if isinstance(event, str | bytes) else event
        return self.run(data, context, "direct")

    def on_record(self, record: SQSRecord, context: Any) -> dict[str, Any]:
        # a redelivered message is recognised by its message id when the command names no key
        return self.run(decode_json(record.body or ""), context, "sqs", fallback_key=record.message_id)

    def on_request(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        request = api_gateway.ApiRequest(event)
        correlate(request.request_id)
        if self.operation is Operation.UPDATE and request.path.startswith("/webhooks/"):
            from .ecommerce_api import on_platform_request

            return on_platform_request(self.runtime, request)
        problem = api_gateway.route_problem(request, api_gateway.ROUTES.get(request.path) is self.operation)
        if problem is not None:
            return problem
        try:
            raw = request.raw_body()
            check_size(raw)  # before any HMAC or parsing work
            webhook_id = self.verify(raw, request.headers)
            data = decode_json(raw)
        except Exception as error:
            observability.failure(self.operation.value, error, "api")
            return api_gateway.error_response(error)
        try:
            result = self.run(data, context, "api", fallback_key=webhook_id)
        except Exception as error:  # already logged by run()
            return api_gateway.error_response(error)
        return api_gateway.response(200, result)

    def verify(self, raw: bytes, headers: dict[str, str]) -> str | None:
        """The verified webhook-id; with signing turned off (insecure), the caller's webhook-id as given."""
        if not self.runtime.settings.webhook_signing:
            return headers.get("webhook-id") or None
        from .webhooks import verify

        settings = self.runtime.settings
        return verify(raw, headers, self.runtime.signing_secrets(settings.webhook_secret_arn, "webhook secret"))


def make_handler(operation: Operation) -> Handler:
    """Build the function once per container; bad configuration fails here, naming the variable."""
    return ContactFunction(operation, Runtime.from_env())
