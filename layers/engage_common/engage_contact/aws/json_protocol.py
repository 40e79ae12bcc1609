"""The functions' one family of AWS clients: JSON-protocol calls (DynamoDB, SQS, Secrets Manager), signed by
botocore, sent over requests. No function path builds a boto3 client (S3, the one REST-XML service, is the
exception: the erase function's data-request export, `aws.clients.AwsClients`).

Why this family and not boto3 everywhere: a boto3 client makes a cold start pay before its first call,
botocore parsing its whole endpoint catalogue and the service's whole model, and `import boto3` alone
loads boto3's S3 transfer manager; the few calls a container makes (the Engage key's GetSecretValue, the
rate budget's UpdateItem, the idempotency record, a dead letter's SendMessage, a backoff's
ChangeMessageVisibilityBatch) need neither. That is what keeps the keyed cold start within 1.3 times a bare
boto3 client (the figures, before and after: docs/performance.md; the decision: docs/design.md). botocore
still does every part that has to be exact: the service's own endpoint rules (partitions, FIPS,
dual-stack), the credentials chain when the environment holds none, and the SigV4 signature.

In one place here: what is retried (`RETRYABLE_CODES`, botocore's standard mode's), how an error reaches a
caller (`LightClient.call`: botocore's `ClientError` with AWS's code and the error's modeled fields, so a
caller reads it as it would a boto3 client's; DynamoDB's conditions and transactions are read by
`aws.table`), and how long a call may take: each attempt within `aws.clients`' timeouts, and, inside
`calls_end_by` (an API request: its answer is due), its timeouts and its retry within the time left.

Configuration is read from the environment as botocore reads it: AWS_REGION /
AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_<SERVICE> then AWS_ENDPOINT_URL (both skipped when
AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import requests

from ..errors import DependencyUnavailable
from ..http_session import new_session
from .clients import AWS_ATTEMPTS, AWS_CONNECT_TIMEOUT_SECONDS, AWS_MIN_CALL_SECONDS, AWS_READ_TIMEOUT_SECONDS

# Worth one more attempt (botocore's standard retry mode retries the same).
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "ProvisionedThroughputExceededException", "InternalServerError", "InternalServiceError", "InternalFailure",
    "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException", "RequestThrottled",
})  # fmt: skip
# The code of a call not sent (or not tried again) because the time its caller has left would not hold it.
DEADLINE_REACHED = "DeadlineReached"
# When every call in this context must be over (time.monotonic()), None: no such bound (see calls_end_by).
_calls_end: contextvars.ContextVar[float | None] = contextvars.ContextVar("aws_calls_end", default=None)


@contextlib.contextmanager
def calls_end_by(seconds: float) -> Iterator[None]:
    """Every AWS call made inside (this thread, and threads started with a copy of its context) is over within
    `seconds`: its attempts' timeouts are cut to the time left, a retry is made only if it fits, and a call
    with less than AWS_MIN_CALL_SECONDS left is not sent (AwsCallFailed DeadlineReached, retryable)."""
    token = _calls_end.set(time.monotonic() + max(seconds, 0.0))
    try:
        yield
    finally:
        _calls_end.reset(token)


def deadline_in_force() -> bool:
    """Whether this context's AWS calls are bounded by a deadline (`calls_end_by`), which may cut them short."""
    return _calls_end.get() is not None


def attempt_timeouts() -> tuple[float, float] | None:
    """(connect, read) seconds for an attempt starting now; None when too little time is left to start one."""
    end = _calls_end.get()
    if end is None:
        return AWS_CONNECT_TIMEOUT_SECONDS, AWS_READ_TIMEOUT_SECONDS
    left = end - time.monotonic()
    if left < AWS_MIN_CALL_SECONDS:
        return None
    whole = AWS_CONNECT_TIMEOUT_SECONDS + AWS_READ_TIMEOUT_SECONDS
    if left >= whole:
        return AWS_CONNECT_TIMEOUT_SECONDS, AWS_READ_TIMEOUT_SECONDS
    connect = left * AWS_CONNECT_TIMEOUT_SECONDS / whole  # both cut alike: together they end within the time left
    return connect, left - connect


