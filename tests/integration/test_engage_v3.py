"""Engage API v3, chosen by ENGAGE_API_VERSION: what Engage received from the client and the three functions.

v3 updates by PATCH (where `contactType` does nothing), has no promoteToMember (updateContactType
makes a Member) and takes a create's options as query parameters.
"""

from __future__ import annotations

import json

import pytest
import requests
from engage_contact.aws.secrets import ApiKeySource, SecretReader
from engage_contact.engage.client import EngageClient
from engage_contact.engage.retry import Deadline, RetryPolicy
from engage_contact.engage.versions import V2, V3
from engage_contact.errors import ConfigurationError, EngageRejected, EngageUnavailable, InvalidRequest

from local.engage_sandbox import DEMO_CONTACTS
from local.engage_sandbox.state import Fault
from local.lambda_runtime import LocalContext

from ..conftest import FUNCTIONS, SANDBOX_KEY, load_function

ANNA, BERTIL, CECILIA = (c["id"] for c in DEMO_CONTACTS)  # a Member, a Contact, a Prospect


@pytest.fixture
def client(sandbox, api_key_secret):
    return EngageClient(
        sandbox.url,
        ApiKeySource(api_key_secret, SecretReader()),
        timeout_seconds=1.0,
        retry=RetryPolicy(max_attempts=4, base_seconds=0.01, cap_seconds=0.05),
        sleep=lambda seconds: None,
        version="v3",
    )


@pytest.fixture
def functions(function_env, monkeypatch):
    """The three functions' handlers, deployed with ENGAGE_API_VERSION=v3."""
    monkeypatch.setenv("ENGAGE_API_VERSION", "v3")
    handlers = {}
    for name in FUNCTIONS:
        function_env(name)
        handlers[name] = load_function(name).lambda_handler
    return handlers


def deadline():
    return Deadline(30)


def ctx():
    return LocalContext(timeout_seconds=30)


def calls(sandbox):
    """What Engage received, as (route, method, path) in arrival order."""
    return [(r["route"], r["method"], r["path"]) for r in sandbox.state.request_log()]


def routes(sandbox):
    return [r["route"] for r in sandbox.state.request_log()]


def patch_bodies(sandbox):
    return [json.loads(r["body"]) for r in sandbox.state.request_log("update")]


def faults(sandbox, *specs):
    sandbox.state.add_faults([Fault.from_json({"version": "v3", **spec}) for spec in specs])


def only_v3_was_called(sandbox):
    return sandbox.state.request_log(version="v2") == [] and sandbox.state.request_log(version="v3") != []


# --- the client --------------------------------------------------------------------------------------


def test_update_is_a_patch_of_only_the_attributes(client, sandbox):
    contact = client.update_contact(ANNA, {"lastName": "Examplesson"}, deadline())
    assert contact["lastName"] == "Examplesson"
    assert calls(sandbox) == [("update", "PATCH", f"/api/v3/contacts/{ANNA}")]
    assert patch_bodies(sandbox) == [{"lastName": "Examplesson"}]


def test_promote_writes_the_attributes_by_patch_then_makes_a_member_by_type_change(client, sandbox):
    promotion = client.promote_to_member(BERTIL, {"memberNumber": "M2"}, deadline())
    assert not promotion.already_member
    assert calls(sandbox) == [
        ("get", "GET", f"/api/v3/contacts/{BERTIL}"),
        ("update", "PATCH", f"/api/v3/contacts/{BERTIL}"),
        ("contactType", "POST", f"/api/v3/contacts/{BERTIL}/updateContactType"),
    ]
    assert patch_bodies(sandbox) == [{"memberNumber": "M2"}]
    change = sandbox.state.request_log("contactType")[0]
    assert change["query"] == {"contactTypeId": "Member"} and change["body"] == ""
    stored = sandbox.state.get_contact(BERTIL)
    assert stored["contactType"] == "Member" and stored["memberNumber"] == "M2" and stored["_promotions"] == 1


def test_promote_never_sends_contact_type_in_a_patch(client, sandbox):
    client.promote_to_member(BERTIL, {"memberNumber": "M2", "city": "Lund"}, deadline())
    assert patch_bodies(sandbox) and all("contactType" not in body for body in patch_bodies(sandbox))


def test_promote_with_nothing_to_write_skips_the_patch(client, sandbox):
    client.promote_to_member(BERTIL, {}, deadline())
    assert routes(sandbox) == ["get", "contactType"]
    assert sandbox.state.get_contact(BERTIL)["contactType"] == "Member"


