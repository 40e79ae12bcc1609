"""The sandbox plays Engage's API v3 (docs/contract.md §1) over the same contacts as v2, over real HTTP."""

from __future__ import annotations

import pytest
import requests

from .test_sandbox import ANNA, BERTIL, CECILIA, HEADERS, contact


def v3(http, sandbox, method, path, body=None, headers=HEADERS, **kwargs):
    return http.request(method, f"{sandbox.url}/api/v3/contacts{path}", json=body, headers=headers, **kwargs)


def v2(http, sandbox, method, path, body=None, headers=HEADERS, **kwargs):
    return http.request(method, f"{sandbox.url}/api/v2/contacts{path}", json=body, headers=headers, **kwargs)


def fault(http, sandbox, **spec):
    assert http.post(f"{sandbox.url}/_sandbox/faults", json=spec).status_code == 200


# --- update is PATCH ----------------------------------------------------------------------


def test_patch_writes_the_fields_present_and_answers_the_whole_contact(sandbox, http):
    response = v3(http, sandbox, "PATCH", f"/{ANNA}", {"lastName": "Examplesson"})
    assert response.status_code == 200
    assert response.json() == v2(http, sandbox, "GET", f"/{ANNA}").json()
    assert response.json()["lastName"] == "Examplesson" and response.json()["firstName"] == "Anna"


def test_patch_overwrites_with_an_empty_value(sandbox, http):
    v3(http, sandbox, "PATCH", f"/{ANNA}", {"careOf": "", "city": None})
    stored = contact(http, sandbox, ANNA)
    assert stored["careOf"] == "" and stored["city"] is None


def test_patch_ignores_unknown_names_silently(sandbox, http):
    assert v3(http, sandbox, "PATCH", f"/{ANNA}", {"firstNam": "Anita"}).status_code == 200
    assert "firstNam" not in contact(http, sandbox, ANNA)


def test_patch_with_a_contact_type_does_nothing_silently(sandbox, http):
    response = v3(http, sandbox, "PATCH", f"/{CECILIA}", {"contactType": "Member", "firstName": "Cissi"})
    assert response.status_code == 200 and response.json()["contactType"] == "Prospect"
    stored = contact(http, sandbox, CECILIA)
    assert stored["contactType"] == "Prospect" and stored["firstName"] == "Cissi" and stored["_promotions"] == 0


def test_patch_with_nothing_is_400_nodata_and_of_no_one_404(sandbox, http):
    empty = v3(http, sandbox, "PATCH", f"/{ANNA}", {})
    assert empty.status_code == 400 and empty.json()["errorCode"] == "NoData"
    missing = v3(http, sandbox, "PATCH", "/00000000-0000-0000-0000-000000000000", {"city": "Lund"})
    assert missing.status_code == 404 and missing.json()["errorCode"] == "ContactNotFound"


def test_v3_does_not_update_with_post_nor_v2_with_patch(sandbox, http):
    assert v3(http, sandbox, "POST", f"/{ANNA}", {"city": "Lund"}).status_code == 405
    assert v2(http, sandbox, "PATCH", f"/{ANNA}", {"city": "Lund"}).status_code == 405
    assert contact(http, sandbox, ANNA)["city"] == "Stockholm"


# --- read and lookup answer as v2 does --------------------------------------------------------


def test_get_answers_as_v2_does(sandbox, http):
    assert v3(http, sandbox, "GET", f"/{ANNA}").json() == v2(http, sandbox, "GET", f"/{ANNA}").json()
    assert v3(http, sandbox, "GET", "/0000-0000").status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"email": "anna@example.com"},
        {"mobilePhone": "+46701234567"},
        {"customKey": "M1001"},
        {"email": "nobody@example.com"},
        {"email": "anna-at-example"},
        {"email": "anna@example.com", "contactType": "Wizard"},
        {},
    ],
)
def test_lookup_answers_as_v2_does(sandbox, http, params):
    three = v3(http, sandbox, "GET", "/id", params=params)
    two = v2(http, sandbox, "GET", "/id", params=params)
    assert (three.status_code, three.text) == (two.status_code, two.text)


