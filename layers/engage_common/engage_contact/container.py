"""The composition root: what a function builds once per Lambda container, from its parts or from the environment.

`Container(settings, engage=..., aws=..., secrets=...)` takes its parts as arguments, so a
handler can be built with fakes; `Container.from_env()` builds the defaults. Nothing below
this module reads the environment.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from . import observability
from .aws.clients import AwsClients
from .aws.queues import Queues
from .aws.secrets import ApiKeySource, SecretReader, digest_key_from_secret, rotating_secrets
from .domain import digest_key as digests
from .domain.contacts import message_group
from .engage.client import EngageClient
from .engage.pacing import BackgroundShare, FallbackPacer, RateBudget
from .errors import ConfigurationError, DependencyUnavailable
from .http_session import new_session
from .settings import Settings
from .triggers.backoff import QueueSettings

if TYPE_CHECKING:  # built on first use: their modules are imported then, not at a cold start
    from .aws.backfill_counters import BackfillCounters
    from .aws.contact_leases import ContactLeases
    from .aws.dynamodb_light import LightDynamoDb
    from .aws.event_times import EventTimes
    from .aws.idempotency import IdempotencyGuard
    from .aws.sqs_light import LightSqs
    from .aws.webhook_ids import WebhookIds
    from .backfill.batch import Backfill
    from .backfill.rows import RowCommand
    from .ecommerce.config import ShopsSource
    from .ecommerce.last_applied import LastApplied
    from .ecommerce.route import PlatformRoute
    from .only_changed import SentRecord
    from .privacy.guard import ErasureGuard

T = TypeVar("T")


def _observe(name: str, value: float) -> None:
    if name == "latency":
        observability.engage_latency(value)
    elif name == "retry":
        observability.count("EngageRetries")
    elif name == "turn_missed":
        observability.count("RateTurnsMissed", value)


def light_dynamodb() -> LightDynamoDb:
    """The container's one DynamoDB client for the table (no boto3 client: see `aws.json_protocol`)."""
    from .aws.dynamodb_light import LightDynamoDb

    return LightDynamoDb()


def rate_budget(settings: Settings, dynamodb: Callable[[], Any] | None = None, background: bool = False) -> RateBudget:
    """The deployment's one budget toward Engage, shared through the table; this container's share without one.

    `background` (a backfill writer's container): its turns are paced first at BACKFILL_RATE_SHARE of the
    budget, a schedule in the table the writer's containers share (without the table: each its part, the share
    over BACKFILL_WRITER_CONTAINERS), so live calls always find the rest of it free.
    """
    shared = _shared_budget(settings, dynamodb, background)
    if not background:
        return shared
    rate = settings.requests_per_second * settings.backfill_rate_share
    own = FallbackPacer(rate / settings.backfill_writer_containers)  # this container's part, without the table
    if not settings.idempotency_table:
        return BackgroundShare(shared, own)
    from .aws.rate_budget import KEY as BUDGET_KEY
    from .aws.rate_budget import SharedRateBudget

    # the share itself is a schedule in the table too: the writer's containers keep to it together, and a lone
    # one (a small backfill is one delivery) has all of it; only they use it, so it leases ten turns at a time
    assert isinstance(shared, SharedRateBudget)  # with the table, the deployment's budget is the table's
    share = SharedRateBudget(settings.idempotency_table, shared.client, rate, own, key=f"{BUDGET_KEY}#backfill")
    return BackgroundShare(shared, share)


def _shared_budget(settings: Settings, dynamodb: Callable[[], Any] | None, background: bool = False) -> RateBudget:
    """`background`: one turn a lease. A batched lease books its turns ahead of now (ten at 45/s: 0.22 s), and a
    live call arriving behind a backfill's lease would wait for all of them."""
    fallback = FallbackPacer(settings.requests_per_second / settings.containers_at_once)
    if not settings.idempotency_table:
        return fallback
    from .aws.rate_budget import LEASE_MAX, SharedRateBudget

    if dynamodb is None:
        store = light_dynamodb()  # every command leases before it calls Engage: no boto3 client for that
        dynamodb = lambda: store  # noqa: E731
    lease_max = 1 if background else LEASE_MAX
    return SharedRateBudget(settings.idempotency_table, dynamodb, settings.requests_per_second, fallback,
                            lease_max=lease_max)  # fmt: skip