def test_the_attributes_are_written_before_the_type_change_that_needs_them(client, sandbox):
    # The tenant requires an email of a Member: the command brings it, the PATCH writes it first.
    cid = sandbox.state.add_contact({"contactType": "Contact"})
    client.promote_to_member(cid, {"email": "new.member@example.com"}, deadline())
    stored = sandbox.state.get_contact(cid)
    assert stored["contactType"] == "Member" and stored["email"] == "new.member@example.com"


def test_a_failed_type_change_leaves_the_attributes_written_and_says_so(client, sandbox):
    cid = sandbox.state.add_contact({"contactType": "Contact"})
    with pytest.raises(EngageRejected, match="MissingRequiredAttributes") as raised:
        client.promote_to_member(cid, {"city": "Lund"}, deadline())
    assert raised.value.details["attributesWritten"] is True
    stored = sandbox.state.get_contact(cid)
    assert stored["contactType"] == "Contact" and stored["city"] == "Lund"


def test_promote_of_a_member_writes_nothing_itself_and_says_already_member(client, sandbox):
    promotion = client.promote_to_member(ANNA, {"city": "Lund"}, deadline())
    assert promotion.already_member and promotion.contact["id"] == ANNA
    assert routes(sandbox) == ["get"]  # the caller writes its attributes by an update


def test_a_type_change_whose_outcome_is_unknown_is_checked_by_get_not_sent_twice(client, sandbox):
    faults(sandbox, {"kind": "apply_then_status", "route": "contactType", "status": 503, "count": 1})
    promotion = client.promote_to_member(BERTIL, {"memberNumber": "M2"}, deadline())
    assert promotion.contact["contactType"] == "Member" and not promotion.already_member
    assert routes(sandbox) == ["get", "update", "contactType", "get"]
    assert sandbox.state.get_contact(BERTIL)["_promotions"] == 1


def test_a_type_change_that_failed_before_applying_is_sent_again_after_the_check(client, sandbox):
    faults(sandbox, {"kind": "drop", "route": "contactType", "count": 1})
    client.promote_to_member(BERTIL, {"memberNumber": "M2"}, deadline())
    assert routes(sandbox) == ["get", "update", "contactType", "get", "contactType"]
    assert sandbox.state.get_contact(BERTIL)["contactType"] == "Member"


def test_a_type_change_is_not_resent_blind_when_the_check_fails(sandbox, api_key_secret):
    def sleep_then_break_reads(seconds):
        # The wait before the check: from now on the GET that would check the outcome fails.
        faults(sandbox, {"kind": "status", "route": "get", "status": 503})

    client = EngageClient(
        sandbox.url, ApiKeySource(api_key_secret, SecretReader()), 1.0, sleep=sleep_then_break_reads, version="v3"
    )
    faults(sandbox, {"kind": "status", "route": "contactType", "status": 503, "count": 1})
    with pytest.raises(EngageUnavailable) as raised:
        client.promote_to_member(BERTIL, {"memberNumber": "M2"}, deadline())
    assert routes(sandbox) == ["get", "update", "contactType", "get"]
    assert raised.value.details["attributesWritten"] is True


def test_a_type_change_refused_for_a_contact_that_is_a_member_by_now_is_a_success(client, sandbox):
    faults(sandbox, {"kind": "apply_then_status", "route": "contactType", "status": 400, "count": 1})
    promotion = client.promote_to_member(BERTIL, {"memberNumber": "M2"}, deadline())
    assert promotion.contact["contactType"] == "Member" and not promotion.already_member
    assert routes(sandbox) == ["get", "update", "contactType", "get"]


def test_change_type_to_member_is_refused_without_a_call(client, sandbox):
    with pytest.raises(InvalidRequest):
        client.change_contact_type(BERTIL, "Member", deadline())
    assert sandbox.state.request_log() == []


def test_change_type_uses_v3(client, sandbox):
    client.change_contact_type(CECILIA, "Contact", deadline())
    assert calls(sandbox) == [("contactType", "POST", f"/api/v3/contacts/{CECILIA}/updateContactType")]
    assert sandbox.state.get_contact(CECILIA)["contactType"] == "Contact"


@pytest.mark.parametrize("version", [V2, V3], ids=["v2", "v3"])
def test_each_version_puts_the_create_options_where_engage_reads_them(sandbox, version):
    """v2 reads a create's options from headers, v3 from the query: each ignores the other place."""
    params, headers = version.create_options({"source": "ECOM", "storeExternalId": "600", "createAsUnapproved": False})
    response = requests.post(
        sandbox.url + version.contacts_path,
        params=params,
        headers={"apikey": SANDBOX_KEY, "Content-Type": "application/json", **headers},
        data=json.dumps({"email": "nora@example.com", "contactType": "Contact"}),
        timeout=5,
    )
    assert response.status_code == 201
    stored = sandbox.state.get_contact(response.json()["id"])
    assert (stored["_source"], stored["_storeExternalId"], stored["_createAsUnapproved"]) == ("ECOM", "600", "false")
    assert stored["_createdVia"] == version.name


