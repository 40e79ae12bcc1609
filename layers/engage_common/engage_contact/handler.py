"""The three functions' one handler: tell the trigger by the event's shape, run the command, shape the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import api_gateway, sqs
from .client import Deadline
from .command import Command, Operation, decode_json, parse_command
from .errors import EngageContactError, name_of, policy_of
from .operations import execute
from .runtime import Runtime, logger

Handler = Callable[[Any, Any], Any]


class ContactFunction:
    """One function (update, promote or change type) over the three triggers."""

    def __init__(self, operation: Operation, runtime: Runtime) -> None:
        self.operation = Operation(operation)
        self.runtime = runtime

    def __call__(self, event: Any, context: Any) -> Any:
        if sqs.is_sqs_event(event):
            return sqs.process_batch(event, context, self.runtime, lambda record: self.on_record(record, context))
        if api_gateway.is_api_event(event):
            return self.on_request(event, context)
        return self.on_invoke(event, context)

    # --- the one path every trigger takes ------------------------------------------------
    def parse(self, data: Any) -> Command:
        return parse_command(data, self.operation, self.runtime.settings.catalogue)

    def run(self, command: Command, context: Any, trigger: str) -> dict[str, Any]:
        result = execute(command, self.runtime.engage, Deadline.from_context(context))
        logger.info(
            "contact changed",
            extra={"operation": self.operation.value, "trigger": trigger, "contactId": result["contactId"],
                   "sent": sorted(result["sent"]), "droppedEmpty": result["droppedEmpty"]},
        )  # fmt: skip
        return result

    # --- triggers --------------------------------------------------------------------------
    def on_invoke(self, event: Any, context: Any) -> dict[str, Any]:
        """Step Functions or the SDK: the event is the command; errors are raised with the contract's names."""
        data = decode_json(event) if isinstance(event, str | bytes) else event
        try:
            return self.run(self.parse(data), context, "direct")
        except EngageContactError as error:
            logger.warning("command failed", extra={"operation": self.operation.value, "errorType": error.name})
            raise

    def on_record(self, record: SQSRecord, context: Any) -> dict[str, Any]:
        return self.run(self.parse(decode_json(record.body or "")), context, "sqs")

    def on_request(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        request = api_gateway.ApiRequest(event)
        problem = api_gateway.route_problem(request, self.operation)
        if problem is not None:
            return problem
        try:
            result = self.run(self.parse(request.json_body()), context, "api")
        except Exception as error:
            if policy_of(error).status >= 500 and not isinstance(error, EngageContactError):
                logger.exception("unexpected failure", extra={"operation": self.operation.value})
            else:
                logger.warning("request failed", extra={"operation": self.operation.value, "errorType": name_of(error)})
            return api_gateway.error_response(error)
        return api_gateway.response(200, result)


def make_handler(operation: Operation) -> Handler:
    """Build the function once per container; bad configuration fails here, naming the variable."""
    return ContactFunction(operation, Runtime.from_env())
