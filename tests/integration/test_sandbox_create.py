"""The sandbox creates contacts as Engage does (docs/contract.md §1), traps included, over real HTTP."""

from __future__ import annotations

import re

import pytest
import requests

from local.engage_sandbox import EngageSandbox

from ..conftest import SANDBOX_KEY
from .test_sandbox import ANNA, HEADERS, contact

GUID_LIKE = re.compile(r"^[0-9a-f]+(?:-[0-9a-f]+)+$")


def create(http, sandbox, body, version="v2", headers=HEADERS, **kwargs):
    return http.post(f"{sandbox.url}/api/{version}/contacts", json=body, headers=headers, **kwargs)


def contacts(http, sandbox):
    return http.get(f"{sandbox.url}/_sandbox/contacts").json()


def with_email(http, sandbox, email):
    return [c for c in contacts(http, sandbox) if (c.get("email") or "").lower() == email.lower()]


def fault(http, sandbox, **spec):
    assert http.post(f"{sandbox.url}/_sandbox/faults", json=spec).status_code == 200


# --- what a create does ---------------------------------------------------------------


def test_create_answers_201_with_the_contact_and_a_new_guid_like_id(sandbox, http):
    response = create(http, sandbox, {"contactType": "Contact", "email": "nora@example.com", "firstName": "Nora"})
    assert response.status_code == 201
    body = response.json()
    assert GUID_LIKE.match(body["id"]) and len(body["id"]) <= 64
    assert body["contactType"] == "Contact" and body["firstName"] == "Nora" and body["email"] == "nora@example.com"
    assert contact(http, sandbox, body["id"])["firstName"] == "Nora"
    found = http.get(f"{sandbox.url}/api/v2/contacts/id", params={"email": "nora@example.com"}, headers=HEADERS)
    assert found.json() == body["id"]


def test_two_creates_get_two_different_ids(sandbox, http):
    first = create(http, sandbox, {"contactType": "Contact", "email": "a1@example.com"}).json()["id"]
    second = create(http, sandbox, {"contactType": "Contact", "email": "a2@example.com"}).json()["id"]
    assert first != second


@pytest.mark.parametrize("body", [{"email": "m@example.com"}, {"email": "m@example.com", "contactType": None}])
def test_create_without_a_contact_type_silently_makes_a_member(sandbox, http, body):
    response = create(http, sandbox, body)
    assert response.status_code == 201 and response.json()["contactType"] == "Member"
    assert contact(http, sandbox, response.json()["id"])["contactType"] == "Member"


@pytest.mark.parametrize("contact_type", ["Wizard", "", "member"])
def test_create_with_a_contact_type_that_does_not_exist_is_refused(sandbox, http, contact_type):
    before = len(contacts(http, sandbox))
    response = create(http, sandbox, {"contactType": contact_type, "email": "w@example.com"})
    assert response.status_code == 400 and response.json()["errorCode"] == "InvalidContactType"
    assert len(contacts(http, sandbox)) == before


@pytest.mark.parametrize("email", [None, "", "   "])
def test_create_without_the_key_attribute_is_refused(sandbox, http, email):
    body = {"contactType": "Contact", "firstName": "Keyless"}
    if email is not None:
        body["email"] = email
    before = len(contacts(http, sandbox))
    response = create(http, sandbox, body)
    assert response.status_code == 400 and response.json()["errorCode"] == "MissingKeyAttribute"
    assert len(contacts(http, sandbox)) == before


