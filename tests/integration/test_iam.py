"""Each function does its work under a role built from its own statements in template.yaml, moto enforcing IAM.

The template goes through SAM's translator (policy templates expanded, as deployed), each function's
role is made in moto from its statements, and the function runs its AWS paths (API, SQS with a
dead letter and a backoff, the sent-digest read-ahead, backfill counters) with that role's
credentials while moto refuses whatever the role does not allow. A refusal a path swallows (the
read-ahead's) is still seen: every check moto made is written down.
"""

from __future__ import annotations

import json

import boto3
import pytest

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.iam_policies import (
    BATCH_CALLS,
    EnforcedIam,
    as_moto_names_them,
    function_statements,
    managed_statements,
    translated_template,
)
from local.lambda_runtime import LocalContext, SqsEventSource, api_event, send_command
from local.signing import signed_headers
from local.template import read_stack

from ..conftest import FUNCTIONS, REGION, load_function
from .test_ecommerce import (
    SHOPIFY_CUSTOMER,
    SHOPIFY_SECRET,
    SHOPIFY_SHOP,
    WOO_CUSTOMER,
    WOO_SECRET,
    WOO_SHOP,
    shopify_headers,
    woo_headers,
)

pytestmark = pytest.mark.slow
ANNA, BERTIL, CECILIA = (c["id"] for c in DEMO_CONTACTS)
STACK = read_stack()
LOGICAL = {spec.name: logical_id for logical_id, spec in STACK.functions.items()}
# the conftest's queues under the template's names
QUEUES = {f"{STACK.functions[LOGICAL[name]].queue}": name for name in FUNCTIONS}
ROUTES = {"update_contact": "/contacts/update", "promote_contact": "/contacts/promote",
          "change_contact_type": "/contacts/contact-type"}  # fmt: skip
# both platforms served, Shopify's customers with an account promoted
SHOPS = {"shopify": {SHOPIFY_SHOP: {"secret": SHOPIFY_SECRET, "promoteOnAccount": True}},
         "woocommerce": {WOO_SHOP: {"secret": WOO_SECRET}}}  # fmt: skip
TRUST_ANYONE = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})  # fmt: skip


@pytest.fixture(scope="module")
def sam_template():
    return translated_template()


@pytest.fixture
def refs(api_key_secret, digest_key_secret, webhook_secret, idempotency_table, queues):
    """The template's parameters and resources, as moto made them (both platforms and the backfill switched on)."""
    table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=idempotency_table)["Table"]
    secrets = boto3.client("secretsmanager", region_name=REGION)
    found = {"EngageApiKeySecretArn": api_key_secret, "WebhookSecret": webhook_secret[0],
             "DigestKeySecret": digest_key_secret,
             "IdempotencyTable": idempotency_table, "IdempotencyTable.Arn": table["TableArn"],
             "ShopsSecretArn": secrets.create_secret(Name="shops", SecretString=json.dumps(SHOPS))["ARN"],
             "BackfillBucket": "backfill-bucket"}  # fmt: skip
    for queue, name in QUEUES.items():
        dead = STACK.queues[queue].dead_letter
        for logical_id, url in ((queue, queues.urls[name]), (dead, queues.urls[f"{name}-dlq"])):
            arn = queues.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            found.update({logical_id: url, f"{logical_id}.Arn": arn})
    # the erase function's and the backfill writer's queues, and the audit table, so every role can be built
    for logical_id, attributes in (("EraseContactQueue", {"FifoQueue": "true"}),
                                   ("EraseContactDeadLetterQueue", {"FifoQueue": "true"}),
                                   ("BackfillQueue", {}), ("BackfillDeadLetterQueue", {})):  # fmt: skip
        name = logical_id + (".fifo" if attributes else "")
        url = queues.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = queues.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        found.update({logical_id: url, f"{logical_id}.Arn": arn})
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    audit = dynamodb.create_table(TableName="audit", BillingMode="PAY_PER_REQUEST",
                                  AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                                  KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])  # fmt: skip
    audit = audit["TableDescription"]
    found.update({"AuditTable": "audit", "AuditTable.Arn": audit["TableArn"]})
    return found


