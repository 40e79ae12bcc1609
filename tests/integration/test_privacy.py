"""Privacy: the shops' privacy topics and the erase command, against the sandbox and moto.

A redact leaves no item that names the person; replays are harmless; an Engage failure leaves the request
retried and audited, never lost; an update queued before an erasure is never applied after it.
"""

from __future__ import annotations

import copy
import hashlib
import json

import boto3
import pytest

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.lambda_runtime import LocalContext, SqsEventSource, send_command

from ..conftest import REGION, load_function, load_webhooks_and_update
from .test_ecommerce import SHOPIFY_CUSTOMER, WOO_CUSTOMER, deliver, shopify_headers, woo_headers
from .test_ecommerce import secrets_env as secrets_env  # the update function with both platforms' secrets

ANNA, BERTIL = DEMO_CONTACTS[0]["id"], DEMO_CONTACTS[1]["id"]  # Anna is a Member, Bertil a Contact
SHOP = "example.myshopify.com"
WOO_SHOP = "https://shop.example.com/"


@pytest.fixture
def audit_table(aws):
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="audit", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )  # fmt: skip
    return "audit"


@pytest.fixture
def erase_queues(queues):
    sqs = queues.sqs
    dlq = sqs.create_queue(QueueName="erase_contact-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="erase_contact.fifo", Attributes={
        "FifoQueue": "true", "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})})["QueueUrl"]  # fmt: skip
    queues.urls["erase_contact"], queues.urls["erase_contact-dlq"] = url, dlq
    return queues


@pytest.fixture
def stack(secrets_env, erase_queues, audit_table, monkeypatch):
    """The webhook intake with the update function, and the erase function, in one deployment's environment."""
    monkeypatch.setenv("ERASE_QUEUE_URL", erase_queues.urls["erase_contact"])
    monkeypatch.setenv("AUDIT_TABLE", audit_table)
    monkeypatch.setenv("ERASURE_SETTLE_SECONDS", "0")
    secrets_env.set("shopify", "erasure", "erase")  # each shop's choice, in the shops document
    secrets_env.set("woocommerce", "erasure", "erase")
    update = load_webhooks_and_update()
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", erase_queues.urls["erase_contact-dlq"])
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "erase_contact")
    erase = load_function("erase_contact").lambda_handler
    return update, erase


def drain(handler, queues, name):
    SqsEventSource(queues.sqs, queues.urls[name], handler).drain()


def table_items(name="idempotency"):
    client = boto3.client("dynamodb", region_name=REGION)
    return client.scan(TableName=name)["Items"]


def naming(items, *, email, contact_id, customer_id):
    """The items that name the person: by contact id, by a keyed digest of their email (as a customer or in a
    group), by the shop's customer id (its digest), or holding any of these in their data."""
    from engage_contact.domain.contacts import lookup_digest
    from engage_contact.domain.digest_key import customer_digest
    from engage_contact.privacy.records import digest

    marks = (contact_id, lookup_digest("email", email), customer_digest(email), email, digest(customer_id))
    return [i for i in items if any(m in json.dumps(i) for m in marks)]


def plain_hashes(email, customer_id):
    """What a list of candidate addresses (or customer ids) links back: plain SHA-256 digests, whole or cut."""
    found = [hashlib.sha256(text.encode()).hexdigest() for text in (email.lower(), customer_id)]
    return [*found, *(h[:32] for h in found)]


def redact_body(email="anna@example.com", customer_id=706405506930370084):
    return {"shop_id": 954889, "shop_domain": SHOP, "customer": {"id": customer_id, "email": email,
            "phone": "+46709998877"}, "orders_to_redact": [299938, 280263]}  # fmt: skip


def test_a_redact_leaves_no_item_that_names_the_person(stack, erase_queues, sandbox):
    update, erase = stack
    bertil = {**copy.deepcopy(SHOPIFY_CUSTOMER), "email": "bertil@example.com", "id": 1001}
    assert deliver(update, "shopify", bertil, shopify_headers)[0] == 200
    drain(update, erase_queues, "update_contact")
    held = naming(table_items(), email="bertil@example.com", contact_id=BERTIL, customer_id="1001")
    assert {i["id"]["S"].split("#")[0] for i in held} >= {"sent-lookup", "event-time", "last-applied", "shop-customer"}
    # every digest is keyed: no key, group or value in the table is a plain hash a list of addresses links back
    assert not any(h in json.dumps(table_items()) for h in plain_hashes("bertil@example.com", "1001"))

    status, body = deliver(update, "shopify", redact_body("bertil@example.com", 1001),
                           lambda raw: shopify_headers(raw, topic="customers/redact"))  # fmt: skip
    assert (status, body["queued"], body["request"]) == (200, True, "erase")
    drain(erase, erase_queues, "erase_contact")

    assert naming(table_items(), email="bertil@example.com", contact_id=BERTIL, customer_id="1001") == []
    assert sandbox.state.get_contact(BERTIL) is None  # the shop's policy is erase: Engage deleted it
    (deleted,) = sandbox.state.request_log("delete")
    assert (deleted["method"], deleted["path"], deleted["headers"].get("source")) == (
        "DELETE",
        f"/api/v2/contacts/{BERTIL}",
        "privacy",
    )
    (entry,) = table_items("audit")
    assert entry["outcome"]["S"] == "done" and entry["source"]["S"] == "shopify customers/redact"
    assert entry["engage"]["S"] == "deleted" and int(entry["recordsErased"]["N"]) >= 4
    assert naming([entry], email="bertil@example.com", contact_id=BERTIL, customer_id="1001") == []
    assert int(entry["expiration"]["N"]) > 0