def test_the_key_attribute_is_the_tenants_setting(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/config", json={"keyAttribute": "mobilePhone"})
    refused = create(http, sandbox, {"contactType": "Contact", "email": "p@example.com"})
    assert refused.status_code == 400 and "mobilePhone" in refused.json()["message"]
    assert create(http, sandbox, {"contactType": "Contact", "mobilePhone": "+46709999999"}).status_code == 201
    again = create(http, sandbox, {"contactType": "Contact", "mobilePhone": "+46709999999"})
    assert again.status_code == 409 and again.json()["errorCode"] == "ApprovedContactWithKeyExists"


def test_a_key_attribute_engage_does_not_have_is_refused_by_the_config(sandbox, http):
    response = http.post(f"{sandbox.url}/_sandbox/config", json={"keyAttribute": "firstName"})
    assert response.status_code == 400 and "keyAttribute" in response.json()["error"]


def test_create_ignores_unknown_fields_silently(sandbox, http):
    response = create(http, sandbox, {"contactType": "Contact", "email": "u@example.com", "firstNam": "Una"})
    assert response.status_code == 201
    stored = contact(http, sandbox, response.json()["id"])
    assert "firstNam" not in stored and "firstName" not in stored


def test_create_stores_empty_values_as_given(sandbox, http):
    body = {"contactType": "Contact", "email": "e@example.com", "careOf": "", "city": None}
    stored = contact(http, sandbox, create(http, sandbox, body).json()["id"])
    assert stored["careOf"] == "" and "city" in stored and stored["city"] is None


def test_create_refuses_a_malformed_email(sandbox, http):
    response = create(http, sandbox, {"contactType": "Contact", "email": "not-an-address"})
    assert response.status_code == 400 and response.json()["errorCode"] == "InvalidEmailAddress"


def test_create_as_a_member_needs_the_member_attributes(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/config", json={"memberRequired": ["email", "memberNumber"]})
    refused = create(http, sandbox, {"email": "x@example.com"})
    assert refused.status_code == 400 and refused.json()["errorCode"] == "MissingRequiredAttributes"
    assert with_email(http, sandbox, "x@example.com") == []
    assert create(http, sandbox, {"email": "x@example.com", "contactType": "Contact"}).status_code == 201


# --- v2 options are headers -------------------------------------------------------------


def test_create_records_the_option_headers(sandbox, http):
    headers = {**HEADERS, "source": "ECOM", "storeExternalId": "600", "createAsUnapproved": "true"}
    response = create(http, sandbox, {"contactType": "Contact", "email": "o@example.com"}, headers=headers)
    stored = contact(http, sandbox, response.json()["id"])
    assert stored["_source"] == "ECOM" and stored["_storeExternalId"] == "600"
    assert stored["_createAsUnapproved"] == "true" and stored["_createdVia"] == "v2"


def test_create_without_options_records_none_of_them(sandbox, http):
    stored = contact(
        http, sandbox, create(http, sandbox, {"contactType": "Contact", "email": "n@example.com"}).json()["id"]
    )
    assert (stored["_source"], stored["_storeExternalId"], stored["_createAsUnapproved"]) == (None, None, None)


def test_v2_ignores_the_options_as_query_parameters(sandbox, http):
    response = create(
        http,
        sandbox,
        {"contactType": "Contact", "email": "q@example.com"},
        params={"source": "ECOM", "storeExternalId": "600"},
    )
    stored = contact(http, sandbox, response.json()["id"])
    assert stored["_source"] is None and stored["_storeExternalId"] is None


def test_create_refuses_a_create_as_unapproved_that_is_not_true_or_false(sandbox, http):
    headers = {**HEADERS, "createAsUnapproved": "yes"}
    response = create(http, sandbox, {"contactType": "Contact", "email": "y@example.com"}, headers=headers)
    assert response.status_code == 400 and with_email(http, sandbox, "y@example.com") == []


# --- one key, one contact ---------------------------------------------------------------


def test_create_of_a_key_that_exists_is_409_and_creates_nothing(sandbox, http):
    before = len(contacts(http, sandbox))
    response = create(http, sandbox, {"contactType": "Contact", "email": "ANNA@example.com", "firstName": "Twin"})
    assert response.status_code == 409 and response.json()["errorCode"] == "ApprovedContactWithKeyExists"
    assert len(contacts(http, sandbox)) == before and contact(http, sandbox, ANNA)["firstName"] == "Anna"


def test_create_can_be_told_the_key_is_being_created(sandbox, http):
    fault(http, sandbox, kind="status", route="create", status=409, code="ContactWithKeyIsBeingCreated", count=1)
    body = {"contactType": "Contact", "email": "race@example.com"}
    response = create(http, sandbox, body)
    assert response.status_code == 409 and response.json()["errorCode"] == "ContactWithKeyIsBeingCreated"
    assert with_email(http, sandbox, "race@example.com") == []
    assert create(http, sandbox, body).status_code == 201


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_apply_then_503_creates_the_contact_and_answers_failure(sandbox, http, version):
    fault(http, sandbox, kind="apply_then_status", route="create", status=503, count=1)
    body = {"contactType": "Contact", "email": "once@example.com"}
    assert create(http, sandbox, body, version=version).status_code == 503
    (created,) = with_email(http, sandbox, "once@example.com")
    again = create(http, sandbox, body, version=version)  # what a blind retry would meet
    assert again.status_code == 409 and again.json()["errorCode"] == "ApprovedContactWithKeyExists"
    assert [c["id"] for c in with_email(http, sandbox, "once@example.com")] == [created["id"]]


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_apply_then_hang_creates_the_contact_and_outlasts_the_client(sandbox, http, version):
    fault(http, sandbox, kind="apply_then_hang", route="create", seconds=5, count=1)
    with pytest.raises(requests.Timeout):
        create(http, sandbox, {"contactType": "Contact", "email": "slow@example.com"}, version=version, timeout=0.5)
    assert len(with_email(http, sandbox, "slow@example.com")) == 1


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_apply_then_drop_creates_the_contact_and_closes_without_answer(sandbox, http, version):
    fault(http, sandbox, kind="apply_then_drop", route="create", count=1)
    with pytest.raises(requests.ConnectionError):
        create(http, sandbox, {"contactType": "Contact", "email": "drop@example.com"}, version=version)
    assert len(with_email(http, sandbox, "drop@example.com")) == 1


def test_apply_then_fault_does_not_fire_on_a_refused_create(sandbox, http):
    fault(http, sandbox, kind="apply_then_status", route="create", status=503, count=1)
    assert create(http, sandbox, {"contactType": "Contact", "email": "anna@example.com"}).status_code == 409


def test_create_is_logged_as_applied_with_the_new_id(sandbox, http):
    new_id = create(http, sandbox, {"contactType": "Contact", "email": "log@example.com"}).json()["id"]
    create(http, sandbox, {"contactType": "Contact", "email": "log@example.com"})
    first, second = sandbox.state.request_log("create")
    assert first["contactId"] == new_id and first["applied"] and first["status"] == 201
    assert not second["applied"] and second["errorCode"] == "ApprovedContactWithKeyExists"


def test_the_collection_answers_only_post(sandbox, http):
    assert http.get(f"{sandbox.url}/api/v2/contacts", headers=HEADERS).status_code == 405


def test_a_sandbox_started_with_another_key_attribute_creates_by_it(http):
    with EngageSandbox(api_keys=(SANDBOX_KEY,), key_attribute="externalId", demo=False) as box:
        assert create(http, box, {"contactType": "Contact", "email": "k@example.com"}).status_code == 400
        assert create(http, box, {"contactType": "Contact", "externalId": "shop-7"}).status_code == 201
        assert http.get(f"{box.url}/_sandbox/config").json()["keyAttribute"] == "externalId"
    with pytest.raises(ValueError, match="key attribute"):
        EngageSandbox(key_attribute="firstName")
