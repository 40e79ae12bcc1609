"""The contract's errors: one class per name, and one table saying what each one means.

The class name is the error's name everywhere: the Step Functions error, the
API's `error` field, the dead-letter message's `errorType`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class EngageContactError(Exception):
    """Base of every error the functions raise on purpose."""

    def __init__(self, message: str, details: dict[str, Any] | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after

    @property
    def name(self) -> str:
        return type(self).__name__


class InvalidRequest(EngageContactError):
    """The command is not JSON, not an object, or breaks one of the contract's rules."""


class NoData(EngageContactError):
    """Nothing is left to send after cleaning, or Engage answered NoData."""


class Unauthorized(EngageContactError):
    """An API request without a valid signature."""


class ContactNotFound(EngageContactError):
    """Engage has no such contact, or the lookup found no one."""


class MultipleMatches(EngageContactError):
    """The lookup matched several contacts."""


class EngageRejected(EngageContactError):
    """Any other 4xx from Engage; its body is in `details`."""


class IdempotencyConflict(EngageContactError):
    """An idempotency key seen before arrived with a different command."""


class RequestInProgress(EngageContactError):
    """The same command is being handled by another invocation right now."""


class DependencyUnavailable(EngageContactError):
    """Secrets Manager or the idempotency table cannot be reached."""


class EngageAuthError(EngageContactError):
    """Engage answered 401/403 even after the key was read again."""


class EngageRateLimited(EngageContactError):
    """Engage answered 429 after the retries this invocation allows."""


class EngageUnavailable(EngageContactError):
    """Engage answered 5xx, timed out or could not be reached after the retries allowed."""


class ConfigurationError(Exception):
    """The function's environment is missing or malformed; raised at start-up, naming the variable."""


@dataclass(frozen=True)
class ErrorPolicy:
    status: int  # the API's answer
    retryable: bool  # Step Functions retries it; SQS keeps the message for another try
    retry_after: float | None = None  # seconds the API suggests before a retry

    @property
    def dead_letter_at_once(self) -> bool:
        """An SQS message that retrying cannot mend goes to the dead-letter queue at once."""
        return not self.retryable


ERROR_POLICIES: dict[type[EngageContactError], ErrorPolicy] = {
    InvalidRequest: ErrorPolicy(400, retryable=False),
    NoData: ErrorPolicy(400, retryable=False),
    Unauthorized: ErrorPolicy(401, retryable=False),
    ContactNotFound: ErrorPolicy(404, retryable=False),
    MultipleMatches: ErrorPolicy(409, retryable=False),
    EngageRejected: ErrorPolicy(422, retryable=False),
    IdempotencyConflict: ErrorPolicy(409, retryable=False),
    RequestInProgress: ErrorPolicy(409, retryable=True, retry_after=5),
    DependencyUnavailable: ErrorPolicy(503, retryable=True, retry_after=5),
    EngageAuthError: ErrorPolicy(502, retryable=True),
    EngageRateLimited: ErrorPolicy(503, retryable=True, retry_after=10),
    EngageUnavailable: ErrorPolicy(503, retryable=True),
}

# Anything else is a defect of ours: the API answers 500 without a trace, SQS
# keeps the message (the redrive policy ends in the dead-letter queue, never a loss).
UNEXPECTED = ErrorPolicy(500, retryable=True)
UNEXPECTED_NAME = "InternalError"
UNEXPECTED_MESSAGE = "an unexpected error occurred"


class InternalError(Exception):
    """A defect of ours as its caller sees it: a fixed message, never the original exception's text.

    That text may quote a value or a secret (requests quotes a refused header's value).
    """

    def __init__(self) -> None:
        super().__init__(UNEXPECTED_MESSAGE)


def policy_of(error: BaseException) -> ErrorPolicy:
    return ERROR_POLICIES.get(type(error), UNEXPECTED) if isinstance(error, EngageContactError) else UNEXPECTED


def name_of(error: BaseException) -> str:
    return error.name if isinstance(error, EngageContactError) else UNEXPECTED_NAME
