"""API Gateway in and out: REST API proxy events (payload v1), HTTP API (v2) tolerated.

Why not Powertools' `APIGatewayRestResolver`: each function serves one static route (the
update function also the two platform routes), so routing is a dictionary lookup; importing
the resolver would lengthen every API cold start (how much: `api_resolver_import_ms` in
docs/performance.md) for features (path parameters, CORS, OpenAPI) no route uses.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from ..domain.command import Operation
from ..errors import EngageContactError, InvalidRequest, name_of, policy_of

# API Gateway ends a REST API integration after 29 s (the template sets it explicitly) and answers 504 itself,
# while the function may go on and apply the change. An API-triggered invocation answers by ANSWER_SECONDS
# from its start instead, at worst 503 with Retry-After: the margin covers API Gateway's own hops and a slow start.
INTEGRATION_TIMEOUT_SECONDS = 29
ANSWER_SECONDS = 25.0

ROUTES: dict[str, Operation] = {
    "/contacts/update": Operation.UPDATE,
    "/contacts/promote": Operation.PROMOTE,
    "/contacts/contact-type": Operation.CHANGE_TYPE,
}


class ApiRequest:
    """The parts of an API Gateway event the functions use, read the same way for v1 and v2."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        http = (event.get("requestContext") or {}).get("http") or {}
        self.method = (event.get("httpMethod") or http.get("method") or "").upper()
        path = event.get("resource") or ""
        if not path or "{" in path:
            path = event.get("path") or event.get("rawPath") or ""
        route_key = event.get("routeKey") or ""
        if " " in route_key:
            path = route_key.split(" ", 1)[1]
        self.path = "/" + path.strip("/")
        self.headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        self.request_id = (event.get("requestContext") or {}).get("requestId")

    def raw_body(self) -> bytes:
        body = self.event.get("body") or ""
        if self.event.get("isBase64Encoded"):
            try:
                return base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidRequest("the body is marked base64 but is not") from exc
        return body.encode("utf-8")


class AnswerBy:
    """The Lambda context of an API request, the time it has left cut at the API's answer time.

    Everything that plans by the time left (Engage's deadline, retries, waits for a turn in the
    rate budget, the idempotency record's expiry) then plans within the API's limit.
    """

    def __init__(self, context: Any, seconds: float = ANSWER_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._context = context
        self._clock = clock
        self._end = clock() + seconds

    def get_remaining_time_in_millis(self) -> int:
        left = int(max(self._end - self._clock(), 0.0) * 1000)
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        return min(left, remaining()) if callable(remaining) else left

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body, ensure_ascii=False),
    }


def error_body(name: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The contract's error body: {"error", "message", "details"}."""
    return {"error": name, "message": message, "details": details or {}}


def error_response(error: BaseException) -> dict[str, Any]:
    policy = policy_of(error)
    headers = {}
    retry_after = getattr(error, "retry_after", None) or policy.retry_after
    if retry_after is not None and policy.retryable:
        headers["Retry-After"] = str(max(round(retry_after), 1))
    if isinstance(error, EngageContactError):
        return response(policy.status, error_body(error.name, error.message, error.details), headers)
    # a defect of ours: no trace and no internals to the caller
    return response(policy.status, error_body(name_of(error), "an unexpected error occurred"))


def not_found(request: ApiRequest) -> dict[str, Any]:
    """404: no route of this function (or none this deployment serves) is at the request's path."""
    return response(404, error_body("NotFound", f"no route {request.path}"))


def route_problem(request: ApiRequest, served: bool) -> dict[str, Any] | None:
    """404 for a route this function does not serve, 405 for a method other than POST; never a 500."""
    if not served:
        return not_found(request)
    if request.method != "POST":
        return response(
            405, error_body("MethodNotAllowed", f"{request.method} is not allowed; use POST"), {"Allow": "POST"}
        )
    return None
