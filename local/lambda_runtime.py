"""What AWS Lambda does around a handler, played locally: events, context, and SQS event source mapping.

Used by the tests and the local stack; never deployed.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import trace

_CARRYING = threading.Lock()


@dataclass
class LocalContext:
    """The parts of Lambda's context object the functions read."""

    function_name: str = "local-function"
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 256
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-north-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000), 0)


def carry_context_into_threads() -> None:
    """A task handed to a thread pool runs in a copy of the submitting thread's context (its log keys among
    them), as `asyncio` does. Lambda never needs it: there each function has its process and its logger."""
    with _CARRYING:
        if getattr(ThreadPoolExecutor.submit, "carries_context", False):
            return
        submit = ThreadPoolExecutor.submit

        def carrying(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

        carrying.carries_context = True  # type: ignore[attr-defined]  # our mark on the function: patched once
        ThreadPoolExecutor.submit = carrying  # type: ignore[method-assign,assignment]  # the standard library patched


_INVOCATION_METRICS: contextvars.ContextVar[Any] = contextvars.ContextVar("invocation_metrics", default=None)
_ROUTING = threading.Lock()


class _MetricsOfTheInvocation:
    """Stands in for the layer's one `metrics`: each use goes to the metrics of the container whose invocation runs
    in this context (`as_service`), and to the layer's own outside any."""

    def __init__(self, own: Any) -> None:
        self.own = own

    def __getattr__(self, name: str) -> Any:
        return getattr(_INVOCATION_METRICS.get() or self.own, name)


def container_metrics(service: str | None) -> Any:
    """A container's own Powertools Metrics, as each deployed process has: its own metric set and dimensions, its
    function's service (the layer's Metrics share one set per process, named after the first function loaded)."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
    from engage_contact import observability

    class OwnMetrics(Metrics):
        def __init__(self) -> None:
            provider = AmazonCloudWatchEMFProvider(namespace=observability.metrics.namespace, service=service)
            super().__init__(provider=provider)
            self.metric_set, self.dimension_set = provider.metric_set, provider.dimension_set
            self.metadata_set, self.default_dimensions = provider.metadata_set, provider.default_dimensions

    return OwnMetrics()


def _route_metrics() -> None:
    """The layer's `metrics` answers for the invocation running (once per process)."""
    from engage_contact import observability

    with _ROUTING:
        if not isinstance(observability.metrics, _MetricsOfTheInvocation):
            observability.metrics = _MetricsOfTheInvocation(observability.metrics)  # type: ignore[assignment]  # stands in for Metrics


@contextlib.contextmanager
def as_service(name: str | None, metrics: Any = None) -> Iterator[None]:
    """One invocation's log lines under its function's service name (POWERTOOLS_SERVICE_NAME, as the template
    gives it), and its metrics in its container's own set (`container_metrics`), published under that name.
    Deployed, each function has a process, a logger and metrics of its own; locally one process holds them all,
    and the layer's one logger and one metric set were named after the first function loaded: without this,
    promote and change-type logged and counted as update-contact, and one container's flush published what
    another had counted meanwhile."""
    if not name:
        yield
        return
    from engage_contact.observability import logger

    carry_context_into_threads()  # the threads a batch's records run in log and count under the same name
    logger.thread_safe_append_keys(service=name)
    routed = None
    if metrics is not None:
        _route_metrics()
        routed = _INVOCATION_METRICS.set(metrics)
    try:
        yield
    finally:
        logger.thread_safe_remove_keys(["service"])
        if routed is not None:
            _INVOCATION_METRICS.reset(routed)


def api_event(
    method: str,
    path: str,
    body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    base64_body: bool = False,
    stage: str = "Prod",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The REST API proxy event (payload v1) API Gateway would send for this request."""
    text: str | None
    if isinstance(body, bytes):
        text = base64.b64encode(body).decode() if base64_body else body.decode("utf-8", "replace")
    elif body is not None and base64_body:
        text = base64.b64encode(body.encode()).decode()
    else:
        text = body
    headers = dict(headers or {})
    request_id = str(uuid.uuid4())
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "accountId": "123456789012",
            "apiId": "local",
        },
        "body": text,
        "isBase64Encoded": base64_body,
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for messages as ReceiveMessage returned them (with all attributes)."""
    records = []
    for message in messages:
        attributes = message.get("MessageAttributes") or {}
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes") or {}),
                "messageAttributes": {
                    name: {
                        "stringValue": a.get("StringValue"),
                        "binaryValue": a.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": a["DataType"],
                    }
                    for name, a in attributes.items()
                },
                "md5OfBody": hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


class SqsEventSource:
    """One queue feeding one handler as Lambda's event source mapping does.

    Receives a batch, invokes the handler, deletes what succeeded and leaves
    what `batchItemFailures` names (its visibility is the handler's business).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Any,
        *,
        batch_size: int = 10,
        timeout_seconds: float = 30.0,
        function_name: str = "local-function",
        batching_window: float = 0.0,
    ) -> None:
        self.sqs = sqs
        self.batching_window = batching_window  # as MaximumBatchingWindowInSeconds: wait this long to fill a batch
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.timeout_seconds = timeout_seconds
        self.function_name = function_name
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self.region = self.queue_arn.split(":")[3]
        self.last_event: dict[str, Any] | None = None
        self.handed_back: list[str] = []  # receipt handles of failed records, hidden for their backoff
        self.deliveries = 0

    def poll_once(self, wait_seconds: int = 0) -> dict[str, Any] | None:
        """One batch through the handler; None when the queue had nothing visible."""
        messages: list[dict[str, Any]] = []
        window_ends = None
        while len(messages) < self.batch_size:  # SQS hands out 10 a receive: a larger batch takes several
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(self.batch_size - len(messages), 10),
                WaitTimeSeconds=0 if messages else wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=int(self.timeout_seconds * 6),
            ).get("Messages", [])
            messages.extend(got)
            if not messages:
                break
            window_ends = window_ends or time.monotonic() + self.batching_window
            if len(got) < 10 and time.monotonic() >= window_ends:
                break
            if len(got) < 10:
                time.sleep(min(0.2, max(window_ends - time.monotonic(), 0)))
        if not messages:
            return None
        ids = [m["MessageId"] for m in messages]
        trace.note("received", function=self.function_name, ids=ids)
        event = self.last_event = sqs_event(messages, self.queue_arn, self.region)
        context = LocalContext(self.function_name, self.timeout_seconds)
        started = time.time()
        try:
            result = self.handler(event, context) or {}
        except Exception:  # Lambda retries the whole batch after its visibility timeout
            self.handed_back.extend(m["ReceiptHandle"] for m in messages)
            return {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages], "raised": True}
        trace.note("handled", function=self.function_name, ids=ids, started=started)
        failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        self.deliveries += len(messages)
        self.handed_back.extend(m["ReceiptHandle"] for m in messages if m["MessageId"] in failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        return result

    def skip_backoff(self) -> int:
        """Make what was handed back visible now, as if its backoff had passed (for soak runs); how many."""
        handles, self.handed_back = self.handed_back, []
        # Twice: moto releases a message's FIFO group only if it is already visible when its visibility changes,
        # which within the same millisecond it is not; a group left "in flight" would be delivered out of order.
        for attempt in range(2):
            if attempt:
                time.sleep(0.005)
            for handle in handles:
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0
                    )
                except Exception:  # noqa: S110 - deleted or received again since: nothing to hurry
                    pass
        return len(handles)

    def drain(self, max_batches: int = 1000) -> int:
        """Poll until nothing is visible; the number of batches handled."""
        for count in range(max_batches):
            if self.poll_once() is None:
                return count
        return max_batches


def send_command(sqs: Any, queue_url: str, command: dict[str, Any], group: str, dedup_id: str | None = None) -> str:
    """Put a command on a FIFO queue as a producer should: its contact as group, its own deduplication id."""
    return sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(command),
        MessageGroupId=group,
        MessageDeduplicationId=dedup_id or str(uuid.uuid4()),
    )["MessageId"]


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make run (python -m local.stack), which runs each function with it")
