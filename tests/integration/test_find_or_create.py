"""Find or create (docs/contract.md §7) against the sandbox: what Engage received, under every fault."""

# ruff: noqa: F811 - `secrets_env` is test_ecommerce's fixture, imported to be used here

from __future__ import annotations

import json
import threading

import pytest
from engage_contact.aws.secrets import ApiKeySource, SecretReader
from engage_contact.domain.contacts import Lookup
from engage_contact.engage.client import EngageClient
from engage_contact.engage.retry import Deadline, RetryPolicy
from engage_contact.errors import ConfigurationError, EngageRejected, EngageUnavailable, RequestInProgress

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.lambda_runtime import LocalContext, SqsEventSource, api_event, send_command
from local.signing import signed_headers

from ..conftest import load_function, load_webhooks_and_update
from .test_ecommerce import SHOPIFY_CUSTOMER, deliver, secrets_env, shopify_headers  # noqa: F401

ANNA = DEMO_CONTACTS[0]["id"]
NORA = "nora@example.com"
CONTACT = {"contactType": "Contact", "source": "ECOM", "storeExternalId": "600", "createAsUnapproved": False}


def new_customer(email=NORA, create=None, **attributes):
    return {"lookup": {"email": email}, "attributes": attributes or {"firstName": "Nora", "city": "Lund"},
            "createIfMissing": create or {"contactType": "Contact"}}  # fmt: skip


def fault(sandbox, **spec):
    sandbox.state.add_faults([Fault.from_json(spec)])


def routes(sandbox):
    return [r["route"] for r in sandbox.state.request_log()]


def with_email(sandbox, email):
    return [c for c in sandbox.state.list_contacts() if (c.get("email") or "").lower() == email.lower()]


def headers_of(request):
    return {k.lower(): v for k, v in request["headers"].items()}


@pytest.fixture
def invoke(functions):
    """Direct invocation of a function (as Step Functions does): the command in, the result or the error out."""

    def call(name, command):
        return functions[name](command, LocalContext())

    return call


# --- created, or found ---------------------------------------------------------------------------


def test_a_missing_contact_is_created_with_the_sparse_attributes_its_key_and_type(invoke, sandbox):
    command = new_customer(create=CONTACT, firstName=" Nora ", city="Lund", street="", careOf=None)
    result = invoke("update_contact", command)
    assert routes(sandbox) == ["lookup", "create"]
    create = sandbox.state.request_log("create")[0]
    body = {"firstName": "Nora", "city": "Lund", "email": NORA, "contactType": "Contact"}
    assert json.loads(create["body"]) == body and create["path"] == "/api/v2/contacts"
    options = headers_of(create)
    assert (options["source"], options["storeexternalid"], options["createasunapproved"]) == ("ECOM", "600", "false")
    assert create["query"] == {}  # v2 reads them from headers only
    assert result["created"] is True and result["sent"] == body and result["droppedEmpty"] == ["street", "careOf"]
    (nora,) = with_email(sandbox, NORA)
    assert result["contactId"] == nora["id"] and result["contact"]["id"] == nora["id"]
    stored = sandbox.state.get_contact(nora["id"])
    assert (stored["contactType"], stored["firstName"], stored["city"]) == ("Contact", "Nora", "Lund")
    assert (stored["_source"], stored["_storeExternalId"], stored["_createAsUnapproved"]) == ("ECOM", "600", "false")
    assert "street" not in stored  # an empty value is never sent on a create