def _fits(pause: float) -> bool:
    """Whether a retry after `pause` seconds still has the time an attempt needs."""
    end = _calls_end.get()
    return end is None or end - time.monotonic() - pause >= AWS_MIN_CALL_SECONDS


@dataclass(frozen=True)
class JsonService:
    """What differs between two JSON-protocol services: names, the rule set, the target and the JSON version."""

    name: str  # the signing name and the rule set's folder: "secretsmanager", "dynamodb"
    api_version: str  # "2017-10-17"
    target_prefix: str  # "secretsmanager", "DynamoDB_20120810"
    json_version: str  # "1.1", "1.0"
    endpoint_setting: str  # "AWS_ENDPOINT_URL_SECRETS_MANAGER"
    title: str  # for messages: "Secrets Manager"


class Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None


class AwsCallFailed(Exception):
    """The call failed; `code` is AWS's error code (or the transport's), safe to log: it names no value."""

    def __init__(self, code: str, status: int | None, body: Any = None, *, retryable: bool = False) -> None:
        super().__init__(f"{code} (HTTP {status})" if status is not None else code)
        self.code = code
        self.status = status
        self.body = body
        self.retryable = retryable


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def configured_endpoint(service: JsonService) -> str | None:
    """An endpoint the environment names for the service (as botocore reads it), or None."""
    if _flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        return None
    return os.environ.get(service.endpoint_setting) or os.environ.get("AWS_ENDPOINT_URL") or None


def resolve_endpoint(service: JsonService, region: str | None) -> str:
    """The endpoint botocore would call, by the service's own rule set and botocore's partitions."""
    from botocore.endpoint_provider import EndpointProvider
    from botocore.exceptions import BotoCoreError
    from botocore.loaders import Loader

    loader = Loader()
    try:
        provider = EndpointProvider(
            loader.load_data(f"{service.name}/{service.api_version}/endpoint-rule-set-1"),
            loader.load_data("partitions"),
        )
        parameters: dict[str, bool | str] = {
            "UseFIPS": _flag("AWS_USE_FIPS_ENDPOINT"),
            "UseDualStack": _flag("AWS_USE_DUALSTACK_ENDPOINT"),
        }
        if region:
            parameters["Region"] = region
        endpoint = configured_endpoint(service)
        if endpoint:
            parameters["Endpoint"] = endpoint
        return provider.resolve_endpoint(**parameters).url
    except BotoCoreError as exc:  # e.g. no region, or FIPS asked of a custom endpoint
        raise DependencyUnavailable(f"no {service.title} endpoint: {exc}") from exc


def default_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


