"""The backfill state machine's tasks: check a mapping, queue a batch of rows, report; no Engage client, no key."""

from engage_contact.intake import make_backfill_tasks

lambda_handler = make_backfill_tasks()
