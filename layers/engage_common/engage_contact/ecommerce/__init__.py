"""Shopify and WooCommerce: their customer webhooks verified their own way, mapped to update commands, queued.

May import: `..domain`, `..errors`, `..observability`, `..triggers` (API Gateway answers). Never the Engage client.
"""
