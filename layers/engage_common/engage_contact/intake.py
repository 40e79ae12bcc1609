"""The intake functions: what the internet (platform webhooks) and the backfill state machine reach.

They verify, map and queue, and nothing else: they never build an Engage client, and their roles
(template.yaml) can read only their signing secrets and write only the queues they fill. The
operation functions (update, promote, change type) apply what they queue. The mapping itself
lives in `ecommerce` and `backfill`; these classes only pick the trigger and shape the answer.
"""

from __future__ import annotations

from typing import Any

from . import observability
from .container import Container
from .domain.json_body import decode_json
from .errors import EngageContactError, InternalError, InvalidRequest
from .observability import correlate
from .triggers import api_gateway
from .triggers.detect import is_api_event, is_shopify_eventbridge_event

# The backfill state machine's tasks, one field each: field -> `backfill.batch.Backfill` method
BACKFILL_SHAPES = {"backfill": "queue", "backfillCheck": "check", "backfillReport": "report"}


class WebhookIntake:
    """POST /webhooks/shopify and /webhooks/woocommerce: the platform's signature checked, mapped, queued; and
    Shopify's deliveries through an EventBridge partner event source, mapped and queued the same way."""

    def __init__(self, container: Container) -> None:
        self.container = container
        container.check_shops()  # a bad shops document stops the function at start, naming the shop and field

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        try:
            if is_shopify_eventbridge_event(event):
                correlate(getattr(context, "aws_request_id", None))
                return self.container.platform_route().on_eventbridge(event)
            if not is_api_event(event):
                raise InvalidRequest("the webhook intake takes API Gateway requests and EventBridge events only")
            from .aws.json_protocol import calls_end_by

            request = api_gateway.ApiRequest(event)
            correlate(request.request_id)
            with calls_end_by(api_gateway.ANSWER_SECONDS):  # no AWS call outlasts API Gateway's answer time
                return self.container.platform_route()(request)
        finally:
            observability.flush()


class BackfillTasks:
    """The backfill state machine's tasks: `{"backfillCheck": …}`, `{"backfill": …}` (a batch), `{"backfillReport": …}`.

    Errors are raised with the contract's names (Step Functions reads them); a defect of ours as
    `InternalError`, without its text.
    """

    def __init__(self, container: Container) -> None:
        self.container = container

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        correlate(getattr(context, "aws_request_id", None))
        try:
            return self.run(event)
        except EngageContactError:
            raise
        except Exception:  # logged by run(): its type and frames, not its text
            defect = InternalError()
        finally:
            observability.flush()
        raise defect  # outside the except block: no chained original, no text of it in the runtime's report

    def run(self, event: Any) -> dict[str, Any]:
        data = decode_json(event) if isinstance(event, str | bytes) else event
        shape = next((k for k in BACKFILL_SHAPES if isinstance(data, dict) and set(data) == {k}), None)
        try:
            if shape is None:
                raise InvalidRequest(f"a backfill task is an object with one of {', '.join(BACKFILL_SHAPES)}")
            result = getattr(self.container.backfill(), BACKFILL_SHAPES[shape])(data[shape])
        except Exception as error:
            observability.failure("backfill", error, shape or "direct")
            raise
        observability.logger.info(shape, extra={k: v for k, v in result.items() if k != "invalidRows"})
        return result


def make_webhook_intake() -> WebhookIntake:
    """Built once per container; bad configuration fails here, naming the variable."""
    return WebhookIntake(Container.from_env())


def make_backfill_tasks() -> BackfillTasks:
    """Built once per container; bad configuration fails here, naming the variable."""
    return BackfillTasks(Container.from_env())
