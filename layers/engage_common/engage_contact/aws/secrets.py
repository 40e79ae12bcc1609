"""Secrets read from Secrets Manager, cached per container: the Engage key, the digest key, the signing secrets."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..errors import ERROR_POLICIES, DependencyUnavailable
from ..observability import count

if TYPE_CHECKING:
    from .secrets_manager import SecretsManager

CACHE_SECONDS = 300
# A read that failed is not tried again for this long (DependencyUnavailable's Retry-After): while Secrets Manager
# hangs, each record of a batch would otherwise wait out its own timeouts in turn (10 records, 70 s: past the
# function's timeout), where one wait tells them all. Not after a read made within an API request's deadline
# (`calls_end_by`): its failure may be the deadline's, and an API container serves one request at a time.
FAILED_READ_HOLD_SECONDS = float(ERROR_POLICIES[DependencyUnavailable].retry_after or 0)
DIGEST_KEY_MIN_CHARS = 32  # the template generates 64; a key of one's own is at least this long
API_KEY = re.compile(r"[\x21-\x7e]+")  # visible ASCII: no space, control or line break can split the header
T = TypeVar("T")


class SecretReader:
    """Each secret read at most once per 5 minutes per container, through one Secrets Manager client."""

    def __init__(self, client: SecretsManager | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._cache: dict[str, tuple[float, str]] = {}
        self._failed: dict[str, float] = {}  # arn -> when its last read failed (clock), while that is held
        # The records of a cold batch start together: one of them reads, the others wait for its answer.
        self._lock = threading.RLock()

    @property
    def client(self) -> SecretsManager:
        with self._lock:
            if self._client is None:
                from .secrets_manager import SecretsManager

                self._client = SecretsManager()
            return self._client

    def read(self, arn: str, parse: Callable[[str], T], *, refresh: bool = False) -> T:
        """The secret, as `parse` makes it usable; cached for 5 minutes, read again when `refresh`.

        A cached value `parse` refuses (DependencyUnavailable) is read again at once: it may have been
        mended since, and must not stay unusable for 5 minutes (a rotation that wrote bad JSON, say).
        A read that could not be had holds off the next for FAILED_READ_HOLD_SECONDS: those who asked
        meanwhile (the other records of a batch, waiting on the lock) get DependencyUnavailable at once.
        """
        with self._lock:
            cached = self._cache.get(arn)
            if cached is not None and not refresh and self._clock() - cached[0] < CACHE_SECONDS:
                try:
                    return parse(cached[1])
                except DependencyUnavailable:
                    pass
            failed = self._failed.get(arn)
            if failed is not None and self._clock() - failed < FAILED_READ_HOLD_SECONDS:
                raise DependencyUnavailable(
                    f"the secret could not be read from Secrets Manager {self._clock() - failed:.1f} s ago; "
                    f"it is read again {FAILED_READ_HOLD_SECONDS:g} s after that"
                )
            try:
                value = self.client.get_secret_string(arn)
            except DependencyUnavailable:
                from .json_protocol import deadline_in_force

                if not deadline_in_force():  # under a request's deadline a failure may be the deadline's own
                    self._failed[arn] = self._clock()
                raise
            self._failed.pop(arn, None)
            self._cache[arn] = (self._clock(), value)
        try:
            return parse(value)
        except DependencyUnavailable:
            count("SecretsUnusable")  # read, but no caller can be served with it: an alarm watches this
            raise


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
        return _header_safe(key.strip())
    if not text:
        raise DependencyUnavailable("the Engage key secret is empty")
    return _header_safe(text)


def _header_safe(key: str) -> str:
    """The key, if an HTTP header can carry it: visible ASCII only.

    Otherwise requests would refuse the header with the key quoted in its message, which would
    travel on as far as any message does (a log line, a Step Functions error cause).
    """
    if not API_KEY.fullmatch(key):
        raise DependencyUnavailable("the Engage key secret holds characters an HTTP header cannot carry")
    return key


def digest_key_from_secret(secret: str) -> bytes:
    """The deployment's digest key (`domain.digest_key`) from its secret: the text as it is, trimmed."""
    text = secret.strip()
    if len(text) < DIGEST_KEY_MIN_CHARS:
        raise DependencyUnavailable(f"the digest key secret holds fewer than {DIGEST_KEY_MIN_CHARS} characters")
    return text.encode()


class ApiKeySource:
    """The Engage API key: one Secrets Manager read per container per 5 minutes, again on demand after a 401."""

    def __init__(self, arn: str, reader: SecretReader) -> None:
        self.arn = arn
        self.reader = reader

    def get(self, *, refresh: bool = False) -> str:
        return self.reader.read(self.arn, api_key_from_secret, refresh=refresh)


def rotating_secrets(value: str, what: str) -> list[str]:
    """The secrets a value holds: one, or JSON {"current": …, "previous": …} while it is being rotated."""
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DependencyUnavailable(f"the {what} is neither a secret nor valid JSON") from exc
        given = [data.get(k) for k in ("current", "previous")] if isinstance(data, dict) else []
        found = [k.strip() for k in given if isinstance(k, str) and k.strip()]
    else:
        found = [text] if text else []
    if not found:
        raise DependencyUnavailable(f"the {what} holds no secret")
    return found