def test_a_replayed_redact_is_harmless(stack, erase_queues, sandbox):
    update, erase = stack
    for _ in range(2):  # Shopify retries one event with the same payload
        deliver(update, "shopify", redact_body("bertil@example.com", 1001),
                lambda raw: shopify_headers(raw, topic="customers/redact"))  # fmt: skip
        drain(erase, erase_queues, "erase_contact")
    direct = {"lookup": {"email": "bertil@example.com"}, "erasure": "erase", "idempotencyKey": "gdpr-7"}
    first = erase(direct, LocalContext())
    again = erase(direct, LocalContext())
    assert len(sandbox.state.request_log("delete")) == 1  # deleted once; a second try would have been a 404
    assert first["engage"] == "not found" and again["replayed"] is True
    assert erase_queues.counts("erase_contact-dlq") == (0, 0)


def test_a_member_is_erased_only_when_the_policy_says_so(stack, sandbox):
    _, erase = stack
    kept = erase({"lookup": {"email": "anna@example.com"}, "erasure": "erase"}, LocalContext())
    assert kept["engage"] == "member kept" and sandbox.state.get_contact(ANNA) is not None
    gone = erase({"lookup": {"email": "anna@example.com"}, "erasure": "erase-including-members"}, LocalContext())
    assert gone["engage"] == "deleted" and sandbox.state.get_contact(ANNA) is None


def test_the_default_policy_sends_nothing_to_engage(stack, sandbox):
    _, erase = stack
    result = erase({"lookup": {"email": "bertil@example.com"}}, LocalContext())
    assert (result["erasure"], result["engage"]) == ("record", "not asked (record)")
    assert sandbox.state.request_log() == []


def test_v3_deletes_with_its_source_as_a_query_parameter(stack, sandbox, monkeypatch):
    monkeypatch.setenv("ENGAGE_API_VERSION", "v3")
    erase = load_function("erase_contact").lambda_handler
    assert erase({"contactId": BERTIL, "erasure": "erase"}, LocalContext())["engage"] == "deleted"
    (deleted,) = sandbox.state.request_log("delete")
    assert deleted["path"] == f"/api/v3/contacts/{BERTIL}" and deleted["query"].get("source") == "privacy"
    assert sandbox.state.deleted == [{"id": BERTIL, "contactType": "Contact", "source": "privacy"}]


def test_an_engage_failure_leaves_the_request_retried_and_audited(stack, erase_queues, sandbox):
    update, erase = stack
    sandbox.state.add_faults([Fault(kind="status", route="delete", status=503)])
    deliver(update, "shopify", redact_body("bertil@example.com", 1001),
            lambda raw: shopify_headers(raw, topic="customers/redact"))  # fmt: skip
    source = SqsEventSource(erase_queues.sqs, erase_queues.urls["erase_contact"], erase)
    answer = source.poll_once()
    assert len(answer["batchItemFailures"]) == 1  # kept on its queue for another try
    (entry,) = table_items("audit")
    assert entry["outcome"]["S"] == "failed: EngageUnavailable (retried)"
    assert sandbox.state.get_contact(BERTIL) is not None
    sandbox.state.faults.clear()
    erase_queues.sqs.purge_queue(QueueUrl=erase_queues.urls["erase_contact"])  # the backoff would wait 10 s
    deliver(update, "shopify", redact_body("bertil@example.com", 1001),
            lambda raw: shopify_headers(raw, topic="customers/redact"))  # fmt: skip
    drain(erase, erase_queues, "erase_contact")
    assert sandbox.state.get_contact(BERTIL) is None
    assert sorted(e["outcome"]["S"] for e in table_items("audit")) == ["done", "failed: EngageUnavailable (retried)"]


