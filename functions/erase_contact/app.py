"""Erase a person (our records, and in Engage as the policy says), answer a data request, or erase a shop's
records, from SQS or a direct invocation; every request audited."""

from engage_contact.privacy_function import make_privacy_handler

lambda_handler = make_privacy_handler()