def test_a_command_with_the_key_alone_creates_a_missing_contact_and_leaves_a_found_one_alone(invoke, sandbox):
    """#29 point 6: an email-only backfill row with createIfMissing is a valid create, not NoData."""
    command = {
        "lookup": {"email": NORA},
        "attributes": {"firstName": " "},
        "createIfMissing": {"contactType": "Contact"},
    }
    created = invoke("update_contact", command)
    assert created["created"] is True and created["droppedEmpty"] == ["firstName"]
    (contact,) = with_email(sandbox, NORA)
    assert contact["contactType"] == "Contact"
    again = invoke("update_contact", command)  # found now: nothing to write, and no NoData either
    assert again["created"] is False and again["unchanged"] is True and again["sent"] == {}
    assert routes(sandbox).count("update") == 0 and routes(sandbox).count("create") == 1
    with pytest.raises(Exception, match="nothing") as caught:
        invoke("update_contact", {"lookup": {"email": NORA}, "attributes": {}})  # without createIfMissing: as before
    assert type(caught.value).__name__ == "NoData"


def test_clear_names_are_not_sent_on_a_create(invoke, sandbox):
    invoke("update_contact", {**new_customer(), "clear": ["careOf"]})
    assert "careOf" not in json.loads(sandbox.state.request_log("create")[0]["body"])


def test_options_not_given_are_not_sent(invoke, sandbox):
    invoke("update_contact", new_customer())
    stored = sandbox.state.get_contact(with_email(sandbox, NORA)[0]["id"])
    assert (stored["_source"], stored["_storeExternalId"], stored["_createAsUnapproved"]) == (None, None, None)


def test_a_contact_that_exists_is_updated_and_nothing_is_created(invoke, sandbox):
    result = invoke("update_contact", new_customer(email="anna@example.com", city="Visby"))
    assert routes(sandbox) == ["lookup", "update"]
    assert result["created"] is False and result["contactId"] == ANNA and result["sent"] == {"city": "Visby"}
    assert sandbox.state.get_contact(ANNA)["city"] == "Visby"


def test_promote_creates_a_member_and_no_promotion_follows(invoke, sandbox):
    result = invoke("promote_contact", {"lookup": {"email": NORA}, "attributes": {"firstName": "Nora"},
                                        "createIfMissing": {"source": "ECOM"}})  # fmt: skip
    assert routes(sandbox) == ["lookup", "create"]
    assert json.loads(sandbox.state.request_log("create")[0]["body"]) == {
        "firstName": "Nora", "email": NORA, "contactType": "Member"
    }  # fmt: skip
    stored = sandbox.state.get_contact(result["contactId"])
    assert stored["contactType"] == "Member" and stored["_promotions"] == 0
    assert result["created"] is True and "alreadyMember" not in result


def test_promote_of_a_contact_that_exists_promotes_it(invoke, sandbox):
    bertil = DEMO_CONTACTS[1]["id"]
    result = invoke("promote_contact", {"lookup": {"email": "bertil@example.com"}, "createIfMissing": {}})
    assert routes(sandbox) == ["lookup", "promote"] and result["created"] is False
    assert sandbox.state.get_contact(bertil)["contactType"] == "Member"


# --- someone else created it -----------------------------------------------------------------------


@pytest.mark.parametrize("code", ["ApprovedContactWithKeyExists", "ContactWithKeyIsBeingCreated"])
def test_a_409_on_create_is_looked_up_again_and_the_update_applied_to_that_contact(invoke, sandbox, code):
    # The lookup misses Anna once (Engage's index behind); her key then makes the create a 409.
    fault(sandbox, kind="status", route="lookup", status=404, code="ContactNotFound", count=1)
    if code != "ApprovedContactWithKeyExists":
        fault(sandbox, kind="status", route="create", status=409, code=code, count=1)
    result = invoke("update_contact", new_customer(email="anna@example.com", city="Visby"))
    assert routes(sandbox) == ["lookup", "create", "lookup", "update"]
    assert result["created"] is False and result["contactId"] == ANNA and result["sent"] == {"city": "Visby"}
    assert len(with_email(sandbox, "anna@example.com")) == 1
    assert sandbox.state.get_contact(ANNA)["city"] == "Visby"


def test_a_409_whose_contact_is_not_found_yet_is_request_in_progress(invoke, sandbox):
    fault(sandbox, kind="status", route="create", status=409, code="ContactWithKeyIsBeingCreated", count=1)
    with pytest.raises(RequestInProgress):
        invoke("update_contact", new_customer())
    assert routes(sandbox) == ["lookup", "create", "lookup"]


