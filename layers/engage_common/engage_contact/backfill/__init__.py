"""Backfill: a file of existing customers (CSV or JSON Lines) into update commands, one per row.

`mapping` (which column is which attribute, which is the lookup key; the presets), `rows` (a row
into the one update command, or an invalid row with its reason), `batch` (a batch of rows queued
and counted, as the Step Functions Map hands it over, and the backfill's report).
May import: `..domain`, `..errors`, `..observability`, `..aws`, `..ecommerce.platforms` (the transforms).
"""
