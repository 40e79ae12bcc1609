"""The e-commerce routes on the update function: verify, map, queue, answer 200 at once."""

from __future__ import annotations

from typing import Any

from . import api_gateway, ecommerce, observability
from .command import check_size
from .observability import logger


def on_platform_request(runtime: Any, request: api_gateway.ApiRequest) -> dict[str, Any]:
    platform = ecommerce.ROUTES.get(request.path)
    served = platform is not None and platform.name in runtime.settings.platform_secret_arns
    problem = api_gateway.route_problem(request, served)
    if problem is not None:
        return problem
    try:
        raw = request.raw_body()
        check_size(raw, ecommerce.MAX_BODY_BYTES)
        if ecommerce.is_woocommerce_ping(platform, raw, request.headers):
            logger.info("webhook ping answered", extra={"platform": platform.name})
            return api_gateway.response(200, {"ping": "ok"})
        arn = runtime.settings.platform_secret_arns[platform.name]
        secrets = runtime.signing_secrets(arn, f"{platform.name} webhook secret")
        ecommerce.verify(raw, request.headers.get(platform.signature_header), secrets)
        delivery = ecommerce.to_command(platform, raw, request.headers, runtime.settings.platform_maps[platform.name])
        if delivery.ignored is None and delivery.at is not None and runtime.settings.idempotency_table:
            email = delivery.command["lookup"]["email"]
            if not runtime.last_applied.accept(platform.name, email, delivery.at):
                delivery.ignored = "older than the last event applied for this customer"
        if delivery.ignored is not None:
            observability.count("WebhooksIgnored")
            logger.info("webhook ignored", extra={"platform": platform.name, "reason": delivery.ignored,
                                                  "topic": request.headers.get(platform.topic_header)})  # fmt: skip
            return api_gateway.response(200, {"ignored": delivery.ignored})
        runtime.enqueue_update(delivery.command, delivery.key)
    except Exception as error:
        observability.failure("update", error, platform.name)
        return api_gateway.error_response(error)
    observability.count("WebhooksQueued")
    logger.info("webhook queued", extra={"platform": platform.name, "idempotencyKey": delivery.key,
                                         "attributes": sorted(delivery.command["attributes"])})  # fmt: skip
    return api_gateway.response(200, {"queued": True, "idempotencyKey": delivery.key})
