"""Event in, answer out: which trigger sent an event, API Gateway requests and responses, SQS batches, signatures.

May import: `..domain`, `..errors`, `..observability`, `..aws`. Never the Engage client or e-commerce.
"""
