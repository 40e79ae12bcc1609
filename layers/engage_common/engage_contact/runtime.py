"""What a function builds once per container: settings, the secret reader, the Engage client, AWS clients."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from . import observability
from .client import EngageClient, RequestPacer, new_session
from .credentials import ApiKeySource, SecretReader
from .settings import Settings


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

    @classmethod
    def from_env(cls) -> Runtime:
        return cls(Settings.from_env())

    def webhook_keys(self) -> list[str]:
        from .webhooks import signing_keys

        return signing_keys(self.secrets.read(self.settings.webhook_secret_arn))

    @cached_property
    def sqs(self) -> Any:
        import boto3  # only the SQS path needs it

        return boto3.client("sqs")

    def queue_url(self, arn: str) -> str:
        """The URL of the queue an event source ARN names (arn:aws:sqs:region:account:name), looked up once."""
        if arn not in self._queue_urls:
            *_, account, name = arn.split(":")
            self._queue_urls[arn] = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._queue_urls[arn]
