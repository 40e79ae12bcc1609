"""The AWS services the functions use, through one family of clients (`json_protocol`): Secrets Manager, the SQS
queues, the idempotency table.

May import: `..errors`, `..http_session`, `..observability`. Never the Engage client, triggers or e-commerce.
"""
