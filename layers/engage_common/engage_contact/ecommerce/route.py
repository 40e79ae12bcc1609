"""The e-commerce routes on the update function: verify, map, queue, answer 200 at once."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import observability
from ..domain.json_body import check_size
from ..errors import Unauthorized
from ..observability import logger
from ..triggers import api_gateway
from . import privacy
from .config import ShopConfig, Shops, ShopsSource
from .deliveries import MAX_PLATFORM_BODY_BYTES, Delivery, is_woocommerce_ping, to_command
from .last_applied import LastApplied, Verdict
from .platforms import PLATFORMS, ROUTES, Platform
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


def clock_of(platform: Platform, delivery: Delivery) -> str:
    """The clock a delivery is ordered on: the platform's profile clock, or one consent channel's own."""
    return platform.name if delivery.clock == "profile" else f"{platform.name}#{delivery.clock}"


@dataclass
class PlatformRoute:
    """What the e-commerce routes need of the container."""

    shops: Callable[[], ShopsSource | None]  # the shops document; None when the deployment serves no shop
    last_applied: Callable[[], LastApplied | None]  # None without an idempotency table
    enqueue_update: Callable[[dict[str, Any], str], None]  # (command, deduplication id)
    enqueue_promote: Callable[[dict[str, Any], str], None] | None = None  # (command, deduplication id)
    enqueue_privacy: Callable[[dict[str, Any], str, str], None] | None = None  # (command, group, deduplication id)

    def __call__(self, request: api_gateway.ApiRequest) -> dict[str, Any]:
        platform = ROUTES.get(request.path)
        if platform is None:
            return api_gateway.not_found(request)
        try:
            source = self.shops()
            shops = source.get() if source is not None else None
        except Exception as error:  # the document cannot be read now: the platform retries
            observability.failure("update", error, platform.name)
            return api_gateway.error_response(error)
        if shops is None or not shops.serves(platform.name):
            return api_gateway.not_found(request)
        problem = api_gateway.route_problem(request, served=True)
        if problem is not None:
            return problem
        try:
            delivery = self.accept(platform, shops, request)
        except Exception as error:
            observability.failure("update", error, platform.name)
            return api_gateway.error_response(error)
        if not isinstance(delivery, Delivery):
            return delivery  # the answer to a ping, a privacy request or an ignored delivery
        observability.count("WebhooksQueued")
        logger.info(
            "webhook queued",
            extra={
                "platform": platform.name,
                "idempotencyKey": delivery.key,
                "topic": request.headers.get(platform.topic_header),
                "attributes": sorted(delivery.queued()["attributes"]),
            },
        )
        return api_gateway.response(200, {"queued": True, "idempotencyKey": delivery.key})

    def accept(self, platform: Platform, shops: Shops, request: api_gateway.ApiRequest) -> Delivery | dict[str, Any]:
        """Queue a verified delivery (returned); an answer of its own for a ping, a privacy request or an ignored
        delivery."""
        raw = request.raw_body()
        check_size(raw, MAX_PLATFORM_BODY_BYTES)
        if is_woocommerce_ping(platform, raw, request.headers):
            logger.info("webhook ping answered", extra={"platform": platform.name})
            return api_gateway.response(200, {"ping": "ok"})
        shop = self.listed_shop(platform, shops, request.headers)
        verify_platform_signature(raw, request.headers.get(platform.signature_header), list(shop.secrets))
        if self.enqueue_privacy is not None and privacy.is_privacy_topic(
            platform.name, request.headers.get(platform.topic_header, "")
        ):  # a privacy request: queued for the erase function, which acts on it
            return privacy.queue_request(platform, raw, request.headers, shop, self.enqueue_privacy)
        delivery = self.queue(platform, to_command(platform, raw, request.headers, shop), request.headers)
        if delivery.ignored is not None:
            return api_gateway.response(200, {"ignored": delivery.ignored})
        return delivery

    @staticmethod
    def listed_shop(platform: Platform, shops: Shops, headers: Mapping[str, str]) -> ShopConfig:
        """The delivery's shop, as the shops document lists it; Unauthorized (and counted) for any other: a public
        app's secret is shared by every store that installs it, so holding the secret is not enough."""
        shop = shops.find(platform.name, headers.get(platform.source_header, ""))
        if shop is None:
            observability.count("WebhooksFromUnknownShops")
            logger.warning("webhook from a shop not in the shops document", extra={"platform": platform.name})
            raise Unauthorized("the delivery's shop is not one the deployment's shops document lists")
        return shop

    def on_eventbridge(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A Shopify delivery through an EventBridge partner event source: `detail.payload` is the topic's body,
        `detail.metadata` the headers HTTPS would carry. No signature (AWS delivered it from the shop's app), so
        the shop must still be one the document lists; the same mapping, stale and replay rules follow. An
        answer for what is refused or ignored (EventBridge retrying it would not mend it); an error to retry."""
        platform = PLATFORMS["shopify"]
        detail = event.get("detail")
        payload = detail.get("payload") if isinstance(detail, dict) else None
        metadata = detail.get("metadata") if isinstance(detail, dict) else None
        if not isinstance(payload, dict) or not isinstance(metadata, dict):
            return self.refused("the EventBridge event has no detail.payload and detail.metadata objects")
        headers = {str(k).lower(): str(v) for k, v in metadata.items() if v is not None}
        source = self.shops()
        shops = source.get() if source is not None else None
        if shops is None or not shops.serves(platform.name):
            return self.refused("the deployment serves no Shopify shop (no shops document)")
        try:
            shop = self.listed_shop(platform, shops, headers)
        except Unauthorized as error:
            return self.refused(error.message)
        # the body as a canonical text: one event, retried by EventBridge, has one digest
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        delivery = self.queue(platform, to_command(platform, raw, headers, shop), headers)
        if delivery.ignored is not None:
            return {"ignored": delivery.ignored}
        observability.count("WebhooksQueued")
        logger.info(
            "eventbridge event queued",
            extra={
                "platform": platform.name,
                "idempotencyKey": delivery.key,
                "topic": headers.get(platform.topic_header),
            },
        )
        return {"queued": True, "idempotencyKey": delivery.key}

    @staticmethod
    def refused(reason: str) -> dict[str, Any]:
        observability.count("EventBridgeEventsRefused")
        logger.warning("eventbridge event refused", extra={"reason": reason})
        return {"refused": reason}

    def queue(self, platform: Platform, delivery: Delivery, headers: dict[str, str]) -> Delivery:
        """Queue a mapped delivery (and its promotion), unless it is ignored or older than what was applied."""
        record_api_version(platform, headers)
        if delivery.clamped:
            observability.count("EventTimesClamped")
            logger.warning("webhook event time ahead of the clock: now used", extra={"platform": platform.name})
        self.refuse_if_older(platform, delivery)
        if delivery.ignored is not None:
            observability.count("WebhooksIgnored")
            logger.info(
                "webhook ignored",
                extra={
                    "platform": platform.name,
                    "reason": delivery.ignored,
                    "topic": headers.get(platform.topic_header),
                },
            )
            return delivery
        try:
            self.enqueue(delivery)
        except Exception:
            self.release(platform, delivery)  # the platform retries what was answered an error: not a replay then
            raise
        return delivery

    def enqueue(self, delivery: Delivery) -> None:
        """Queue everything a delivery needs (FIFO deduplication absorbs what a retry queues again)."""
        self.enqueue_update(delivery.queued(), delivery.key)
        if delivery.promote is not None and self.enqueue_promote is not None and self.first_promotion(delivery):
            # the promote function's own queue, the same message group (the customer), its own deduplication id
            try:
                self.enqueue_promote(delivery.promote, f"{delivery.key}-promote")
            except Exception:
                self.forget_promotion(delivery)
                raise
            observability.count("PromotionsQueued")

    def forget_promotion(self, delivery: Delivery) -> None:
        """Give back the claim of a promotion that could not be queued: the platform's retry promotes."""
        last_applied = self.last_applied()
        if last_applied is None or delivery.at is None:
            return
        try:
            last_applied.forget_at("promote", delivery.customer, delivery.at)
        except Exception as error:
            observability.fallback("PromotionClaimNotReleased", error)

    def release(self, platform: Platform, delivery: Delivery) -> None:
        """Give back a delivery's claim when it was not wholly queued; a failure here leaves the 503 as it is."""
        last_applied = self.last_applied()
        if last_applied is None or delivery.at is None:
            return
        try:
            last_applied.release(clock_of(platform, delivery), delivery.customer, delivery.at, delivery.digest)
        except Exception as error:
            observability.fallback("DeliveryClaimNotReleased", error)

    def first_promotion(self, delivery: Delivery) -> bool:
        """Whether no promotion of this customer was queued for an event as new as this one: an account enabled
        arrives as customers/enable and as an update stamped alike (and each is retried), and is promoted once."""
        last_applied = self.last_applied()
        if last_applied is None or delivery.at is None:
            return True
        return last_applied.first_at("promote", delivery.customer, delivery.at)

    def refuse_if_older(self, platform: Platform, delivery: Delivery) -> None:
        """Ignore a delivery older than the customer's last one applied, or the same one again (a replay)."""
        if delivery.ignored is not None or delivery.at is None:
            return
        last_applied = self.last_applied()
        if last_applied is None:
            return
        verdict = last_applied.accept(clock_of(platform, delivery), delivery.customer, delivery.at, delivery.digest)
        if verdict is not Verdict.ACCEPTED:
            delivery.ignored = verdict.value
