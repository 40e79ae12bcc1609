"""Secrets Manager's GetSecretValue through the container's light JSON-protocol client (no boto3 client).

Why not Powertools' `parameters.get_secret` (`SecretsProvider`): it builds a boto3 client,
and a boto3 client makes a cold start parse botocore's whole endpoint catalogue and the
service's model before its first call; this one call needs neither. Where a container has
built a DynamoDB client already the two reads are close (`make bench`:
`secret_read_ours_keyed_ms` vs `secret_read_powertools_keyed_ms`); on a path that builds
no boto3 client, such as a direct invocation without an idempotency key (the Step Functions
workflow as shipped), ours keeps the cold start near a bare `import boto3, requests`
(`cold_start_ratio`) where a boto3 client would add its parsing. How much each costs:
docs/performance.md. The signing, endpoint rules and credentials are botocore's (`json_protocol`).

The region is the ARN's own (a secret may live in another region), else the function's.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from ..errors import DependencyUnavailable
from .json_protocol import AwsCallFailed, Credentials, JsonProtocolClient, JsonService, default_region
from .json_protocol import resolve_endpoint as resolve_service_endpoint

SECRETS_MANAGER = JsonService(
    name="secretsmanager",
    api_version="2017-10-17",
    target_prefix="secretsmanager",
    json_version="1.1",
    endpoint_setting="AWS_ENDPOINT_URL_SECRETS_MANAGER",
    title="Secrets Manager",
)


def resolve_endpoint(region: str | None) -> str:
    """The endpoint botocore would call for Secrets Manager in `region`."""
    return resolve_service_endpoint(SECRETS_MANAGER, region)


def region_of(secret_id: str) -> str | None:
    """The region an ARN names (a secret may live in another region); else the function's own."""
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == SECRETS_MANAGER.name and parts[3]:
        return parts[3]
    return default_region()


class SecretsManager:
    """GetSecretValue only. Thread-safe; one per container."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = JsonProtocolClient(SECRETS_MANAGER, sleep)

    def credentials(self) -> Credentials:
        return self.client.credentials()

    def get_secret_string(self, secret_id: str) -> str:
        """The secret's current value as text; DependencyUnavailable (naming no value) when it cannot be had."""
        try:
            answer = self.client.call("GetSecretValue", {"SecretId": secret_id}, region_of(secret_id))
        except AwsCallFailed as exc:
            problem = f"a redirect, not followed (HTTP {exc.status})" if exc.code == "RedirectNotFollowed" else str(exc)
            # The answer's message may quote the secret's name; the code is enough, and safe to log.
            raise DependencyUnavailable(f"the secret could not be read from Secrets Manager: {problem}") from None
        return _secret_text(answer)


def _secret_text(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("SecretString"), str):
        return data["SecretString"]
    if isinstance(data, dict) and isinstance(data.get("SecretBinary"), str):
        try:
            return base64.b64decode(data["SecretBinary"]).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise DependencyUnavailable("the secret's binary value is not UTF-8 text") from exc
    raise DependencyUnavailable("Secrets Manager answered without a secret value")