def role_credentials(name, statements):
    """Temporary credentials of a role in moto that holds exactly these statements."""
    iam = boto3.client("iam", region_name=REGION)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ANYONE)["Role"]["Arn"]
    document = {"Version": "2012-10-17", "Statement": as_moto_names_them(statements)}
    iam.put_role_policy(RoleName=name, PolicyName="template", PolicyDocument=json.dumps(document))
    credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=arn, RoleSessionName=name)
    keys = credentials["Credentials"]
    return {"AWS_ACCESS_KEY_ID": keys["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
            "AWS_SESSION_TOKEN": keys["SessionToken"]}  # fmt: skip


def client(service, credentials):
    return boto3.client(service, region_name=REGION, aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=credentials["AWS_SESSION_TOKEN"])  # fmt: skip


class Harness:
    """One function under its template role; the test's own calls go through an allow-all role."""

    def __init__(self, name, sam_template, refs, function_env, monkeypatch, drop=()):
        logical_id = LOGICAL[name]
        statements = [
            *function_statements(sam_template, refs)[logical_id],
            *managed_statements(sam_template, logical_id),
        ]
        statements = [without(s, drop) for s in statements]
        self.admin = role_credentials("test-admin", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
        self.role = role_credentials(f"{name}-role", statements)
        self.name, self.refs = name, refs
        function_env("update_contact" if name.startswith("intake_") else name)
        intake = {"UPDATE_QUEUE_URL": refs["UpdateContactQueue"], "PROMOTE_QUEUE_URL": refs["PromoteContactQueue"],
                  "ERASE_QUEUE_URL": refs["EraseContactQueue"], "BACKFILL_QUEUE_URL": refs["BackfillQueue"],
                  "SHOPS_SECRET_ARN": refs["ShopsSecretArn"], "DEAD_LETTER_QUEUE_URL": ""}  # fmt: skip
        for key, value in {**(intake if name.startswith("intake_") else {}), **self.role}.items():
            monkeypatch.setenv(key, value)
        self.handler = load_function(name).lambda_handler

    def deliver(self, platform, customer, headers):
        raw = json.dumps(customer).encode()
        event = api_event("POST", f"/webhooks/{platform}", raw.decode(), headers(raw))
        return self.handler(event, LocalContext(timeout_seconds=30))

    def api(self, body, secret):
        text = json.dumps(body)
        event = api_event("POST", ROUTES[self.name], text, {"Content-Type": "application/json",
                                                             **signed_headers(secret, text)})  # fmt: skip
        first = self.handler(event, LocalContext(timeout_seconds=30))
        again = self.handler(event, LocalContext(timeout_seconds=30))  # the caller's retry: a replay
        assert json.loads(again["body"]).get("replayed") or again["statusCode"] == first["statusCode"], again
        return first

    def queue_batch(self, commands):
        """The commands on the function's queue, one batch of them handled as Lambda's event source would."""
        url = self.refs[STACK.functions[LOGICAL[self.name]].queue]
        sender = client("sqs", self.admin)
        for command, group in commands:
            send_command(sender, url, command, group=group)
        return SqsEventSource(client("sqs", self.role), url, self.handler).poll_once()


def unused_grants(harness, sam_template, iam):
    """Actions the function's own statements grant that none of its paths called: granted, but not needed."""
    granted = {a for s in function_statements(sam_template, harness.refs)[LOGICAL[harness.name]]
               for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}  # fmt: skip
    called = iam.allowed_actions()
    return {a for a in granted if a not in called and BATCH_CALLS.get(a) not in called}


def without(statement, actions):
    listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    return {**statement, "Action": [a for a in listed if a not in actions]}


def operation_paths(harness, webhook_secret, sandbox):
    """What an operation function does with AWS: a keyed API call, and a batch with an applied, a dead-lettered
    and a held-back command (the read-ahead of what Engage confirmed, a dead letter, a backoff)."""
    command = {"update_contact": {"attributes": {"city": "Lund"}},
               "promote_contact": {"attributes": {"email": "anna@example.com"}},
               "change_contact_type": {"contactTypeId": "Contact"}}[harness.name]  # fmt: skip
    answer = harness.api({"contactId": ANNA, **command}, webhook_secret[1])
    assert answer["statusCode"] in (200, 422), answer
    sandbox.state.add_faults([Fault.from_json({"kind": "status", "status": 503, "contact": CECILIA})])
    backfill_row = {"contactId": BERTIL, "attributes": {"city": "Malmö"}, "idempotencyKey": "backfill:iam:2"}
    by_lookup = {"lookup": {"email": "bertil@example.com"}, **command}  # the contact a lookup found, remembered
    batch = [({**by_lookup, "sendOnlyChanged": True} if harness.name == "update_contact" else by_lookup, BERTIL),
             ({"contactId": ANNA, "nonsense": 1}, ANNA),
             ({"contactId": CECILIA, **command}, CECILIA)]  # fmt: skip
    if harness.name == "update_contact":
        batch.append((backfill_row, BERTIL))
    result = harness.queue_batch(batch)
    assert len(result["batchItemFailures"]) == 1, result  # Cecilia's, held back with a backoff


# What each path must have been allowed to do (so the test sees it ran them, not only that nothing was refused).
EXPECTED = {
    "secretsmanager:GetSecretValue", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
    "sqs:SendMessage", "sqs:ChangeMessageVisibilityBatch", "sqs:GetQueueUrl",
    "sqs:ReceiveMessage", "sqs:DeleteMessageBatch",
}  # fmt: skip


# Granted for a path these runs do not reach: the idempotency record read back (aws/idempotency.py: _read) when
# a refused conditional write returns no item; update reaches GetItem on its lookup path anyway.
RARE_PATHS = {"promote_contact": {"dynamodb:GetItem"}, "change_contact_type": {"dynamodb:GetItem"}}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_operation_function_does_its_work_with_only_its_template_role(
    name, sam_template, refs, function_env, monkeypatch, webhook_secret, sandbox
):
    harness = Harness(name, sam_template, refs, function_env, monkeypatch)
    with EnforcedIam() as iam:
        operation_paths(harness, webhook_secret, sandbox)
    assert iam.denied() == []
    assert iam.allowed_actions() >= EXPECTED, EXPECTED - iam.allowed_actions()
    assert unused_grants(harness, sam_template, iam) <= RARE_PATHS.get(name, set())


def test_a_call_the_role_does_not_grant_is_seen_even_when_the_code_swallows_its_failure(
    sam_template, refs, function_env, monkeypatch, webhook_secret, sandbox
):
    """The read-ahead's failure is swallowed (every command is then sent whole): the refusal is still seen."""
    harness = Harness("update_contact", sam_template, refs, function_env, monkeypatch, drop={"dynamodb:BatchGetItem"})
    with EnforcedIam() as iam:
        operation_paths(harness, webhook_secret, sandbox)
    assert [action for action, _ in iam.denied()] == ["dynamodb:BatchGetItem"]
    assert sandbox.state.get_contact(BERTIL)["city"] == "Malmö"  # the batch went on without it


def test_the_webhook_intake_verifies_and_queues_with_only_its_template_role(
    sam_template, refs, function_env, monkeypatch, queues
):
    """It reads only the platforms' secrets and writes only the update and promote queues: never the Engage key."""
    harness = Harness("intake_webhooks", sam_template, refs, function_env, monkeypatch)
    with EnforcedIam() as iam:
        harness.handler = load_function("intake_webhooks").lambda_handler  # its start reads the shops document
        assert harness.deliver("shopify", SHOPIFY_CUSTOMER, shopify_headers)["statusCode"] == 200
        assert harness.deliver("woocommerce", WOO_CUSTOMER, woo_headers)["statusCode"] == 200
    assert iam.denied() == []
    assert unused_grants(harness, sam_template, iam) == set()
    touched = {resource for _, resource, _ in iam.checks}
    assert {refs["UpdateContactQueue.Arn"], refs["PromoteContactQueue.Arn"]} <= touched
    assert refs["EngageApiKeySecretArn"] not in touched
    granted = json.dumps(function_statements(sam_template, refs)["IntakeWebhooksFunction"])
    assert refs["EngageApiKeySecretArn"] not in granted and refs["WebhookSecret"] not in granted
    assert len(queues.messages("promote_contact")) == 1  # Anna has an account: her promotion queued too


def test_the_backfill_tasks_queue_and_count_with_only_their_template_role(
    sam_template, refs, function_env, monkeypatch, queues
):
    harness = Harness("intake_backfill", sam_template, refs, function_env, monkeypatch)
    mapping = {"lookup": {"email": "Email"}, "columns": {"City": "city"}}
    rows = [{"Email": "anna@example.com", "City": "Lund"}, {"Email": "", "City": "Ystad"}]
    with EnforcedIam() as iam:
        check = {"id": "iam", "mapping": mapping, "format": "csv", "head": "Email,City\n"}
        assert harness.handler({"backfillCheck": check}, LocalContext())["checked"] is True
        queued = harness.handler({"backfill": {"id": "iam", "mapping": mapping, "rows": rows}}, LocalContext())
        report = harness.handler({"backfillReport": {"id": "iam"}}, LocalContext())
    assert iam.denied() == []
    assert (queued["queued"], queued["invalid"], report["rows"]) == (1, 1, 2)
    assert unused_grants(harness, sam_template, iam) == set()
    # the rows' message groups are keyed digests: the digest key is the one secret it reads
    assert {resource for action, resource, _ in iam.checks if action.startswith("secretsmanager:")} == {
        refs["DigestKeySecret"]
    }
    chunks = queues.sqs.receive_message(QueueUrl=refs["BackfillQueue"], MaxNumberOfMessages=10)["Messages"]
    assert len(chunks) == 1 and queues.messages("update_contact") == []  # one chunk, on the backfill's own queue
