"""The deployment's digest key (docs/security-and-privacy.md, "Digests"): its own secret, read once per container,
and independent of the Engage key, so rotating the Engage key orphans no record kept under a digest."""

from __future__ import annotations

import json

import boto3
from engage_contact.domain.contacts import source_customer_group

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import LocalContext

from ..conftest import REGION, load_function

ANNA, BERTIL, CECILIA = (c["id"] for c in DEMO_CONTACTS)


def updates(sandbox):
    return [json.loads(r["body"]) for r in sandbox.state.request_log("update")]


def count_reads(handler, arn):
    """The reads of `arn` the function's container makes from now on, counted from the outside."""
    client = handler.container.secrets.client
    read, reads = client.get_secret_string, []
    client.get_secret_string = lambda secret_id: (reads.append(secret_id), read(secret_id))[1]
    return lambda: reads.count(arn)


def test_rotating_the_engage_key_keeps_what_engage_confirmed(function_env, sandbox, api_key_secret):
    """Sent digests were keyed by a key derived from the Engage key: a new key sent every contact whole again."""
    function_env("update_contact")
    command = {"contactId": ANNA, "attributes": {"city": "Lund"}, "sendOnlyChanged": True}
    assert load_function("update_contact").lambda_handler(command, LocalContext())["sent"] == {"city": "Lund"}

    boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=api_key_secret,
                                                                        SecretString="rotated-engage-key")  # fmt: skip
    sandbox.state.configure({"apiKeys": ["rotated-engage-key"]})
    fresh = load_function("update_contact").lambda_handler  # a new container: it reads the new Engage key
    again = fresh(command, LocalContext())
    assert again["unchanged"] is True and updates(sandbox) == [{"city": "Lund"}]
    assert fresh({**command, "attributes": {"city": "Malmö"}}, LocalContext())["sent"] == {"city": "Malmö"}
    assert sandbox.state.request_log("update")[-1]["headers"]["apikey"] == "rotated-engage-key"


def test_the_digest_key_is_read_once_per_container(function_env, sandbox, digest_key_secret):
    function_env("update_contact")
    handler = load_function("update_contact").lambda_handler
    reads = count_reads(handler, digest_key_secret)
    for contact in (ANNA, BERTIL, CECILIA, ANNA):
        handler({"contactId": contact, "attributes": {"city": "Lund"}, "sendOnlyChanged": True}, LocalContext())
    handler({"lookup": {"email": "bertil@example.com"}, "attributes": {"city": "Ystad"}}, LocalContext())
    assert reads() == 1


def test_the_function_keys_its_groups_with_the_secret_it_is_given(function_env, sandbox, digest_key_secret):
    """What a function remembers of a lookup is kept under the group the deployment's key makes, and under no
    other: another key (another deployment, or a rotated digest key) finds nothing of it."""
    function_env("update_contact")
    handler = load_function("update_contact").lambda_handler
    customer = "shopify:shop.myshopify.com:7"  # a shop's customer: its contact is remembered under its digest
    handler({"lookup": {"email": "bertil@example.com"}, "attributes": {"city": "Ystad"}, "sendOnlyChanged": True,
             "sourceCustomer": customer}, LocalContext())  # fmt: skip
    table = boto3.client("dynamodb", region_name=REGION)
    group = source_customer_group(customer)  # the tests' key: the secret's value
    remembered = table.get_item(TableName="idempotency", Key={"id": {"S": f"sent-lookup#{group}"}}).get("Item")
    assert remembered["contactId"]["S"] == BERTIL

    boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=digest_key_secret,
                                                                        SecretString="k" * 64)  # fmt: skip
    from engage_contact.domain import digest_key

    digest_key.install(lambda: b"k" * 64)
    other = source_customer_group(customer)
    assert other != group
    assert table.get_item(TableName="idempotency", Key={"id": {"S": f"sent-lookup#{other}"}}).get("Item") is None
