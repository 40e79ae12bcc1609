"""The e-commerce routes on the update function: verify, map, queue, answer 200 at once."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import observability
from ..domain.json_body import check_size
from ..errors import Unauthorized
from ..observability import logger
from ..triggers import api_gateway
from .config import PlatformSettings
from .deliveries import MAX_PLATFORM_BODY_BYTES, Delivery, is_woocommerce_ping, to_command
from .last_applied import LastApplied, Verdict
from .platforms import ROUTES, Platform, shop_name
from .signature import verify_platform_signature

API_VERSION = re.compile(r"\d{4}-\d{2}|unstable")


def record_api_version(platform: Platform, headers: dict[str, str]) -> None:
    """The platform API version a delivery was shaped by, in the log and as a metric (its dimension), so a shop
    still on an old version (consent inside the customer) is seen before that version goes."""
    if not platform.version_header:
        return
    given = headers.get(platform.version_header, "").strip()
    version = given if API_VERSION.fullmatch(given) else "unknown"
    observability.count_by("WebhookApiVersions", "ApiVersion", version)
    logger.info("webhook api version", extra={"platform": platform.name, "apiVersion": version})


@dataclass
class PlatformRoute:
    """What the e-commerce routes need of the container."""

    settings: PlatformSettings
    signing_secrets: Callable[[str, str], list[str]]  # (ARN, what) -> the secret's keys
    last_applied: Callable[[], LastApplied | None]  # None without an idempotency table
    enqueue_update: Callable[[dict[str, Any], str], None]  # (command, deduplication id)
    enqueue_promote: Callable[[dict[str, Any], str], None] | None = None  # (command, deduplication id)

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
                                             "topic": request.headers.get(platform.topic_header),
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
        shop = self.settings.shop_for(platform.name, request.headers.get(platform.source_header, ""))
        delivery = self.queue(platform, to_command(platform, raw, request.headers, shop), request.headers)
        if delivery.ignored is not None:
            return api_gateway.response(200, {"ignored": delivery.ignored}), delivery
        return None, delivery

    def queue(self, platform: Platform, delivery: Delivery, headers: dict[str, str]) -> Delivery:
        """Queue a mapped delivery (and its promotion), unless it is ignored or older than what was applied."""
        record_api_version(platform, headers)
        self.refuse_if_older(platform, delivery)
        if delivery.ignored is not None:
            observability.count("WebhooksIgnored")
            logger.info("webhook ignored", extra={"platform": platform.name, "reason": delivery.ignored,
                                                  "topic": headers.get(platform.topic_header)})  # fmt: skip
            return delivery
        self.enqueue_update(delivery.command, delivery.key)
        if delivery.promote is not None and self.enqueue_promote is not None and self.first_promotion(delivery):
            # the promote function's own queue, the same message group (the customer), its own deduplication id
            self.enqueue_promote(delivery.promote, f"{delivery.key}-promote")
            observability.count("PromotionsQueued")
        return delivery

    def first_promotion(self, delivery: Delivery) -> bool:
        """Whether no promotion of this customer was queued for an event as new as this one: an account enabled
        arrives as customers/enable and as an update stamped alike (and each is retried), and is promoted once."""
        last_applied = self.last_applied() if delivery.at is not None else None
        if last_applied is None:
            return True
        return last_applied.first_at("promote", delivery.customer, delivery.at)

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
        clock = platform.name if delivery.clock == "profile" else f"{platform.name}#{delivery.clock}"
        verdict = last_applied.accept(clock, delivery.customer, delivery.at, delivery.digest)
        if verdict is not Verdict.ACCEPTED:
            delivery.ignored = verdict.value