# --- the three functions, deployed with ENGAGE_API_VERSION=v3 --------------------------------------------


def test_update_function_patches_the_sparse_payload(functions, sandbox):
    command = {"lookup": {"email": "bertil@example.com"}, "attributes": {"city": "Lund", "street": ""}}
    result = functions["update_contact"](command, ctx())
    assert result["contactId"] == BERTIL and result["sent"] == {"city": "Lund"} and result["droppedEmpty"] == ["street"]
    assert calls(sandbox) == [
        ("lookup", "GET", "/api/v3/contacts/id"),
        ("update", "PATCH", f"/api/v3/contacts/{BERTIL}"),
    ]
    assert patch_bodies(sandbox) == [{"city": "Lund"}] and only_v3_was_called(sandbox)


def test_update_function_refuses_contact_type_without_a_call(functions, sandbox):
    with pytest.raises(InvalidRequest):
        functions["update_contact"]({"contactId": BERTIL, "attributes": {"contactType": "Member"}}, ctx())
    assert sandbox.state.request_log() == []


def test_promote_function_is_patch_then_type_change(functions, sandbox):
    result = functions["promote_contact"]({"contactId": BERTIL, "attributes": {"memberNumber": "M2"}}, ctx())
    assert result["contactId"] == BERTIL and result["sent"] == {"memberNumber": "M2"}
    assert "alreadyMember" not in result
    assert routes(sandbox) == ["get", "update", "contactType"] and only_v3_was_called(sandbox)
    assert patch_bodies(sandbox) == [{"memberNumber": "M2"}]
    assert sandbox.state.get_contact(BERTIL)["contactType"] == "Member"


def test_promote_function_of_a_member_writes_its_attributes_and_says_already_member(functions, sandbox):
    command = {"contactId": ANNA, "attributes": {"memberNumber": "M2002", "city": "Uppsala", "careOf": ""}}
    result = functions["promote_contact"](command, ctx())
    assert result["alreadyMember"] is True and result["sent"] == {"memberNumber": "M2002", "city": "Uppsala"}
    assert result["contact"]["city"] == "Uppsala"
    assert routes(sandbox) == ["get", "update"] and patch_bodies(sandbox) == [result["sent"]]
    stored = sandbox.state.get_contact(ANNA)
    assert (stored["city"], stored["memberNumber"], stored["_promotions"]) == ("Uppsala", "M2002", 0)


def test_promote_function_with_an_unknown_outcome_checks_by_get_before_sending_again(functions, sandbox):
    faults(sandbox, {"kind": "apply_then_drop", "route": "contactType", "count": 1})
    result = functions["promote_contact"]({"contactId": BERTIL, "attributes": {"memberNumber": "M2"}}, ctx())
    assert result["contact"]["contactType"] == "Member" and "alreadyMember" not in result
    assert routes(sandbox) == ["get", "update", "contactType", "get"]
    assert sandbox.state.get_contact(BERTIL)["_promotions"] == 1


def test_change_type_function_to_member_is_refused_without_a_call(functions, sandbox):
    with pytest.raises(InvalidRequest):
        functions["change_contact_type"]({"contactId": BERTIL, "contactTypeId": "Member"}, ctx())
    assert sandbox.state.request_log() == []


def test_change_type_function_uses_v3(functions, sandbox):
    result = functions["change_contact_type"]({"contactId": CECILIA, "contactTypeId": "Contact"}, ctx())
    assert result == {"contactId": CECILIA, "contact": None, "sent": {"contactTypeId": "Contact"}, "droppedEmpty": []}
    assert calls(sandbox) == [("contactType", "POST", f"/api/v3/contacts/{CECILIA}/updateContactType")]


# --- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, "v2"), ("v2", "v2"), ("v3", "v3"), ("V3", "v3")])
def test_the_api_version_is_v2_unless_the_deployment_says_v3(value, expected):
    from engage_contact.settings import Settings

    env = {"ENGAGE_BASE_URL": "https://tenant.voyado.com", "ENGAGE_API_KEY_SECRET_ARN": "a",
           "DIGEST_KEY_SECRET_ARN": "d", "WEBHOOK_SIGNING": "off"}  # fmt: skip
    if value is not None:
        env["ENGAGE_API_VERSION"] = value
    assert Settings.from_env(env).engage_api_version == expected


def test_an_unknown_api_version_stops_the_function_at_start_naming_the_variable(function_env, monkeypatch):
    function_env("update_contact")
    monkeypatch.setenv("ENGAGE_API_VERSION", "v4")
    with pytest.raises(ConfigurationError, match="ENGAGE_API_VERSION"):
        load_function("update_contact")
