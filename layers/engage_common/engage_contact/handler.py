"""The three functions' one handler: tell the trigger by the event's shape, run the command, shape the answer."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import observability
from .aws.clients import API_AWS_RESERVE_SECONDS, AWS_RESERVE_SECONDS
from .container import Container
from .domain.command import Command, Operation, parse_command
from .domain.contacts import command_group
from .domain.json_body import check_size, decode_json
from .engage.retry import API_ATTEMPTS, API_TURN_SECONDS, Deadline
from .errors import ConfigurationError, DependencyUnavailable, EngageContactError, InternalError
from .observability import correlate
from .operations import execute
from .ordering import in_turn
from .triggers import api_gateway
from .triggers.detect import is_api_event, is_sqs_event

if TYPE_CHECKING:
    from .triggers.sqs import SqsRecord

Handler = Callable[[Any, Any], Any]
# The contact workflow's shape (`{"workflowCommand": command}`): the command's result without Engage's contact.
WORKFLOW_SHAPE = "workflowCommand"


class ContactFunction:
    """One function (update, promote or change type) over the three triggers."""

    def __init__(self, operation: Operation, container: Container) -> None:
        self.operation = Operation(operation)
        self.container = container

    def __call__(self, event: Any, context: Any) -> Any:
        try:
            if is_sqs_event(event):
                from .triggers import sqs  # only the SQS path needs it

                with self.batch_contacts(event):
                    return sqs.process_batch(
                        event,
                        self.container.queue_settings,
                        self.container.queues,
                        lambda record: self.on_record(record, context),
                        on_dead_letter=self.on_dead_letter,
                    )
            if is_api_event(event):
                return self.on_request(event, context)
            return self.on_invoke(event, context)
        finally:
            observability.flush()

    @contextlib.contextmanager
    def batch_contacts(self, event: dict[str, Any]) -> Iterator[None]:
        """The record of what Engage confirmed learns a batch's contacts at once (every SQS record has a key)."""
        record = self.container.sent_record()
        contacts = [c for c in map(_contact_id, event.get("Records") or []) if c]
        if record is None or not contacts:
            yield
            return
        record.expect(contacts)
        try:
            yield
        finally:
            record.expect([])

    # --- the one path every trigger takes ------------------------------------------------
    def parse(self, data: Any) -> Command:
        return parse_command(data, self.operation, self.container.settings.catalogue)

    def run(
        self, data: Any, context: Any, trigger: str, fallback_key: str | None = None, queued_at: int | None = None
    ) -> dict[str, Any]:
        """Check the command and run it once per idempotency key (when there is a key and a table)."""
        try:
            command = self.parse(data)
            key = command.idempotency_key or fallback_key
            if key:
                correlate(key)
            guard = self.container.idempotency_guard() if key else None
            if guard is not None:
                self.container.read_engage_key_early()  # while the idempotency record is written
                request = {"operation": self.operation.value, "key": key, "command": data}
                result = guard.run(request, context, lambda: self.execute(command, context, trigger, True, queued_at))
            else:
                result = self.execute(command, context, trigger, bool(key), queued_at)
        except Exception as error:
            observability.failure(self.operation.value, error, trigger)
            raise
        observability.success(self.operation.value, result, trigger)
        return result

    def execute(
        self, command: Command, context: Any, trigger: str = "direct", keyed: bool = False, queued_at: int | None = None
    ) -> dict[str, Any]:
        # privacy on the command path: only queued commands and those from a shop (others build nothing for it)
        shop_customer = command.source_customer
        guard = self.container.erasure_guard() if queued_at is not None or shop_customer is not None else None
        if guard is not None and queued_at is not None and guard.erased_after(command_group(command), queued_at):
            # queued before its person was erased: applied now, it would bring back what the erasure removed (and
            # its result names no one: it is kept as an idempotency record)
            return {"contactId": None, "contact": None, "sent": {}, "droppedEmpty": [], "erased": True}
        # An API caller waits a short while for its turn in the rate budget, and tries each call at most twice
        # (its answer is due within 29 s); queued work as its time allows.
        # (An API request's context already ends at its answer time: api_gateway.AnswerBy.)
        api = trigger == "api"
        reserve = API_AWS_RESERVE_SECONDS if api else AWS_RESERVE_SECONDS
        deadline = Deadline.from_context(
            context, reserve, turn_seconds=API_TURN_SECONDS if api else None, attempts=API_ATTEMPTS if api else None
        )
        # SQS orders a contact's writes by its FIFO group; the API and direct paths hold the contact instead.
        leases = self.container.contact_leases() if trigger != "sqs" else None
        event_times = self.container.event_times() if command.event_time is not None else None
        with in_turn(leases, event_times, command, deadline, self.container.settings.timeout_seconds) as stale:
            if stale:  # a newer event was applied to this contact: Engage is not called
                return {"contactId": command.contact_id, "contact": None, "sent": {}, "droppedEmpty": [], "stale": True}
            # The records of what Engage confirmed are kept by the commands that use the table anyway (a key) and
            # those that ask for it: a plain command without a key builds no boto3 client.
            records = self.container.sent_record() if keyed or command.send_only_changed else None
            result = execute(command, self.container.engage, deadline, records)
        if guard is not None and shop_customer is not None:  # so a shop's id-only erasure finds this person
            guard.remember_origin(shop_customer, command_group(command), command.lookup)
        return result

    # --- triggers --------------------------------------------------------------------------
    def on_invoke(self, event: Any, context: Any) -> dict[str, Any]:
        """Step Functions or the SDK: the event is the command; errors are raised with the contract's names."""
        correlate(getattr(context, "aws_request_id", None))
        data = decode_json(event) if isinstance(event, str | bytes) else event
        try:
            if isinstance(data, dict) and set(data) == {WORKFLOW_SHAPE}:
                # the contact workflow's step: Step Functions keeps a task's whole answer in its history (90
                # days), so Engage's contact (names, addresses) is left out of it
                return {k: v for k, v in self.run(data[WORKFLOW_SHAPE], context, "direct").items() if k != "contact"}
            return self.run(data, context, "direct")
        except EngageContactError:
            raise
        except Exception:  # logged by run(): its type and frames, not its text
            defect = InternalError()
        raise defect  # outside the except block: no chained original, no text of it in the runtime's report

    def on_record(self, record: SqsRecord, context: Any) -> dict[str, Any]:
        # a redelivered message is recognised by its message id when the command names no key
        data = decode_json(record.body or "")
        result = self.run(data, context, "sqs", fallback_key=record.message_id, queued_at=_sent_ms(record))
        # a replay too: a crash after its first success may have come before its count (each row counts once)
        self.count_backfill_row(data, "applied")
        return result

    # --- a backfill row's outcome, counted (the backfill function queued it: intake.BackfillTasks) ----------
    def on_dead_letter(self, record: SqsRecord, error: BaseException | None) -> None:
        try:
            data = decode_json(record.body or "")
        except Exception:  # a body that is no command is no backfill row either
            return
        self.count_backfill_row(data, "dead_lettered")

    def count_backfill_row(self, data: Any, outcome: str) -> None:
        """A backfill row's command applied or dead-lettered: its backfill's counter (known by the key's prefix)."""
        key = data.get("idempotencyKey") if isinstance(data, dict) else None
        if not isinstance(key, str):  # every backfill row's command has one: others import no backfill module
            return
        from .backfill.rows import backfill_row

        where = backfill_row(key)
        counters = self.container.backfill_counters() if where is not None else None
        if where is None or counters is None:
            return
        try:
            getattr(counters, outcome)(*where)
        except Exception as error:
            observability.fallback("BackfillCounterNotWritten", error, backfillCounter=outcome)
            if outcome == "applied":  # retried: its redelivery is a replay, which counts the row (once)
                raise DependencyUnavailable("the backfill's counter could not be written") from None
            # a dead letter has left its queue already: nothing will ask again

    def on_request(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        from .aws.json_protocol import calls_end_by

        context = api_gateway.AnswerBy(context)  # from here on, everything plans within the API's answer time
        with calls_end_by(context.get_remaining_time_in_millis() / 1000):  # and no AWS call outlasts it
            return self.answer(event, context)

    def answer(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """An API request's answer, due by `context`'s end (`api_gateway.AnswerBy`)."""
        request = api_gateway.ApiRequest(event)
        correlate(request.request_id)
        problem = api_gateway.route_problem(request, api_gateway.ROUTES.get(request.path) is self.operation)
        if problem is not None:
            return problem
        try:
            raw = request.raw_body()
            check_size(raw)  # before any HMAC or parsing work
            webhook_id = self.verified_webhook_id(raw, request.headers)
            data = decode_json(raw)
        except Exception as error:
            observability.failure(self.operation.value, error, "api")
            return api_gateway.error_response(error)
        try:
            result = self.run(data, context, "api", fallback_key=webhook_id)
        except Exception as error:  # already logged by run()
            return api_gateway.error_response(error)
        return api_gateway.response(200, result)

    def verified_webhook_id(self, raw: bytes, headers: dict[str, str]) -> str | None:
        """The verified webhook-id; with signing turned off (insecure), the caller's webhook-id as given."""
        settings = self.container.settings
        if not settings.webhook_signing:
            return headers.get("webhook-id") or None
        from .triggers.webhook_signature import verify_webhook, webhook_keys

        if settings.webhook_secret_arn is None:  # Settings.from_env refuses this; Settings built in code may not
            raise ConfigurationError("WEBHOOK_SECRET_ARN is not set (signing is required unless WEBHOOK_SIGNING=off)")
        keys = self.container.secrets.read(settings.webhook_secret_arn, webhook_keys)
        webhook_id = verify_webhook(raw, headers, keys)
        webhook_ids = self.container.webhook_ids()
        if webhook_ids is not None:  # the signature does not cover the route: the id is bound to its first one
            webhook_ids.bind(webhook_id, self.operation.value)
        return webhook_id


def _sent_ms(record: SqsRecord) -> int | None:
    """When the message was queued (SQS's SentTimestamp, ms)."""
    try:
        return int(record.attributes.sent_timestamp)
    except (TypeError, ValueError, KeyError):
        return None


def _contact_id(record: dict[str, Any]) -> str | None:
    """The contactId an SQS record's command names, if it names one (anything else is checked later)."""
    try:
        data = decode_json(record.get("body") or "")
    except Exception:
        return None
    contact = data.get("contactId") if isinstance(data, dict) else None
    return contact if isinstance(contact, str) and contact else None


def make_handler(operation: Operation) -> Handler:
    """Build the function once per container; bad configuration fails here, naming the variable."""
    container = Container.from_env()
    _ = container.engage  # the Engage client at start, as Lambda's init phase is the cheaper place for it
    return ContactFunction(operation, container)
