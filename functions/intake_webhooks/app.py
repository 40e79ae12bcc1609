"""Shopify and WooCommerce webhooks: verify the platform's signature, map, queue; no Engage client, no Engage key."""

from engage_contact.intake import make_webhook_intake

lambda_handler = make_webhook_intake()
