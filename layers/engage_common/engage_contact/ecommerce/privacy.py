"""The routes' privacy topics, handed to the `privacy` room: queued for the erase function, answered 200."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..observability import logger
from ..privacy.topics import is_privacy_topic, privacy_command
from ..triggers import api_gateway
from .config import ShopConfig
from .deliveries import delivery_key
from .platforms import Platform

__all__ = ["is_privacy_topic", "queue_request"]


def queue_request(
    platform: Platform,
    raw: bytes,
    headers: Mapping[str, str],
    shop: ShopConfig,
    enqueue: Callable[[dict[str, Any], str, str], None],
) -> dict[str, Any]:
    """Queue a verified privacy request of `shop` for the erase function, with the shop's erasure policy from the
    shops document (whether Engage's contact goes too); the platform's 200 answer."""
    topic = headers.get(platform.topic_header, "")
    key = delivery_key(platform, raw, headers)
    command, group = privacy_command(platform.name, topic, raw, shop.shop, key, shop.erasure)
    enqueue(command, group, key)
    logger.info("privacy request queued", extra={"platform": platform.name, "topic": topic, "idempotencyKey": key})
    return api_gateway.response(200, {"queued": True, "request": command["request"], "idempotencyKey": key})