def engage_client(
    settings: Settings, secrets: SecretReader, dynamodb: Callable[[], Any] | None = None, background: bool = False
) -> EngageClient:
    """The Engage client a deployment's settings describe, its key read through `secrets`."""
    return EngageClient(
        settings.engage_base_url,
        ApiKeySource(settings.api_key_secret_arn, secrets),
        settings.timeout_seconds,
        session=new_session(pool_size=max(settings.batch_concurrency * 2, 10), base_url=settings.engage_base_url),
        observe=_observe,
        budget=rate_budget(settings, dynamodb, background),
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
        background: bool = False,
    ) -> None:
        """`background`: the backfill writer's container (its Engage calls yield to live ones)."""
        self.settings = settings
        self.secrets = secrets or SecretReader()
        self.aws = aws or AwsClients()
        self._lock = threading.RLock()  # a store built once builds the client it uses once
        self._built: dict[str, Any] = {}
        if engage is not None:
            self._built["engage"] = engage
        self.background = background
        self.queues = Queues(self.sqs)
        self.queue_settings = QueueSettings(
            settings.dead_letter_queue_url, settings.max_receive_count, settings.batch_concurrency
        )
        if settings.digest_key_secret_arn:
            digests.install(self.digest_key)  # every digest of personal data, in this container, is keyed by it

    @classmethod
    def from_env(cls, background: bool = False) -> Container:
        return cls(Settings.from_env(), background=background)

    @property
    def engage(self) -> EngageClient:
        """The Engage client, built on first use: the intake functions (webhooks, backfill batches) never build
        one, and their roles cannot read the key; the operation functions build it at start (`make_handler`)."""
        return self.once("engage", lambda: engage_client(self.settings, self.secrets, self.dynamodb, self.background))

    def signing_secrets(self, arn: str, what: str) -> list[str]:
        """A signing secret's keys (current and previous while it is rotated), read through the container's cache."""
        return self.secrets.read(arn, lambda value: rotating_secrets(value, what))

    def once(self, name: str, build: Callable[[], T]) -> T:
        """`build()` the first time `name` is asked for, in this container; the same object after."""
        with self._lock:  # a batch's records may ask at once
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    def read_engage_key_early(self) -> None:
        """Start reading the Engage key, once per container, beside a keyed command's first table write: the
        first Engage call then finds it read instead of adding its round trip (the read is the one it would do)."""

        def read() -> None:
            with contextlib.suppress(Exception):  # the Engage call reads it again, and says why it failed
                self.engage.api_key.get()

        def start() -> threading.Thread:
            # with the invocation's context: an API request's bound on AWS calls (`calls_end_by`) holds for it too
            thread = threading.Thread(
                target=contextvars.copy_context().run, args=(read,), name="engage-key", daemon=True
            )
            thread.start()
            return thread

        self.once("engage_key_early", start)

    def dynamodb(self) -> LightDynamoDb:
        """The one DynamoDB client of the table's stores and the rate budget, built on first use."""
        return self.once("dynamodb", light_dynamodb)

    def sqs(self) -> LightSqs:
        """The one SQS client (no boto3 client: see `aws.sqs_light`), built on first use."""

        def build() -> LightSqs:
            from .aws.sqs_light import LightSqs

            return LightSqs()

        return self.once("sqs", build)

    def table_store(self, name: str, store_class: Callable[[], Callable[[str, LightDynamoDb], T]]) -> T | None:
        """A store kept in the idempotency table (`store_class()(table, the light DynamoDB client)`), built once;
        None without a table. The class is imported by `store_class` then: a path that never uses it pays nothing."""
        table = self.settings.idempotency_table
        if not table:
            return None
        return self.once(name, lambda: store_class()(table, self.dynamodb()))

    def idempotency_guard(self) -> IdempotencyGuard | None:
        """Built on the first command that has a key: a cold start without one pays nothing for it."""

        def store_class() -> type[IdempotencyGuard]:
            from .aws.idempotency import IdempotencyGuard

            return IdempotencyGuard

        return self.table_store("idempotency", store_class)

    def last_applied(self) -> LastApplied | None:
        """The newest platform event accepted per customer."""

        def store_class() -> type[LastApplied]:
            from .ecommerce.last_applied import LastApplied

            return LastApplied

        return self.table_store("last_applied", store_class)

    def event_times(self) -> EventTimes | None:
        """The newest event time applied per contact; None without an idempotency table (no check then)."""

        def store_class() -> type[EventTimes]:
            from .aws.event_times import EventTimes

            return EventTimes

        return self.table_store("event_times", store_class)

    def contact_leases(self) -> ContactLeases | None:
        """One write at a time per contact on the API and direct paths; None without the table."""

        def store_class() -> type[ContactLeases]:
            from .aws.contact_leases import ContactLeases

            return ContactLeases

        return self.table_store("contact_leases", store_class)

    def webhook_ids(self) -> WebhookIds | None:
        """Each signed API request's webhook-id and the route it was first used on; None without the table."""

        def store_class() -> type[WebhookIds]:
            from .aws.webhook_ids import WebhookIds

            return WebhookIds

        return self.table_store("webhook_ids", store_class)

    def shops(self) -> ShopsSource | None:
        """The shops document (`ecommerce.config.ShopsSource`); None when the deployment serves no shop."""
        arn = self.settings.platforms.shops_secret_arn
        if arn is None:
            return None

        def build() -> ShopsSource:
            from .ecommerce.config import ShopsSource

            return ShopsSource(arn, self.secrets.read, self.settings.catalogue)

        return self.once("shops", build)

    def check_shops(self) -> None:
        """At start: the shops document read and checked, and what it asks of the deployment present."""
        source = self.shops()
        if source is None:
            return
        promoting = source.check().promoting()
        if promoting and not self.settings.promote_queue_url:
            shop = promoting[0]
            raise ConfigurationError(
                f"PROMOTE_QUEUE_URL is not set, but the shops document's {shop.platform} shop "
                f"'{shop.shop}' asks for promotions (promoteOnAccount)"
            )

    def erasure_guard(self) -> ErasureGuard | None:
        """Privacy on the command path (a command queued before an erasure, a shop customer's link); None
        without the table."""
        table = self.settings.idempotency_table
        if not table:
            return None

        def build() -> ErasureGuard:
            from .privacy.guard import ErasureGuard

            return ErasureGuard(table, self.dynamodb())

        return self.once("erasure_guard", build)

    def enqueue_privacy(self, command: dict[str, Any], group: str, deduplication_id: str) -> None:
        """Put a privacy command (a shop's privacy topic) on the erase function's FIFO queue."""
        if not self.settings.erase_queue_url:
            raise DependencyUnavailable("ERASE_QUEUE_URL is not set: privacy requests have nowhere to go")
        self.queues.send_command(self.settings.erase_queue_url, command, group, deduplication_id)

    def platform_route(self) -> PlatformRoute:
        def build() -> PlatformRoute:
            from .ecommerce.route import PlatformRoute

            return PlatformRoute(
                self.shops, self.last_applied, self.enqueue_update, self.enqueue_promote, self.enqueue_privacy
            )

        return self.once("platform_route", build)

    def sent_record(self) -> SentRecord | None:
        """What Engage last confirmed per contact (only what changed); None without the table or with a TTL of 0."""
        table = self.settings.idempotency_table
        if not table or not self.settings.sent_digests_ttl_days:
            return None

        def build() -> SentRecord:
            from .aws.sent_digests import SentDigests
            from .only_changed import SentRecord

            lifetime = self.settings.sent_digests_ttl_days * 24 * 3600
            store = SentDigests(table, self.dynamodb(), lifetime)
            return SentRecord(store, lambda: digests.subkey("sent digests"))

        return self.once("sent_record", build)

    def digest_key(self) -> bytes:
        """The deployment's digest key (its own secret), read once per container and kept: it never rotates with
        the Engage key, so message groups, clocks, sent digests and audit subjects outlive an Engage key's rotation.
        A failed read is not kept: the next digest reads again."""
        arn = self.settings.digest_key_secret_arn
        if not arn:
            raise ConfigurationError("DIGEST_KEY_SECRET_ARN is not set")
        return self.once("digest_key", lambda: self.secrets.read(arn, digest_key_from_secret))

    def enqueue_promote(self, command: dict[str, Any], deduplication_id: str) -> None:
        """Put a promote command on the promote function's FIFO queue, its contact as the message group."""
        self.queues.send_command(self.settings.promote_queue_url, command, message_group(command), deduplication_id)

    def backfill(self) -> Backfill:
        """A backfill's batches, checks and reports (the backfill function's Step Functions tasks)."""

        def build() -> Backfill:
            from .backfill.batch import Backfill

            return Backfill(self.settings.catalogue, self.enqueue_rows, self.backfill_counters)

        return self.once("backfill", build)

    def backfill_counters(self) -> BackfillCounters | None:
        """Each backfill's counters, in the idempotency table; None without one."""
        table = self.settings.idempotency_table
        if not table:
            return None

        def build() -> BackfillCounters:
            from .aws.backfill_counters import BackfillCounters

            return BackfillCounters(table, self.dynamodb())

        return self.once("backfill_counters", build)

    def enqueue_rows(self, commands: list[RowCommand]) -> None:
        """A backfill batch's commands (`backfill.rows.RowCommand`): one chunk on the backfill's own queue (its
        writer sends new customers to Engage's bulk endpoint), apart from live traffic; without that queue, each
        command on the update queue, in row order."""
        if not commands:
            return
        if self.settings.backfill_queue_url:
            from .backfill.bulk_writer import chunk_body
            from .backfill.rows import first_row

            backfill_id, row = first_row(commands)
            body = chunk_body(backfill_id, row, [(c.row, c.command) for c in commands])
            self.queues.send_body(self.settings.backfill_queue_url, body)
            return
        entries = [(c.command, c.group, c.deduplication_id) for c in commands]
        self.queues.send_commands(self.settings.update_queue_url, entries)

    def enqueue_update(self, command: dict[str, Any], deduplication_id: str) -> None:
        """Put an update command on the update function's FIFO queue, its contact as the message group."""
        if not self.settings.update_queue_url:
            raise DependencyUnavailable("UPDATE_QUEUE_URL is not set: verified webhooks have nowhere to go")
        self.queues.send_command(self.settings.update_queue_url, command, message_group(command), deduplication_id)
