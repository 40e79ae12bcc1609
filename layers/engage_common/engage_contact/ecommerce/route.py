"""The e-commerce routes on the update function: verify, map, queue, answer 200 at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import observability
from ..domain.json_body import check_size
from ..errors import Unauthorized
from ..observability import logger
from ..triggers import api_gateway
from . import privacy
from .config import PlatformSettings
from .deliveries import MAX_PLATFORM_BODY_BYTES, Delivery, is_woocommerce_ping, to_command
from .last_applied import LastApplied, Verdict
from .platforms import ROUTES, Platform, shop_name
from .signature import verify_platform_signature


@dataclass
class PlatformRoute:
    """What the e-commerce routes need of the container."""

    settings: PlatformSettings
    signing_secrets: Callable[[str, str], list[str]]  # (ARN, what) -> the secret's keys
    last_applied: Callable[[], LastApplied | None]  # None without an idempotency table
    enqueue_update: Callable[[dict[str, Any], str], None]  # (command, deduplication id)
    enqueue_promote: Callable[[dict[str, Any], str], None] | None = None  # (command, deduplication id)
    enqueue_privacy: Callable[[dict[str, Any], str, str], None] | None = None  # (command, group, deduplication id)

    def __call__(self, request: api_gateway.ApiRequest) -> dict[str, Any]:
        platform = ROUTES.get(request.path)
        served = platform is not None and platform.name in self.settings.secret_arns
        problem = api_gateway.route_problem(request, served)
        if problem is not None:
            return problem
        try:
            answer, delivery = self.accept(platform, request)
        except Exception as error:
            observability.failure("update", error, platform.name)
            return api_gateway.error_response(error)
        if answer is not None:
            return answer
        observability.count("WebhooksQueued")
        logger.info("webhook queued", extra={"platform": platform.name, "idempotencyKey": delivery.key,
                                             "attributes": sorted(delivery.command["attributes"])})  # fmt: skip
        return api_gateway.response(200, {"queued": True, "idempotencyKey": delivery.key})

    def accept(self, platform: Platform, request: api_gateway.ApiRequest) -> tuple[dict | None, Delivery | None]:
        """Queue a verified delivery; an answer of its own for a ping or an ignored delivery."""
        raw = request.raw_body()
        check_size(raw, MAX_PLATFORM_BODY_BYTES)
        if is_woocommerce_ping(platform, raw, request.headers):
            logger.info("webhook ping answered", extra={"platform": platform.name})
            return api_gateway.response(200, {"ping": "ok"}), None
        secrets = self.signing_secrets(self.settings.secret_arns[platform.name], f"{platform.name} webhook secret")
        verify_platform_signature(raw, request.headers.get(platform.signature_header), secrets)
        self.refuse_other_shops(platform, request.headers)
        topic = request.headers.get(platform.topic_header, "")
        if self.enqueue_privacy is not None and privacy.is_privacy_topic(platform.name, topic):
            return privacy.queue_request(platform, raw, request.headers, self.enqueue_privacy), None
        delivery = to_command(platform, raw, request.headers, self.settings.maps[platform.name],
                              self.settings.create_if_missing.get(platform.name),
                              send_only_changed=self.settings.send_only_changed.get(platform.name, True),
                              promote_on_account=self.settings.promote_on_account.get(platform.name))  # fmt: skip
        self.refuse_if_older(platform, delivery)
        if delivery.ignored is not None:
            observability.count("WebhooksIgnored")
            logger.info("webhook ignored", extra={"platform": platform.name, "reason": delivery.ignored,
                                                  "topic": request.headers.get(platform.topic_header)})  # fmt: skip
            return api_gateway.response(200, {"ignored": delivery.ignored}), delivery
        privacy.tag_origin(delivery.command, platform, raw, request.headers)
        self.enqueue_update(delivery.command, delivery.key)
        if delivery.promote is not None and self.enqueue_promote is not None:
            # the promote function's own queue, the same message group (the customer), its own deduplication id
            self.enqueue_promote(delivery.promote, f"{delivery.key}-promote")
            observability.count("PromotionsQueued")
        return None, delivery

    def refuse_other_shops(self, platform: Platform, headers: dict[str, str]) -> None:
        """Unauthorized when the deployment names its shops and the delivery's is not one of them."""
        accepted = self.settings.sources.get(platform.name)
        if accepted and shop_name(headers.get(platform.source_header, "")) not in accepted:
            raise Unauthorized(f"the delivery's shop is not one this deployment accepts ({platform.source_setting})")

    def refuse_if_older(self, platform: Platform, delivery: Delivery) -> None:
        """Ignore a delivery older than the customer's last one applied, or the same one again (a replay)."""
        if delivery.ignored is not None or delivery.at is None:
            return
        last_applied = self.last_applied()
        if last_applied is None:
            return
        verdict = last_applied.accept(platform.name, delivery.command["lookup"]["email"], delivery.at, delivery.digest)
        if verdict is not Verdict.ACCEPTED:
            delivery.ignored = verdict.value
