"""The shared layer of engage-contact-functions: everything the functions have in common.

Rooms, each importing only those below it (a test checks it):

- `handler` (the three operation functions: their three triggers, one path), `intake` (the webhook
  and backfill functions: verify, map, queue, no Engage client) and `container` (the composition root), `operations`
  (what each function does with a checked command) with `find_or_create` (a missing contact created,
  one key one contact) and `only_changed` (the record of what Engage last confirmed, kept truthful),
  `settings` (the environment, read once);
- `backfill/`: a file of existing customers (CSV, JSON Lines) into update commands, one per row;
- `ecommerce/`: Shopify and WooCommerce webhooks into update commands;
- `triggers/`: event in, answer out: API Gateway, SQS, Standard Webhooks signatures;
- `aws/`: Secrets Manager, SQS, the idempotency table, through one family of light clients;
- `engage/`: Engage's API: client, transport, answers, retry, pacing;
- `domain/`: the contract's rules, no I/O: attributes, sparse payload, contacts, the command;
- at the bottom, used by all: `errors`, `observability`, `http_session`.
"""

__version__ = "0.1.0"