class JsonProtocolClient:
    """Calls of one JSON-protocol service. Thread-safe; one per service per container."""

    def __init__(self, service: JsonService, sleep: Callable[[float], None] = time.sleep) -> None:
        self.service = service
        self._sleep = sleep
        self._lock = threading.Lock()
        self._endpoints: dict[str | None, str] = {}
        self._sessions: dict[str, requests.Session] = {}
        self._chain: Any = None

    def _route(self, region: str | None) -> tuple[str, requests.Session]:
        with self._lock:
            if region not in self._endpoints:
                self._endpoints[region] = resolve_endpoint(self.service, region)
            url = self._endpoints[region]
            if url not in self._sessions:
                self._sessions[url] = new_session(pool_size=10, base_url=url)
            return url, self._sessions[url]

    def credentials(self) -> Credentials:
        """The environment's keys (as Lambda gives them); otherwise botocore's whole chain, refreshed as it expires."""
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:  # botocore's chain starts with these too
            return Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
        with self._lock:
            if self._chain is None:
                import botocore.session  # profiles, SSO, container and instance credentials, SnapStart

                self._chain = botocore.session.get_session().get_credentials()
        if self._chain is None:
            raise DependencyUnavailable(f"no AWS credentials found to call {self.service.title} with")
        from botocore.exceptions import BotoCoreError

        try:
            frozen = self._chain.get_frozen_credentials()
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"AWS credentials could not be refreshed: {type(exc).__name__}") from exc
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def warm(self, region: str | None = None) -> None:
        """Do now what a first call would do before it sends: the endpoint, the session, the signer's imports."""
        import botocore.auth
        import botocore.awsrequest  # noqa: F401

        self._route(region or default_region())

    def call(self, operation: str, payload: dict[str, Any], region: str | None = None) -> dict[str, Any]:
        """The operation's JSON answer; AwsCallFailed with AWS's error code when it cannot be had."""
        region = region or default_region()
        url, session = self._route(region)
        body = json.dumps(payload, allow_nan=False)
        for attempt in range(1, AWS_ATTEMPTS + 1):
            timeouts = attempt_timeouts()
            if timeouts is None:
                raise AwsCallFailed(DEADLINE_REACHED, None, retryable=True)
            outcome = self._attempt(session, url, region, operation, body, timeouts)
            if not isinstance(outcome, AwsCallFailed):
                return outcome
            pause = random.uniform(0.05, 0.5)  # jittered, as botocore's standard mode
            if not outcome.retryable or attempt == AWS_ATTEMPTS or not _fits(pause):
                raise outcome
            self._sleep(pause)
        raise AwsCallFailed("NoAnswer", None)  # not reached: AWS_ATTEMPTS >= 1

    def _attempt(
        self,
        session: requests.Session,
        url: str,
        region: str | None,
        operation: str,
        body: str,
        timeouts: tuple[float, float] = (AWS_CONNECT_TIMEOUT_SECONDS, AWS_READ_TIMEOUT_SECONDS),
    ) -> dict[str, Any] | AwsCallFailed:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(
            "POST",
            url.rstrip("/") + "/",
            data=body,
            headers={
                "X-Amz-Target": f"{self.service.target_prefix}.{operation}",
                "Content-Type": f"application/x-amz-json-{self.service.json_version}",
            },
        )
        SigV4Auth(self.credentials(), self.service.name, region or "us-east-1").add_auth(request)
        try:
            # Never follow a redirect: it would carry the signed headers (the session token) to another host.
            response = session.post(
                request.url,
                data=body,
                headers=dict(request.headers),
                allow_redirects=False,
                timeout=timeouts,
            )
        except requests.RequestException as exc:
            return AwsCallFailed(type(exc).__name__, None, retryable=True)
        if response.status_code == 200:
            return _json(response) or {}
        if 300 <= response.status_code < 400:
            return AwsCallFailed("RedirectNotFollowed", response.status_code, retryable=False)
        code = _error_code(response)
        retryable = code in RETRYABLE_CODES or response.status_code >= 500
        return AwsCallFailed(code, response.status_code, _json(response), retryable=retryable)


class LightClient:
    """A service's calls, keyword arguments as boto3's client takes them, errors raised as boto3's would be."""

    service: JsonService

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = JsonProtocolClient(self.service, sleep)

    def warm(self) -> None:
        """Ready for a first call that is only its round trip (a lease's turns are timed from before it)."""
        self.client.warm()

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The operation's answer; botocore's `ClientError` (AWS's code, the error's modeled fields) when none."""
        from botocore.exceptions import ClientError

        try:
            return self.client.call(operation, params)
        except AwsCallFailed as exc:
            modeled = (
                {k: v for k, v in exc.body.items() if k not in ("__type", "message", "Message")}
                if isinstance(exc.body, dict)
                else {}
            )
            error = {
                "Error": {"Code": exc.code, "Message": ""},
                "ResponseMetadata": {"HTTPStatusCode": exc.status},
                **modeled,
            }
        except DependencyUnavailable:  # no endpoint or no credentials
            error = {"Error": {"Code": "DependencyUnavailable", "Message": ""}, "ResponseMetadata": {}}
        raise ClientError(error, operation)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_code(response: requests.Response) -> str:
    data = _json(response)
    code = (data.get("__type") or data.get("code")) if isinstance(data, dict) else None
    if not isinstance(code, str) or not code:
        code = response.headers.get("x-amzn-ErrorType", "") or "UnknownError"
    return code.split("#")[-1].split(":")[0]