def test_request_in_progress_is_retried_from_the_queue_and_then_creates(functions, queues, sandbox):
    fault(sandbox, kind="status", route="create", status=409, code="ContactWithKeyIsBeingCreated", count=1)
    url = queues.urls["update_contact"]
    send_command(queues.sqs, url, new_customer(), group=f"email:{NORA}")
    events = SqsEventSource(queues.sqs, url, functions["update_contact"])
    assert len(events.poll_once()["batchItemFailures"]) == 1  # kept for another try, not dead-lettered
    assert queues.messages("update_contact-dlq") == [] and with_email(sandbox, NORA) == []
    events.skip_backoff()
    events.drain()
    assert len(with_email(sandbox, NORA)) == 1 and queues.counts("update_contact") == (0, 0)


# --- an outcome nobody knows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "apply_then_status", "status": 503},
        {"kind": "apply_then_drop"},
        {"kind": "apply_then_hang", "seconds": 3},  # longer than the function's 2 s timeout toward Engage
    ],
)
def test_a_create_whose_answer_is_lost_is_looked_up_before_it_is_ever_sent_again(invoke, sandbox, spec):
    fault(sandbox, route="create", count=1, **spec)
    result = invoke("update_contact", new_customer())
    (nora,) = with_email(sandbox, NORA)
    assert routes(sandbox) == ["lookup", "create", "lookup", "update"]  # found by the check: never sent twice
    assert result["contactId"] == nora["id"] and result["created"] is False
    assert sandbox.state.get_contact(nora["id"])["firstName"] == "Nora"


def test_a_create_that_failed_before_applying_is_sent_again_after_the_check(invoke, sandbox):
    fault(sandbox, kind="status", route="create", status=502, count=1)
    result = invoke("update_contact", new_customer())
    assert routes(sandbox) == ["lookup", "create", "lookup", "create"]
    (nora,) = with_email(sandbox, NORA)
    assert result["created"] is True and result["contactId"] == nora["id"]


@pytest.fixture
def client(sandbox, api_key_secret):
    retry = RetryPolicy(max_attempts=4, base_seconds=0.01, cap_seconds=0.05)
    key = ApiKeySource(api_key_secret, SecretReader())
    return EngageClient(sandbox.url, key, timeout_seconds=1.0, retry=retry, sleep=lambda seconds: None)


def test_a_create_is_not_resent_blind_when_the_check_fails(client, sandbox):
    fault(sandbox, kind="status", route="create", status=503, count=1)
    fault(sandbox, kind="status", route="lookup", status=503, count=1)
    key = Lookup("email", NORA)
    with pytest.raises(EngageUnavailable):
        client.create_contact({"email": NORA, "contactType": "Contact"}, {}, key, Deadline(30))
    assert routes(sandbox) == ["create", "lookup"]


def test_the_client_sends_the_v2_options_as_headers_and_answers_the_new_contact(client, sandbox):
    outcome = client.create_contact({"email": NORA, "contactType": "Prospect"}, {"source": "POS"},
                                    Lookup("email", NORA), Deadline(30))  # fmt: skip
    assert outcome.created and outcome.contact["contactType"] == "Prospect"
    assert outcome.contact_id == sandbox.state.request_log("create")[0]["contactId"]
    assert sandbox.state.get_contact(outcome.contact_id)["_source"] == "POS"


def test_the_client_answers_a_409_as_a_key_taken(client, sandbox):
    outcome = client.create_contact({"email": "anna@example.com", "contactType": "Contact"}, {},
                                    Lookup("email", "anna@example.com"), Deadline(30))  # fmt: skip
    assert outcome.contact_id is None and not outcome.created


# --- refused ---------------------------------------------------------------------------------------


