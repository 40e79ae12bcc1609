"""The AWS services the functions use: one boto3 session, Secrets Manager, the SQS queues, the idempotency table.

May import: `..errors`, `..http_session`, `..observability`. Never the Engage client, triggers or e-commerce.
"""