def test_lookup_answers_the_id_as_a_quoted_string(sandbox, http):
    assert v3(http, sandbox, "GET", "/id", params={"email": "anna@example.com"}).text == f'"{ANNA}"'


# --- create takes its options as query parameters ------------------------------------------------


def test_create_records_the_options_given_as_query_parameters(sandbox, http):
    params = {"source": "ECOM", "storeExternalId": "600", "createAsUnapproved": "false"}
    response = v3(http, sandbox, "POST", "", {"contactType": "Contact", "email": "v3@example.com"}, params=params)
    assert response.status_code == 201 and response.json()["contactType"] == "Contact"
    stored = contact(http, sandbox, response.json()["id"])
    assert (stored["_source"], stored["_storeExternalId"], stored["_createAsUnapproved"]) == ("ECOM", "600", "false")
    assert stored["_createdVia"] == "v3"


def test_create_ignores_the_options_sent_as_headers(sandbox, http):
    headers = {**HEADERS, "source": "ECOM", "storeExternalId": "600", "createAsUnapproved": "true"}
    response = v3(http, sandbox, "POST", "", {"contactType": "Contact", "email": "h@example.com"}, headers=headers)
    assert response.status_code == 201
    stored = contact(http, sandbox, response.json()["id"])
    assert (stored["_source"], stored["_storeExternalId"], stored["_createAsUnapproved"]) == (None, None, None)


def test_create_without_a_contact_type_silently_makes_a_member(sandbox, http):
    response = v3(http, sandbox, "POST", "", {"email": "m3@example.com"})
    assert response.status_code == 201 and response.json()["contactType"] == "Member"


def test_create_of_a_key_that_exists_is_409(sandbox, http):
    response = v3(http, sandbox, "POST", "", {"contactType": "Contact", "email": "bertil@example.com"})
    assert response.status_code == 409 and response.json()["errorCode"] == "ApprovedContactWithKeyExists"


# --- contact type: the way to a Member in v3 ----------------------------------------------------


def test_update_contact_type_makes_a_member_in_v3(sandbox, http):
    response = v3(http, sandbox, "POST", f"/{CECILIA}/updateContactType", params={"contactTypeId": "Member"})
    assert response.status_code == 200
    stored = contact(http, sandbox, CECILIA)
    assert stored["contactType"] == "Member" and stored["_promotions"] == 1


def test_update_contact_type_still_refuses_member_in_v2(sandbox, http):
    response = v2(http, sandbox, "POST", f"/{CECILIA}/updateContactType", params={"contactTypeId": "Member"})
    assert response.status_code == 400 and contact(http, sandbox, CECILIA)["contactType"] == "Prospect"


