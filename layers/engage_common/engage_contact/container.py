"""The composition root: what a function builds once per Lambda container, from its parts or from the environment.

`Container(settings, engage=..., aws=..., secrets=...)` takes its parts as arguments, so a
handler can be built with fakes; `Container.from_env()` builds the defaults. Nothing below
this module reads the environment.
"""

from __future__ import annotations

import threading
from typing import Any

from . import observability
from .aws.clients import AwsClients
from .aws.queues import Queues
from .aws.secrets import ApiKeySource, SecretReader, rotating_secrets
from .domain.contacts import message_group
from .engage.client import EngageClient
from .engage.pacing import RequestPacer
from .errors import DependencyUnavailable
from .http_session import new_session
from .settings import Settings
from .triggers.sqs import QueueSettings


def _observe(name: str, value: float) -> None:
    if name == "latency":
        observability.engage_latency(value)
    elif name == "retry":
        observability.count("EngageRetries")


def engage_client(settings: Settings, secrets: SecretReader) -> EngageClient:
    """The Engage client a deployment's settings describe, its key read through `secrets`."""
    return EngageClient(
        settings.engage_base_url,
        ApiKeySource(settings.api_key_secret_arn, secrets),
        settings.timeout_seconds,
        session=new_session(pool_size=max(settings.batch_concurrency * 2, 10), base_url=settings.engage_base_url),
        observe=_observe,
        pacer=RequestPacer(settings.max_requests_per_second),
        version=settings.engage_api_version,
    )


class Container:
    def __init__(
        self,
        settings: Settings,
        *,
        secrets: SecretReader | None = None,
        engage: EngageClient | None = None,
        aws: AwsClients | None = None,
    ) -> None:
        self.settings = settings
        self.secrets = secrets or SecretReader()
        self.engage = engage or engage_client(settings, self.secrets)
        self.aws = aws or AwsClients()
        self.queues = Queues(lambda: self.aws("sqs"))
        self.queue_settings = QueueSettings(
            settings.dead_letter_queue_url, settings.max_receive_count, settings.batch_concurrency
        )
        self._lock = threading.Lock()
        self._built: dict[str, Any] = {}

    @classmethod
    def from_env(cls) -> Container:
        return cls(Settings.from_env())

    def signing_secrets(self, arn: str, what: str) -> list[str]:
        """A signing secret's keys (current and previous while it is rotated), read through the container's cache."""
        return self.secrets.read(arn, lambda value: rotating_secrets(value, what))

    def once(self, name: str, build: Any) -> Any:
        """`build()` the first time `name` is asked for, in this container; the same object after."""
        with self._lock:  # a batch's records may ask at once
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    def idempotency_guard(self) -> Any:
        """Built on the first command that has a key: a cold start without one pays nothing for it."""
        if not self.settings.idempotency_table:
            return None

        def build() -> Any:
            from .aws.idempotency import IdempotencyGuard

            return IdempotencyGuard(self.settings.idempotency_table, self.aws("dynamodb"))

        return self.once("idempotency", build)

    def platform_route(self) -> Any:
        def build() -> Any:
            from .ecommerce.route import PlatformRoute

            return PlatformRoute(self.settings.platforms, self.signing_secrets, self.last_applied, self.enqueue_update)

        return self.once("platform_route", build)

    def last_applied(self) -> Any:
        if not self.settings.idempotency_table:
            return None

        def build() -> Any:
            from .ecommerce.last_applied import LastApplied

            return LastApplied(self.settings.idempotency_table, self.aws("dynamodb"))

        return self.once("last_applied", build)

    def event_times(self) -> Any:
        """The newest event time applied per contact; None without an idempotency table (no check then)."""
        if not self.settings.idempotency_table:
            return None

        def build() -> Any:
            from .aws.event_times import EventTimes

            return EventTimes(self.settings.idempotency_table, self.aws("dynamodb"))

        return self.once("event_times", build)

    def backfill(self) -> Any:
        """A backfill's batches, checks and reports (the update function's Step Functions shapes)."""

        def build() -> Any:
            from .backfill.batch import Backfill

            return Backfill(self.settings.catalogue, self.enqueue_rows, self.backfill_counters)

        return self.once("backfill", build)

    def backfill_counters(self) -> Any:
        """Each backfill's counters, in the idempotency table; None without one."""
        if not self.settings.idempotency_table:
            return None

        def build() -> Any:
            from .aws.backfill_counters import BackfillCounters

            return BackfillCounters(self.settings.idempotency_table, self.aws("dynamodb"))

        return self.once("backfill_counters", build)

    def enqueue_rows(self, commands: list[Any]) -> None:
        """A backfill batch's commands (`backfill.rows.RowCommand`) on the update queue, in row order."""
        entries = [(c.command, c.group, c.deduplication_id) for c in commands]
        self.queues.send_commands(self.settings.update_queue_url, entries)

    def enqueue_update(self, command: dict[str, Any], deduplication_id: str) -> None:
        """Put an update command on the update function's FIFO queue, its contact as the message group."""
        if not self.settings.update_queue_url:
            raise DependencyUnavailable("UPDATE_QUEUE_URL is not set: verified webhooks have nowhere to go")
        self.queues.send_command(self.settings.update_queue_url, command, message_group(command), deduplication_id)
