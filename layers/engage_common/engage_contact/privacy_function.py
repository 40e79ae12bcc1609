"""The erase function: privacy commands (erase, data-request, erase-shop) from SQS or a direct invocation
(Step Functions, SDK), run once per idempotency key, audited; the same answers and error names as the others."""

from __future__ import annotations

from typing import Any

from . import observability
from .aws.clients import AWS_RESERVE_SECONDS
from .container import Container
from .domain.digest_key import subkey
from .domain.json_body import decode_json
from .engage.retry import Deadline
from .errors import EngageContactError, InternalError
from .observability import correlate
from .privacy.audit import AuditTrail
from .privacy.command import parse_privacy_command
from .privacy.records import PrivacyRecords
from .privacy.work import Privacy
from .triggers.detect import is_sqs_event

OPERATION = "erase"


class PrivacyFunction:
    def __init__(self, container: Container, privacy: Privacy | None = None) -> None:
        self.container = container
        self.privacy = privacy or build_privacy(container)

    def __call__(self, event: Any, context: Any) -> Any:
        try:
            if is_sqs_event(event):
                from .triggers import sqs

                return sqs.process_batch(
                    event,
                    self.container.queue_settings,
                    self.container.queues,
                    lambda record: self.run(decode_json(record.body or ""), context, "sqs", record.message_id),
                )
            correlate(getattr(context, "aws_request_id", None))
            data = decode_json(event) if isinstance(event, str | bytes) else event
            try:
                return self.run(data, context, "direct")
            except EngageContactError:
                raise
            except Exception:
                defect = InternalError()
            raise defect
        finally:
            observability.flush()

    def run(self, data: Any, context: Any, trigger: str, fallback_key: str | None = None) -> dict[str, Any]:
        """Check the command and run it once per idempotency key (a replayed request answers the first result)."""
        try:
            command = parse_privacy_command(data)
            key = command.idempotency_key or fallback_key
            deadline = Deadline.from_context(context, AWS_RESERVE_SECONDS)
            guard = self.container.idempotency_guard() if key else None
            if guard is not None:
                request = {"operation": OPERATION, "key": key, "command": data}
                result = guard.run(request, context, lambda: self.privacy.handle(command, deadline))
            else:
                result = self.privacy.handle(command, deadline)
        except Exception as error:
            observability.failure(OPERATION, error, trigger)
            raise
        observability.logger.info(
            "privacy request handled",
            extra={
                "request": command.request,
                "trigger": trigger,
                "replayed": bool(result.get("replayed")),
                **{k: v for k, v in result.items() if k in ("erasure", "engage", "recordsErased", "items")},
            },
        )
        return result


def build_privacy(container: Container) -> Privacy:
    settings = container.settings
    if not settings.idempotency_table:
        from .errors import ConfigurationError

        raise ConfigurationError("IDEMPOTENCY_TABLE is not set: the erase function has no records to erase")
    dynamodb = container.dynamodb()
    audit = None
    if settings.privacy.audit_table:
        audit = AuditTrail(settings.privacy.audit_table, dynamodb, settings.privacy.audit_retention_days)
    s3 = (lambda: container.aws("s3")) if settings.privacy.export_bucket else None  # S3 alone: a boto3 client
    return Privacy(
        settings.privacy,
        PrivacyRecords(settings.idempotency_table, dynamodb),
        audit,
        container.engage,
        lambda: subkey("audit subjects"),  # the deployment's digest key: an Engage key rotation keeps subjects
        s3,
    )


def make_privacy_handler() -> PrivacyFunction:
    """Build the function once per container; bad configuration fails here, naming the variable."""
    return PrivacyFunction(Container.from_env())