def test_a_contact_type_engage_does_not_have_is_engage_rejected_and_not_retried(invoke, sandbox):
    with pytest.raises(EngageRejected) as raised:
        invoke("update_contact", new_customer(create={"contactType": "Wizard"}))
    assert raised.value.details["engage"]["errorCode"] == "InvalidContactType"
    assert routes(sandbox) == ["lookup", "create"] and with_email(sandbox, NORA) == []


def test_a_missing_mandatory_field_is_engage_rejected_with_engages_body(invoke, sandbox):
    sandbox.state.configure({"keyAttribute": "externalId"})  # this tenant's key is not the email
    with pytest.raises(EngageRejected) as raised:
        invoke("update_contact", new_customer())
    assert raised.value.details["engage"]["errorCode"] == "MissingKeyAttribute"


def test_a_refused_create_from_the_queue_is_dead_lettered_at_once(functions, queues, sandbox):
    url = queues.urls["update_contact"]
    send_command(queues.sqs, url, new_customer(create={"contactType": "Wizard"}), group=f"email:{NORA}")
    SqsEventSource(queues.sqs, url, functions["update_contact"]).drain()
    (dead,) = queues.messages("update_contact-dlq")
    assert dead["MessageAttributes"]["errorType"]["StringValue"] == "EngageRejected"
    assert routes(sandbox).count("create") == 1


# --- two triggers, one new customer ------------------------------------------------------------------


def test_the_api_and_the_queue_at_once_make_one_contact(functions, queues, sandbox, webhook_secret):
    # Both lookups miss (as they would if both ran before either create): Engage's 409 and our re-lookup
    # turn the second create into an update of the first contact.
    fault(sandbox, kind="status", route="lookup", status=404, code="ContactNotFound", count=2)
    handler = functions["update_contact"]
    url = queues.urls["update_contact"]
    send_command(queues.sqs, url, new_customer(firstName="Nora"), group=f"email:{NORA}")
    raw = json.dumps(new_customer(city="Lund"))
    event = api_event("POST", "/contacts/update", raw, {"Content-Type": "application/json",
                                                        **signed_headers(webhook_secret[1], raw)})  # fmt: skip
    answers, start = {}, threading.Barrier(2)

    def api():
        start.wait()
        answers["api"] = handler(event, LocalContext())

    def queue():
        start.wait()
        answers["queue"] = SqsEventSource(queues.sqs, url, handler).poll_once()

    threads = [threading.Thread(target=api), threading.Thread(target=queue)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers["api"]["statusCode"] == 200 and answers["queue"] == {"batchItemFailures": []}
    (nora,) = with_email(sandbox, NORA)
    stored = sandbox.state.get_contact(nora["id"])
    assert (stored["firstName"], stored["city"]) == ("Nora", "Lund")  # both commands applied to the one contact
    creates = sandbox.state.request_log("create")
    assert sorted(r["status"] for r in creates) == [201, 409]
    assert [r["route"] for r in sandbox.state.request_log()].count("update") == 1


# --- e-commerce -------------------------------------------------------------------------------------

NEW_SHOPPER = {**SHOPIFY_CUSTOMER, "id": 1, "email": "new.shopper@example.com", "first_name": "Nils",
               "last_name": "Nyman"}  # fmt: skip


@pytest.fixture
def shop_creates(secrets_env, monkeypatch):
    secrets_env.set("shopify", "createIfMissing", {"contactType": "Contact", "source": "ECOM"})
    return load_webhooks_and_update()


def test_a_new_shopify_customer_is_created_through_the_queue(shop_creates, queues, sandbox):
    status, body = deliver(shop_creates, "shopify", NEW_SHOPPER, lambda raw: shopify_headers(raw, "customers/create"))
    assert status == 200 and body["queued"] is True
    SqsEventSource(queues.sqs, queues.urls["update_contact"], shop_creates).drain()
    (nils,) = with_email(sandbox, "new.shopper@example.com")
    stored = sandbox.state.get_contact(nils["id"])
    assert (stored["contactType"], stored["firstName"], stored["lastName"], stored["city"]) == (
        "Contact", "Nils", "Nyman", "Uppsala"
    )  # fmt: skip
    assert stored["mobilePhone"] == "+46709998877" and stored["_source"] == "ECOM"
    assert routes(sandbox) == ["lookup", "create"] and queues.messages("update_contact-dlq") == []


def test_without_the_setting_a_new_shopify_customer_is_dead_lettered_as_not_found(secrets_env, queues, sandbox):
    handler = load_webhooks_and_update()
    deliver(handler, "shopify", NEW_SHOPPER, lambda raw: shopify_headers(raw, "customers/create"))
    SqsEventSource(queues.sqs, queues.urls["update_contact"], handler).drain()
    (dead,) = queues.messages("update_contact-dlq")
    assert dead["MessageAttributes"]["errorType"]["StringValue"] == "ContactNotFound"
    assert "create" not in routes(sandbox)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SHOPIFY_CREATE_IF_MISSING", "{not json"),
        ("SHOPIFY_CREATE_IF_MISSING", '{"source": "ECOM"}'),
        ("WOOCOMMERCE_CREATE_IF_MISSING", '{"contactType": "Member"}'),
        ("WOOCOMMERCE_CREATE_IF_MISSING", '{"contactType": "Contact", "store": "600"}'),
    ],
)
def test_a_wrong_create_setting_stops_the_function_at_start_naming_it(secrets_env, monkeypatch, setting, value):
    secrets_env.setting(setting, value)
    with pytest.raises(ConfigurationError, match=r"shops document: .* shop '.*': 'createIfMissing'"):
        load_function("intake_webhooks")


