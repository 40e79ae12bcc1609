"""Secrets Manager's GetSecretValue, signed by botocore and sent over a keep-alive requests session.

Why not Powertools' `parameters.get_secret` (`SecretsProvider`): a boto3 client costs a
cold start about 180 ms before its first call (botocore parses its 1.2 MB endpoint
catalogue and the service's model); this one call needs neither. On the paths that
build a boto3 client anyway (every keyed command: SQS records, signed API requests)
the two cost about the same (`make bench`: `secret_read_ours_keyed_ms` vs
`secret_read_powertools_keyed_ms`, about 40 vs 50 ms); on the path that does not,
a direct invocation without an idempotency key (the Step Functions workflow as
shipped), ours keeps the cold start near a bare `import boto3, requests`
(`cold_start_ratio`) where the boto3 client would add its 180 ms. botocore still does every part that has to be exact:
Secrets Manager's own endpoint rules (partitions, FIPS, dual-stack), the
credentials chain when the environment holds none, and the SigV4 signature.

Configuration is read from the environment as botocore reads it:
AWS_REGION / AWS_DEFAULT_REGION (an ARN's own region wins),
AWS_ENDPOINT_URL_SECRETS_MANAGER, then AWS_ENDPOINT_URL (both skipped when
AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), AWS_USE_FIPS_ENDPOINT,
AWS_USE_DUALSTACK_ENDPOINT.
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import requests

from ..errors import DependencyUnavailable
from ..http_session import new_session
from .clients import AWS_ATTEMPTS, AWS_CONNECT_TIMEOUT_SECONDS, AWS_READ_TIMEOUT_SECONDS

SERVICE = "secretsmanager"
API_VERSION = "2017-10-17"
TARGET = "secretsmanager.GetSecretValue"
# Worth one more attempt (botocore's standard retry mode retries the same).
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "InternalServiceError", "InternalFailure", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException",
})  # fmt: skip


class Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def configured_endpoint() -> str | None:
    """An endpoint the environment names for Secrets Manager (as botocore reads it), or None."""
    if _flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        return None
    return os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or os.environ.get("AWS_ENDPOINT_URL") or None


def resolve_endpoint(region: str | None) -> str:
    """The endpoint botocore would call, by Secrets Manager's own rule set and botocore's partitions."""
    from botocore.endpoint_provider import EndpointProvider
    from botocore.exceptions import BotoCoreError
    from botocore.loaders import Loader

    loader = Loader()
    try:
        provider = EndpointProvider(
            loader.load_data(f"{SERVICE}/{API_VERSION}/endpoint-rule-set-1"), loader.load_data("partitions")
        )
        parameters = {"UseFIPS": _flag("AWS_USE_FIPS_ENDPOINT"), "UseDualStack": _flag("AWS_USE_DUALSTACK_ENDPOINT")}
        if region:
            parameters["Region"] = region
        endpoint = configured_endpoint()
        if endpoint:
            parameters["Endpoint"] = endpoint
        return provider.resolve_endpoint(**parameters).url
    except BotoCoreError as exc:  # e.g. no region, or FIPS asked of a custom endpoint
        raise DependencyUnavailable(f"no Secrets Manager endpoint: {exc}") from exc


def region_of(secret_id: str) -> str | None:
    """The region an ARN names (a secret may live in another region); else the function's own."""
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == SERVICE and parts[3]:
        return parts[3]
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


class SecretsManager:
    """GetSecretValue only. Thread-safe; one per container."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._lock = threading.Lock()
        self._endpoints: dict[str | None, str] = {}
        self._sessions: dict[str, requests.Session] = {}
        self._chain: Any = None

    # --- where and as whom --------------------------------------------------------------------
    def _route(self, region: str | None) -> tuple[str, requests.Session]:
        with self._lock:
            if region not in self._endpoints:
                self._endpoints[region] = resolve_endpoint(region)
            url = self._endpoints[region]
            if url not in self._sessions:
                self._sessions[url] = new_session(pool_size=4, base_url=url)
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
            raise DependencyUnavailable("no AWS credentials found to read Secrets Manager with")
        from botocore.exceptions import BotoCoreError

        try:
            frozen = self._chain.get_frozen_credentials()
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"AWS credentials could not be refreshed: {type(exc).__name__}") from exc
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    # --- the call ---------------------------------------------------------------------------------
    def get_secret_string(self, secret_id: str) -> str:
        """The secret's current value as text; DependencyUnavailable (naming no value) when it cannot be had."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        region = region_of(secret_id)
        url, session = self._route(region)
        body = json.dumps({"SecretId": secret_id})
        problem = "no answer"
        for attempt in range(1, AWS_ATTEMPTS + 1):
            request = AWSRequest("POST", url.rstrip("/") + "/", data=body, headers={
                "X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"})  # fmt: skip
            SigV4Auth(self.credentials(), SERVICE, region or "us-east-1").add_auth(request)
            try:
                # Never follow a redirect: it would carry the signed headers (the session token) to another host.
                response = session.post(request.url, data=body, headers=dict(request.headers), allow_redirects=False,
                                        timeout=(AWS_CONNECT_TIMEOUT_SECONDS, AWS_READ_TIMEOUT_SECONDS))  # fmt: skip
            except requests.RequestException as exc:
                problem = type(exc).__name__
            else:
                if response.status_code == 200:
                    return _secret_text(response)
                if 300 <= response.status_code < 400:
                    problem = f"a redirect, not followed (HTTP {response.status_code})"
                    break
                code = _error_code(response)
                problem = f"{code} (HTTP {response.status_code})"
                if code not in RETRYABLE_CODES and response.status_code < 500:
                    break
            if attempt < AWS_ATTEMPTS:
                self._sleep(random.uniform(0.05, 0.5))  # jittered, as botocore's standard mode
        # The answer's message may quote the secret's name; the code is enough, and safe to log.
        raise DependencyUnavailable(f"the secret could not be read from Secrets Manager: {problem}")


def _error_code(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = None
    code = (data.get("__type") or data.get("code")) if isinstance(data, dict) else None
    if not isinstance(code, str) or not code:
        code = response.headers.get("x-amzn-ErrorType", "") or "UnknownError"
    return code.split("#")[-1].split(":")[0]


def _secret_text(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("SecretString"), str):
        return data["SecretString"]
    if isinstance(data, dict) and isinstance(data.get("SecretBinary"), str):
        try:
            return base64.b64decode(data["SecretBinary"]).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise DependencyUnavailable("the secret's binary value is not UTF-8 text") from exc
    raise DependencyUnavailable("Secrets Manager answered without a secret value")
