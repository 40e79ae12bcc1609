"""How long an AWS call may take (every client's), and the boto3 clients the light family does not serve.

The functions' AWS calls go through one family of clients, `aws.json_protocol` (DynamoDB, SQS, Secrets
Manager: why, there). `AwsClients` builds boto3 clients for what that family does not speak: S3 (REST-XML),
which only the erase function's data-request export calls.
"""

from __future__ import annotations

import threading
from typing import Any

# AWS calls (Secrets Manager, DynamoDB, SQS) fail fast: a slow service must not eat the time Engage's retries need.
AWS_CONNECT_TIMEOUT_SECONDS = 2.0
AWS_READ_TIMEOUT_SECONDS = 3.0
AWS_ATTEMPTS = 2  # in all, the first included
AWS_MIN_CALL_SECONDS = 0.25  # a call (or its retry) with less time than this left before its caller's end: not sent
AWS_RETRY_DELAY_MAX_SECONDS = 1.0  # botocore's standard mode waits at most this before a second attempt
AWS_CALL_MAX_SECONDS = (
    AWS_ATTEMPTS * (AWS_CONNECT_TIMEOUT_SECONDS + AWS_READ_TIMEOUT_SECONDS) + AWS_RETRY_DELAY_MAX_SECONDS
)
# After the last Engage call, one after the other: the idempotency record saved (or deleted, on a failure),
# then the message dead-lettered or its backoff visibility set.
AWS_CALLS_AFTER_ENGAGE = 2
# Kept at the end of an invocation for those calls: Engage's deadline ends this much before Lambda's (22 s).
AWS_RESERVE_SECONDS = AWS_CALLS_AFTER_ENGAGE * AWS_CALL_MAX_SECONDS
# An API request has one of them (the idempotency record saved or deleted): kept within the API's answer time.
API_AWS_RESERVE_SECONDS = AWS_CALL_MAX_SECONDS


def aws_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=AWS_READ_TIMEOUT_SECONDS,
        retries={"total_max_attempts": AWS_ATTEMPTS, "mode": "standard"},
    )


class AwsClients:
    """One boto3 client per service per container (S3 only: the erase function's data-request export), all from
    one session, all failing fast. Nothing else builds one (the light family serves the rest)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a batch's threads may ask at once; a boto3 session is not thread-safe
        self._session: Any = None
        self.built: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        with self._lock:
            if service not in self.built:
                if self._session is None:
                    import boto3

                    self._session = boto3.session.Session()
                self.built[service] = self._session.client(service, config=aws_config())
            return self.built[service]
