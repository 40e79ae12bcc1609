"""Backfill: a file of existing customers (CSV or JSON Lines) into update commands, one per row.

`mapping` (which column is which attribute, which is the lookup key; the presets), `rows` (a row
into the one update command, or an invalid row with its reason), `batch` (a batch of rows queued
and counted, as the Step Functions Map hands it over, and the backfill's report), `bulk_writer` and
`bulk_update` (the backfill writer's bulk create and bulk update through Engage's bulk endpoint).
May import: `..domain`, `..errors`, `..observability`, `..aws`, `..engage`, `..ecommerce.platforms` (the
transforms), `..only_changed` (a bulk update sends only what changed, as a single update does).
"""
