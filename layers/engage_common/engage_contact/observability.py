"""Logs and metrics: structured, correlated, and without personal data.

Attribute NAMES are logged; values never are. The API key, emails, phone
numbers, names, addresses and social security numbers stay out of every line,
and so do exception messages of unexpected errors (only their type and frames).
"""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from .errors import EngageContactError, InvalidRequest

# Their DEBUG lines carry URLs (with lookup values) and response bodies (with secrets): never below INFO.
for _name in ("urllib3", "botocore", "boto3", "s3transfer"):
    logging.getLogger(_name).setLevel(max(logging.getLogger(_name).getEffectiveLevel(), logging.INFO))

# The template names each function's service (POWERTOOLS_SERVICE_NAME); a name in code would override it.
logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "engage-contact-functions", log_uncaught_exceptions=False
)
metrics = Metrics(namespace="EngageContactFunctions")

OPERATION_METRIC = {"update": "ContactsUpdated", "promote": "ContactsPromoted", "contact-type": "ContactTypesChanged"}


def correlate(value: str | None) -> None:
    """The correlation id of this thread's log lines (records of one batch may run in several threads)."""
    logger.thread_safe_append_keys(correlation_id=value)


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)


def count_by(name: str, dimension: str, value: str) -> None:
    """A count of its own under one dimension (the function's other metrics keep theirs)."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name=dimension, value=value)
        if metrics.service:  # the function's, as its other metrics carry it (deployed: POWERTOOLS_SERVICE_NAME)
            metric.add_dimension(name="service", value=metrics.service)


def engage_latency(seconds: float) -> None:
    count("EngageLatency", seconds * 1000, MetricUnit.Milliseconds)


def success(operation: str, result: dict[str, Any], trigger: str) -> None:
    if result.get("replayed"):  # answered from the first result: no second change
        count("CommandsReplayed")
        logger.info(
            "command replayed", extra={"operation": operation, "trigger": trigger, "contactId": result["contactId"]}
        )
        return
    if result.get("stale"):  # older than the newest event applied to the contact: Engage was not called
        count("StaleCommandsSkipped")
        logger.info("stale command skipped", extra={"operation": operation, "trigger": trigger})
        return
    if result.get("notFound"):  # no contact to apply it to, and none to create: said, never dead-lettered
        count("ContactsNotFoundSkipped")
        logger.info("contact not found; nothing applied or created", extra={"operation": operation, "trigger": trigger})
        return
    if result.get("erased"):  # queued before its contact was erased: not applied (docs/contract.md §13)
        count("ErasedCommandsSkipped")
        logger.info(
            "command skipped: its contact was erased after it was queued",
            extra={"operation": operation, "trigger": trigger},
        )
        return
    if result.get("droppedUnchanged"):
        count("AttributesDroppedUnchanged", len(result["droppedUnchanged"]))
    if result.get("unchanged"):  # Engage holds every value already: not called
        count("UpdatesSkippedUnchanged")
        logger.info(
            "contact unchanged",
            extra={
                "operation": operation,
                "trigger": trigger,
                "contactId": result["contactId"],
                "droppedUnchanged": result.get("droppedUnchanged", []),
            },
        )
        return
    count(OPERATION_METRIC[operation])
    if result.get("created"):
        count("ContactsCreated")
    if result["droppedEmpty"]:
        count("AttributesDroppedEmpty", len(result["droppedEmpty"]))
    logger.info(
        "contact changed",
        extra={
            "operation": operation,
            "trigger": trigger,
            "contactId": result["contactId"],
            "attributesSent": sorted(result["sent"]),
            "droppedEmpty": result["droppedEmpty"],
            "alreadyMember": bool(result.get("alreadyMember")),
            "contactCreated": bool(result.get("created")),
            "droppedUnchanged": result.get("droppedUnchanged", []),
        },
    )


def failure(operation: str, error: BaseException, trigger: str) -> None:
    if isinstance(error, InvalidRequest) and error.details.get("unknownNames"):
        count("UnknownNamesRefused", error.details.get("unknownNameCount", len(error.details["unknownNames"])))
    if isinstance(error, EngageContactError):
        # our own messages name fields, never values
        logger.warning(
            "command failed",
            extra={"operation": operation, "trigger": trigger, "errorType": error.name, "reason": error.message},
        )
    else:
        unexpected(error, operation=operation, trigger=trigger)


def fallback(metric: str, error: BaseException, **extra: Any) -> None:
    """An AWS failure a path goes on without (a fallback): counted under `metric`, and one line naming it and the
    error's type and AWS code, never its text (which may quote a key or a value)."""
    count(metric)
    code = getattr(error, "response", {}).get("Error", {}).get("Code") if hasattr(error, "response") else None
    cause = error.__cause__
    if code is None and cause is not None and hasattr(cause, "response"):
        code = cause.response.get("Error", {}).get("Code")
    logger.warning("fallback", extra={**extra, "metric": metric, "errorType": type(error).__name__, "awsCode": code})


def unexpected(error: BaseException, **extra: Any) -> None:
    """A defect of ours: its type and where, not its message (which may hold a value)."""
    frames = "".join(traceback.format_tb(error.__traceback__)[-8:])
    logger.error("unexpected failure", extra={**extra, "errorType": type(error).__name__, "frames": frames})


def flush() -> None:
    if metrics.metric_set:  # nothing counted, nothing to publish (and no warning)
        metrics.flush_metrics()