def test_deleted_customers_are_found_by_their_shop_id(stack, erase_queues, sandbox):
    update, erase = stack
    assert deliver(update, "woocommerce", WOO_CUSTOMER, woo_headers)[0] == 200
    drain(update, erase_queues, "update_contact")
    status, body = deliver(update, "woocommerce", {"id": WOO_CUSTOMER["id"]},
                           lambda raw: woo_headers(raw, topic="customer.deleted"))  # fmt: skip
    assert (status, body["request"]) == (200, "erase")
    drain(erase, erase_queues, "erase_contact")
    assert naming(table_items(), email="bertil@example.com", contact_id=BERTIL, customer_id="25") == []
    assert sandbox.state.get_contact(BERTIL) is None  # its contactId was remembered by its update


def test_a_shop_redact_erases_that_shops_customers_and_no_one_else(stack, erase_queues, sandbox):
    update, erase = stack
    deliver(update, "shopify", SHOPIFY_CUSTOMER, shopify_headers)  # Anna, of the Shopify shop
    deliver(update, "woocommerce", WOO_CUSTOMER, woo_headers)  # Bertil, of the WooCommerce shop
    drain(update, erase_queues, "update_contact")
    status, body = deliver(update, "shopify", {"shop_id": 954889, "shop_domain": SHOP},
                           lambda raw: shopify_headers(raw, topic="shop/redact"))  # fmt: skip
    assert (status, body["request"]) == (200, "erase-shop")
    drain(erase, erase_queues, "erase_contact")
    items = table_items()
    assert naming(items, email="anna@example.com", contact_id=ANNA, customer_id=str(SHOPIFY_CUSTOMER["id"])) == []
    assert naming(items, email="bertil@example.com", contact_id=BERTIL, customer_id="25") != []
    assert sandbox.state.request_log("delete") == []  # a shop's erasure is ours alone


def test_a_data_request_is_delivered_encrypted_and_audited(stack, erase_queues, monkeypatch):
    update, _ = stack
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": REGION})
    monkeypatch.setenv("DATA_REQUEST_BUCKET", "exports")
    erase = load_function("erase_contact").lambda_handler
    bertil = {**copy.deepcopy(SHOPIFY_CUSTOMER), "email": "bertil@example.com", "id": 1001}
    deliver(update, "shopify", bertil, shopify_headers)
    drain(update, erase_queues, "update_contact")
    body = {**redact_body("bertil@example.com", 1001), "data_request": {"id": 9999}}
    deliver(update, "shopify", body, lambda raw: shopify_headers(raw, topic="customers/data_request"))
    drain(erase, erase_queues, "erase_contact")
    (listed,) = s3.list_objects_v2(Bucket="exports")["Contents"]
    obj = s3.get_object(Bucket="exports", Key=listed["Key"])
    assert obj["ServerSideEncryption"] == "AES256" and listed["Key"].startswith("data-requests/")
    export = json.loads(obj["Body"].read())
    kinds = {item["id"].split("#")[0] for item in export["items"]}
    assert {"sent-lookup", "event-time", "shop-customer"} <= kinds
    assert any(item.get("contactId") == BERTIL for item in export["items"])
    (entry,) = table_items("audit")
    assert entry["request"]["S"] == "data-request" and entry["delivered"]["S"].startswith("s3://exports/")
    assert "bertil" not in json.dumps(entry) and BERTIL not in json.dumps(entry)
    assert table_items() != []  # a data request erases nothing


def test_an_update_queued_before_an_erasure_is_not_applied_after_it(stack, erase_queues, sandbox, log_output):
    update, erase = stack
    command = {"lookup": {"email": "bertil@example.com"}, "attributes": {"city": "Lund"}}
    from engage_contact.domain.contacts import message_group

    send_command(erase_queues.sqs, erase_queues.urls["update_contact"], command, message_group(command), "before")
    erase({"lookup": {"email": "bertil@example.com"}}, LocalContext())  # record only: Engage keeps the contact
    drain(update, erase_queues, "update_contact")
    assert sandbox.state.request_log("update") == []
    assert sandbox.state.get_contact(BERTIL)["city"] != "Lund"
    logged = log_output.getvalue()
    assert "its contact was erased" in logged and "contact changed" not in logged and "bertil" not in logged.lower()
    send_command(erase_queues.sqs, erase_queues.urls["update_contact"], command, message_group(command), "after")
    drain(update, erase_queues, "update_contact")
    assert sandbox.state.get_contact(BERTIL)["city"] == "Lund"  # queued after the erasure: a new record


