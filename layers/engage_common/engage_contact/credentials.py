"""Secrets from Secrets Manager, through Powertools' parameters, cached per container."""

from __future__ import annotations

import json
import threading

from botocore.config import Config

from .errors import DependencyUnavailable

CACHE_SECONDS = 300
# Fail fast: a slow Secrets Manager must not eat the time Engage's retries need.
_BOTO_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})


class SecretReader:
    """Reads secrets through one Powertools SecretsProvider, built on first use."""

    def __init__(self) -> None:
        self._provider = None
        # The records of a cold batch start together: one of them builds the client and reads, the others wait.
        self._lock = threading.RLock()

    @property
    def provider(self):
        with self._lock:
            if self._provider is None:
                from aws_lambda_powertools.utilities.parameters import SecretsProvider

                self._provider = SecretsProvider(boto_config=_BOTO_CONFIG)
            return self._provider

    def read(self, arn: str, *, refresh: bool = False) -> str:
        """The secret's string; cached for 5 minutes, read again when `refresh`."""
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            with self._lock:
                value = self.provider.get(arn, max_age=CACHE_SECONDS, force_fetch=refresh)
        except GetParameterError as exc:
            # The provider's message names the secret, never its value.
            raise DependencyUnavailable("the secret could not be read from Secrets Manager") from exc
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        return value


def api_key_from_secret(secret: str) -> str:
    """The Engage key from its secret: the bare key, or JSON `{"apiKey": "…"}`."""
    text = secret.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        key = data.get("apiKey") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise DependencyUnavailable('the Engage key secret is JSON without a string "apiKey"')
        return key.strip()
    if not text:
        raise DependencyUnavailable("the Engage key secret is empty")
    return text


class ApiKeySource:
    """The Engage API key: one Secrets Manager read per container per 5 minutes, again on demand after a 401."""

    def __init__(self, arn: str, reader: SecretReader) -> None:
        self.arn = arn
        self.reader = reader

    def get(self, *, refresh: bool = False) -> str:
        try:
            return api_key_from_secret(self.reader.read(self.arn, refresh=refresh))
        except DependencyUnavailable:
            if refresh:
                raise
            # An unusable value must not stay cached for 5 minutes: it may have been mended since.
            return api_key_from_secret(self.reader.read(self.arn, refresh=True))


def rotating_secrets(value: str, what: str) -> list[str]:
    """The secrets a value holds: one, or JSON {"current": …, "previous": …} while it is being rotated."""
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DependencyUnavailable(f"the {what} is neither a secret nor valid JSON") from exc
        found = [data.get(k) for k in ("current", "previous")] if isinstance(data, dict) else []
        found = [k.strip() for k in found if isinstance(k, str) and k.strip()]
    else:
        found = [text] if text else []
    if not found:
        raise DependencyUnavailable(f"the {what} holds no secret")
    return found