def test_a_creation_is_counted_and_logged_without_the_customers_data(invoke, sandbox, log_output, capsys):
    invoke("update_contact", new_customer())
    metrics = {
        m["Name"]
        for line in capsys.readouterr().out.splitlines()
        if '"_aws"' in line
        for d in json.loads(line)["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert "ContactsCreated" in metrics
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    (changed,) = [line for line in lines if line["message"] == "contact changed"]
    assert changed["contactCreated"] is True
    assert changed["attributesSent"] == ["city", "contactType", "email", "firstName"]
    assert NORA not in log_output.getvalue() and "Nora" not in log_output.getvalue()


def test_in_v3_a_create_sends_its_options_as_query_parameters(function_env, sandbox, monkeypatch):
    function_env("update_contact")
    monkeypatch.setenv("ENGAGE_API_VERSION", "v3")
    update = load_function("update_contact").lambda_handler
    result = update(new_customer(create=CONTACT), LocalContext())
    create = sandbox.state.request_log("create")[0]
    assert create["path"] == "/api/v3/contacts" and result["created"] is True
    assert create["query"] == {"source": "ECOM", "storeExternalId": "600", "createAsUnapproved": "false"}
    assert "source" not in headers_of(create)
    (nora,) = with_email(sandbox, NORA)
    assert sandbox.state.get_contact(nora["id"])["_source"] == "ECOM"  # v3 read it: it came in the query


def test_the_shopify_customer_id_becomes_the_created_contacts_external_id(secrets_env, monkeypatch, queues, sandbox):
    secrets_env.set("shopify", "createIfMissing", {"contactType": "Contact"})
    secrets_env.set("shopify", "attributeMap", {"externalId": "id"})
    handler = load_webhooks_and_update()
    shopper = {**NEW_SHOPPER, "id": 706405506930370099}  # a JSON number, larger than a double holds exactly
    assert deliver(handler, "shopify", shopper, lambda raw: shopify_headers(raw, "customers/create"))[0] == 200
    SqsEventSource(queues.sqs, queues.urls["update_contact"], handler).drain()
    (create,) = sandbox.state.request_log("create")
    assert json.loads(create["body"])["externalId"] == "706405506930370099"  # Engage's externalId is a string
    (nils,) = with_email(sandbox, "new.shopper@example.com")
    assert sandbox.state.get_contact(nils["id"])["externalId"] == "706405506930370099"
    assert queues.messages("update_contact-dlq") == []