@pytest.mark.parametrize("command, problem", [
    ({}, "name the person"),
    ({"lookup": {"email": "bertil@example.com"}, "erasure": "everything"}, "'erasure'"),
    ({"request": "erase-shop", "lookup": {"email": "bertil@example.com"}}, "erase-shop"),
    ({"lookup": {"email": "bertil@example.com"}, "attributes": {}}, "does not belong"),
])  # fmt: skip
def test_a_bad_privacy_command_is_refused_by_name(stack, command, problem):
    from engage_contact.errors import InvalidRequest

    _, erase = stack
    with pytest.raises(InvalidRequest, match=problem):
        erase(command, LocalContext())


def test_the_erase_workflow_runs_a_retailers_erasure_and_names_a_refusal(stack, sandbox, monkeypatch):
    import types

    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    from local.workflow import LocalWorkflow

    from ..conftest import ROOT

    _, erase = stack
    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    monkeypatch.setattr(retrier_decl, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    workflow = LocalWorkflow({"EraseContactFunction": erase}, REGION, ROOT / "statemachine" / "erase_workflow.asl.json")
    done = workflow.run({"contactId": BERTIL, "erasure": "erase", "source": "retailer gdpr"})
    assert done["status"] == "SUCCEEDED" and done["output"]["engage"] == "deleted"
    assert sandbox.state.get_contact(BERTIL) is None
    (entry,) = table_items("audit")
    assert (entry["outcome"]["S"], entry["source"]["S"]) == ("done", "retailer gdpr")
    refused = workflow.run({"lookup": {"email": "not an address"}})
    assert (refused["status"], refused["error"]) == ("FAILED", "InvalidRequest")


@pytest.mark.parametrize("trigger", ["direct", "sqs"])
def test_each_erase_event_file_is_handled(stack, sandbox, trigger):
    from ..conftest import ROOT

    _, erase = stack
    event = json.loads((ROOT / "events" / "erase_contact" / f"{trigger}.json").read_text())
    result = erase(event, LocalContext())
    if trigger == "sqs":
        assert result == {"batchItemFailures": []}
    else:
        assert result["engage"] == "deleted"  # the command says erase (from its shop's entry in the shops document)
    assert sandbox.state.get_contact(BERTIL) is None


def test_what_engage_cannot_erase_is_audited_and_our_records_still_go(stack, sandbox):
    _, erase = stack
    sandbox.state.add_contact({"contactType": "Contact", "attributes": {"email": "bertil@example.com"}})  # a twin
    from engage_contact.privacy.records import erasure_mark

    result = erase({"lookup": {"email": "bertil@example.com"}, "erasure": "erase"}, LocalContext())
    assert result["engage"] == "not erased: MultipleMatches" and sandbox.state.request_log("delete") == []
    (entry,) = table_items("audit")
    assert entry["outcome"]["S"] == "partly done"
    from engage_contact.domain.contacts import message_group

    group = message_group({"lookup": {"email": "bertil@example.com"}})
    held = [i["id"]["S"] for i in table_items() if not i["id"]["S"].startswith("rate-budget")]  # (no one's)
    assert held == [erasure_mark(group)]  # only the erasure's own mark


def test_a_data_request_with_a_kms_key_is_encrypted_with_it(stack, monkeypatch):
    s3, kms = boto3.client("s3", region_name=REGION), boto3.client("kms", region_name=REGION)
    s3.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": REGION})
    key = kms.create_key()["KeyMetadata"]["Arn"]
    monkeypatch.setenv("DATA_REQUEST_BUCKET", "exports")
    monkeypatch.setenv("DATA_REQUEST_PREFIX", "privacy/exports/")
    monkeypatch.setenv("DATA_REQUEST_KMS_KEY_ARN", key)
    erase = load_function("erase_contact").lambda_handler
    result = erase({"request": "data-request", "contactId": BERTIL}, LocalContext())
    (listed,) = s3.list_objects_v2(Bucket="exports")["Contents"]
    head = s3.head_object(Bucket="exports", Key=listed["Key"])
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key)
    assert listed["Key"].startswith("privacy/exports/") and result["delivered"] == f"s3://exports/{listed['Key']}"


def test_without_a_bucket_the_audit_holds_an_inventory_and_no_values(stack, erase_queues):
    update, erase = stack
    bertil = {**copy.deepcopy(SHOPIFY_CUSTOMER), "email": "bertil@example.com", "id": 1001}
    deliver(update, "shopify", bertil, shopify_headers)
    drain(update, erase_queues, "update_contact")
    result = erase({"request": "data-request", "lookup": {"email": "bertil@example.com"}}, LocalContext())
    assert result["delivered"].startswith("audit") and result["items"] >= 4
    (entry,) = table_items("audit")
    assert "event-time: " in entry["held"]["S"] and "sent-lookup: 1" in entry["held"]["S"]
    assert naming([entry], email="bertil@example.com", contact_id=BERTIL, customer_id="1001") == []
