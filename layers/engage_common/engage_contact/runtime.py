"""What a function builds once per container: settings, the secret reader, the Engage client, AWS clients."""

from __future__ import annotations

import json
import threading
from typing import Any

from . import observability
from .client import EngageClient, RequestPacer, new_session
from .command import message_group
from .credentials import ApiKeySource, SecretReader, rotating_secrets
from .errors import DependencyUnavailable
from .settings import AWS_ATTEMPTS, AWS_CONNECT_TIMEOUT_SECONDS, AWS_READ_TIMEOUT_SECONDS, Settings


def aws_config() -> Any:
    from botocore.config import Config

    return Config(connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS, read_timeout=AWS_READ_TIMEOUT_SECONDS,
                  retries={"total_max_attempts": AWS_ATTEMPTS, "mode": "standard"})  # fmt: skip


def _observe(name: str, value: float) -> None:
    if name == "latency":
        observability.engage_latency(value)
    elif name == "retry":
        observability.count("EngageRetries")


class Runtime:
    def __init__(self, settings: Settings, secrets: SecretReader | None = None) -> None:
        self.settings = settings
        self.secrets = secrets or SecretReader()
        self.engage = EngageClient(
            settings.engage_base_url,
            ApiKeySource(settings.api_key_secret_arn, self.secrets),
            settings.timeout_seconds,
            session=new_session(pool_size=max(settings.batch_concurrency * 2, 10), base_url=settings.engage_base_url),
            observe=_observe,
            pacer=RequestPacer(settings.max_requests_per_second),
        )
        self._queue_urls: dict[str, str] = {}
        self._lock = threading.RLock()
        self._boto3_session: Any = None
        self._clients: dict[str, Any] = {}
        self._last_applied: Any = None

    @classmethod
    def from_env(cls) -> Runtime:
        return cls(Settings.from_env())

    def signing_secrets(self, arn: str, what: str) -> list[str]:
        """A signing secret's keys (current and previous while it is rotated), read through the container's cache."""
        return self.secrets.read(arn, lambda value: rotating_secrets(value, what))

    def aws_client(self, service: str) -> Any:
        """One boto3 client per service per container, all from one session, all failing fast.

        Only the paths that need them build them (a plain command needs none). One session
        parses botocore's endpoint catalogue once: each further client costs about 50 ms, not 150.
        """
        with self._lock:  # a batch's threads may ask at once; a boto3 session is not thread-safe
            if service not in self._clients:
                if self._boto3_session is None:
                    import boto3

                    self._boto3_session = boto3.session.Session()
                self._clients[service] = self._boto3_session.client(service, config=aws_config())
            return self._clients[service]

    @property
    def sqs(self) -> Any:
        return self.aws_client("sqs")

    @property
    def last_applied(self) -> Any:
        with self._lock:
            if self._last_applied is None:
                from .ecommerce import LastApplied

                self._last_applied = LastApplied(self.settings.idempotency_table, self.aws_client("dynamodb"))
            return self._last_applied

    def enqueue_update(self, command: dict[str, Any], deduplication_id: str) -> None:
        """Put an update command on the update function's FIFO queue, its contact as the message group."""
        if not self.settings.update_queue_url:
            raise DependencyUnavailable("UPDATE_QUEUE_URL is not set: verified webhooks have nowhere to go")
        try:
            self.sqs.send_message(
                QueueUrl=self.settings.update_queue_url, MessageBody=json.dumps(command),
                MessageGroupId=message_group(command), MessageDeduplicationId=deduplication_id[:128],
            )  # fmt: skip
        except Exception as exc:
            raise DependencyUnavailable("the update queue cannot be reached") from exc

    def queue_url(self, arn: str) -> str:
        """The URL of the queue an event source ARN names (arn:aws:sqs:region:account:name), looked up once."""
        if arn not in self._queue_urls:
            *_, account, name = arn.split(":")
            self._queue_urls[arn] = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._queue_urls[arn]
