"""The routes' privacy topics, handed to the `privacy` room: queued for the erase function, answered 200."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..observability import logger
from ..privacy.topics import is_privacy_topic, origin_of, privacy_command
from ..triggers import api_gateway
from .deliveries import delivery_key
from .platforms import Platform

__all__ = ["is_privacy_topic", "queue_request", "tag_origin"]


def queue_request(platform: Platform, raw: bytes, headers: Mapping[str, str],
                  enqueue: Callable[[dict[str, Any], str, str], None]) -> dict[str, Any]:  # fmt: skip
    """Queue a verified privacy request for the erase function; the platform's 200 answer."""
    topic = headers.get(platform.topic_header, "")
    key = delivery_key(platform, raw)
    command, group = privacy_command(platform.name, topic, raw, headers.get(platform.source_header, ""), key)
    enqueue(command, group, key)
    logger.info("privacy request queued", extra={"platform": platform.name, "topic": topic, "idempotencyKey": key})
    return api_gateway.response(200, {"queued": True, "request": command["request"], "idempotencyKey": key})


def tag_origin(command: dict[str, Any], platform: Platform, raw: bytes, headers: Mapping[str, str]) -> None:
    """Name the shop customer an update comes from, so the update function records who they are."""
    origin = origin_of(platform.name, raw, headers.get(platform.source_header, ""))
    if origin is not None:
        command["origin"] = origin