def test_update_contact_type_to_member_needs_the_member_attributes(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/config", json={"memberRequired": ["email", "memberNumber"]})
    response = v3(http, sandbox, "POST", f"/{CECILIA}/updateContactType", params={"contactTypeId": "Member"})
    assert response.status_code == 400 and response.json()["errorCode"] == "MissingRequiredAttributes"
    assert contact(http, sandbox, CECILIA)["contactType"] == "Prospect"


def test_update_contact_type_to_another_type_and_of_no_one(sandbox, http):
    ok = v3(http, sandbox, "POST", f"/{CECILIA}/updateContactType", params={"contactTypeId": "Contact"})
    assert ok.status_code == 200 and contact(http, sandbox, CECILIA)["contactType"] == "Contact"
    bad = v3(http, sandbox, "POST", f"/{CECILIA}/updateContactType", params={"contactTypeId": "Wizard"})
    assert bad.status_code == 400 and bad.json()["errorCode"] == "InvalidContactType"
    gone = v3(http, sandbox, "POST", "/0000-0000/updateContactType", params={"contactTypeId": "Contact"})
    assert gone.status_code == 404


def test_promote_to_member_does_not_exist_in_v3(sandbox, http):
    assert v3(http, sandbox, "POST", f"/{BERTIL}/promoteToMember", {}).status_code == 404
    assert contact(http, sandbox, BERTIL)["contactType"] == "Contact"


# --- one set of contacts ----------------------------------------------------------------------


def test_v2_and_v3_share_the_contacts(sandbox, http):
    new_id = v3(http, sandbox, "POST", "", {"contactType": "Contact", "email": "both@example.com"}).json()["id"]
    assert v2(http, sandbox, "POST", f"/{new_id}", {"city": "Lund"}).status_code == 200
    assert v3(http, sandbox, "GET", f"/{new_id}").json()["city"] == "Lund"
    assert v2(http, sandbox, "GET", "/id", params={"email": "both@example.com"}).json() == new_id


def test_the_log_names_each_calls_version_and_route(sandbox, http):
    v3(http, sandbox, "PATCH", f"/{ANNA}", {"city": "Lund"})
    v2(http, sandbox, "POST", f"/{ANNA}", {"city": "Malmö"})
    assert [(r["version"], r["route"], r["method"]) for r in sandbox.state.request_log("update")] == [
        ("v3", "update", "PATCH"),
        ("v2", "update", "POST"),
    ]
    (entry,) = http.get(f"{sandbox.url}/_sandbox/requests", params={"version": "v3"}).json()
    assert entry["path"] == f"/api/v3/contacts/{ANNA}" and entry["applied"]


# --- faults after applying, so an unknown outcome can be played ----------------------------------

WRITES_V3 = [
    ("update", "PATCH", f"/{CECILIA}", {"city": "Visby"}, {}),
    ("contactType", "POST", f"/{CECILIA}/updateContactType", None, {"contactTypeId": "Member"}),
]


def applied(http, sandbox, route):
    stored = contact(http, sandbox, CECILIA)
    return stored["city"] == "Visby" if route == "update" else stored["contactType"] == "Member"


@pytest.mark.parametrize(("route", "method", "path", "body", "params"), WRITES_V3)
def test_apply_then_503_applies_the_v3_write_and_answers_failure(sandbox, http, route, method, path, body, params):
    fault(http, sandbox, kind="apply_then_status", route=route, version="v3", status=503, count=1)
    assert v3(http, sandbox, method, path, body, params=params).status_code == 503
    assert applied(http, sandbox, route)


@pytest.mark.parametrize(("route", "method", "path", "body", "params"), WRITES_V3)
def test_apply_then_hang_applies_the_v3_write_and_outlasts_the_client(sandbox, http, route, method, path, body, params):
    fault(http, sandbox, kind="apply_then_hang", route=route, version="v3", seconds=5, count=1)
    with pytest.raises(requests.Timeout):
        v3(http, sandbox, method, path, body, params=params, timeout=0.5)
    assert applied(http, sandbox, route)


@pytest.mark.parametrize(("route", "method", "path", "body", "params"), WRITES_V3)
def test_apply_then_drop_applies_the_v3_write_and_closes(sandbox, http, route, method, path, body, params):
    fault(http, sandbox, kind="apply_then_drop", route=route, version="v3", count=1)
    with pytest.raises(requests.ConnectionError):
        v3(http, sandbox, method, path, body, params=params)
    assert applied(http, sandbox, route)


def test_a_fault_for_v3_leaves_v2_alone(sandbox, http):
    fault(http, sandbox, kind="status", route="update", version="v3", status=503)
    assert v2(http, sandbox, "POST", f"/{ANNA}", {"city": "Lund"}).status_code == 200
    assert v3(http, sandbox, "PATCH", f"/{ANNA}", {"city": "Malmö"}).status_code == 503
    assert contact(http, sandbox, ANNA)["city"] == "Lund"


def test_a_fault_with_a_bad_version_is_refused(sandbox, http):
    response = http.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "status", "version": "v4"})
    assert response.status_code == 400 and "version" in response.json()["error"]


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_the_next_lookups_can_miss_a_contact_that_exists(sandbox, http, version):
    fault(http, sandbox, kind="status", route="lookup", status=404, code="ContactNotFound", count=2)
    url = f"{sandbox.url}/api/{version}/contacts/id"
    misses = [http.get(url, params={"email": "anna@example.com"}, headers=HEADERS) for _ in range(2)]
    assert [(r.status_code, r.json()["errorCode"]) for r in misses] == [(404, "ContactNotFound")] * 2
    assert http.get(url, params={"email": "anna@example.com"}, headers=HEADERS).json() == ANNA
