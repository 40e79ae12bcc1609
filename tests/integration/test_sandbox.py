"""The Engage sandbox behaves as Engage does (docs/contract.md §1), asserted over real HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
import requests

from local.engage_sandbox import DEMO_CONTACTS, EngageSandbox

from ..conftest import SANDBOX_KEY

ANNA = DEMO_CONTACTS[0]["id"]
BERTIL = DEMO_CONTACTS[1]["id"]
CECILIA = DEMO_CONTACTS[2]["id"]
HEADERS = {
    "apikey": SANDBOX_KEY,
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": "EngageContactFunctionsTests/1",
}


def api(http, sandbox, method, path, body=None, headers=HEADERS, **kwargs):
    return http.request(method, f"{sandbox.url}/api/v2/contacts{path}", json=body, headers=headers, **kwargs)


def contact(http, sandbox, contact_id):
    return http.get(f"{sandbox.url}/_sandbox/contacts/{contact_id}").json()


# --- what every call needs ------------------------------------------------------


def test_missing_api_key_is_401(sandbox, http):
    headers = {k: v for k, v in HEADERS.items() if k != "apikey"}
    assert api(http, sandbox, "GET", f"/{ANNA}", headers=headers).status_code == 401


def test_wrong_api_key_is_401(sandbox, http):
    assert api(http, sandbox, "GET", f"/{ANNA}", headers={**HEADERS, "apikey": "nope"}).status_code == 401


def test_missing_content_type_is_500_as_engage_does(sandbox, http):
    response = http.post(
        f"{sandbox.url}/api/v2/contacts/{ANNA}", data=b'{"city": "Lund"}', headers={"apikey": SANDBOX_KEY}
    )
    assert response.status_code == 500
    assert contact(http, sandbox, ANNA)["city"] == "Stockholm"


def test_unknown_path_is_404_and_wrong_method_405(sandbox, http):
    assert http.get(f"{sandbox.url}/api/v2/orders", headers=HEADERS).status_code == 404
    assert api(http, sandbox, "PUT", f"/{ANNA}").status_code == 405  # (DELETE deletes: Voyado's documented delete)


# --- update ---------------------------------------------------------------------


def test_update_writes_the_fields_present_and_answers_the_whole_contact(sandbox, http):
    response = api(http, sandbox, "POST", f"/{ANNA}", {"lastName": "Examplesson", "street": "New Street 1337"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == ANNA and body["lastName"] == "Examplesson" and body["firstName"] == "Anna"
    assert contact(http, sandbox, ANNA)["street"] == "New Street 1337"


def test_update_overwrites_with_an_empty_value(sandbox, http):
    api(http, sandbox, "POST", f"/{ANNA}", {"careOf": "", "city": None})
    stored = contact(http, sandbox, ANNA)
    assert stored["careOf"] == "" and stored["city"] is None


def test_update_ignores_unknown_names_silently(sandbox, http):
    response = api(http, sandbox, "POST", f"/{ANNA}", {"firstNam": "Anita"})
    assert response.status_code == 200
    stored = contact(http, sandbox, ANNA)
    assert stored["firstName"] == "Anna" and "firstNam" not in stored


def test_update_merges_preferences_field_by_field(sandbox, http):
    api(http, sandbox, "POST", f"/{ANNA}", {"preferences": {"acceptsSms": True}})
    assert contact(http, sandbox, ANNA)["preferences"] == {
        "acceptsEmail": True,
        "acceptsSms": True,
        "acceptsPostal": True,
    }


def test_update_writes_configured_custom_attributes(sandbox, http):
    api(http, sandbox, "POST", f"/{ANNA}", {"favoriteStore": "Lund"})
    assert contact(http, sandbox, ANNA)["favoriteStore"] == "Lund"


def test_update_with_empty_body_is_400_nodata(sandbox, http):
    response = api(http, sandbox, "POST", f"/{ANNA}", {})
    assert response.status_code == 400 and response.json()["errorCode"] == "NoData"


def test_update_of_unknown_contact_is_404(sandbox, http):
    response = api(http, sandbox, "POST", "/00000000-0000-0000-0000-000000000000", {"city": "Lund"})
    assert response.status_code == 404 and response.json()["errorCode"] == "ContactNotFound"


def test_update_refuses_an_invalid_email(sandbox, http):
    response = api(http, sandbox, "POST", f"/{ANNA}", {"email": "not-an-address"})
    assert response.status_code == 400 and response.json()["errorCode"] == "InvalidEmailAddress"


# --- promote, change type, get ----------------------------------------------------


def test_promote_makes_a_member_and_writes_its_attributes(sandbox, http):
    response = api(http, sandbox, "POST", f"/{BERTIL}/promoteToMember", {"memberNumber": "M2002"})
    assert response.status_code == 200 and response.json()["contactType"] == "Member"
    stored = contact(http, sandbox, BERTIL)
    assert stored["contactType"] == "Member" and stored["memberNumber"] == "M2002" and stored["_promotions"] == 1


def test_promote_of_a_member_is_refused(sandbox, http):
    response = api(http, sandbox, "POST", f"/{ANNA}/promoteToMember", {})
    assert response.status_code == 400 and response.json()["errorCode"] == "ContactIsAlreadyMember"


def test_promote_without_required_attributes_is_refused(sandbox, http):
    cid = http.post(f"{sandbox.url}/_sandbox/contacts", json={"contactType": "Contact"}).json()["id"]
    response = api(http, sandbox, "POST", f"/{cid}/promoteToMember", {})
    assert response.status_code == 400 and response.json()["errorCode"] == "MissingRequiredAttributes"


def test_change_type_changes_it(sandbox, http):
    response = api(http, sandbox, "POST", f"/{CECILIA}/updateContactType?contactTypeId=Contact")
    assert response.status_code == 200
    assert contact(http, sandbox, CECILIA)["contactType"] == "Contact"


def test_change_type_refuses_member(sandbox, http):
    response = api(http, sandbox, "POST", f"/{CECILIA}/updateContactType?contactTypeId=Member")
    assert response.status_code == 400
    assert contact(http, sandbox, CECILIA)["contactType"] == "Prospect"


def test_get_answers_one_contact(sandbox, http):
    response = api(http, sandbox, "GET", f"/{ANNA}")
    assert response.status_code == 200 and response.json()["email"] == "anna@example.com"
    assert api(http, sandbox, "GET", "/0000-0000").status_code == 404


# --- lookup -----------------------------------------------------------------------


def test_lookup_answers_the_id_as_a_quoted_string(sandbox, http):
    response = api(http, sandbox, "GET", "/id", params={"email": "anna@example.com"})
    assert response.status_code == 200
    assert response.text == f'"{ANNA}"'


def test_lookup_decodes_the_plus_of_a_phone_number(sandbox, http):
    response = http.get(f"{sandbox.url}/api/v2/contacts/id?mobilePhone=%2B46701234567", headers=HEADERS)
    assert response.json() == ANNA


def test_lookup_by_custom_key_and_contact_type(sandbox, http):
    assert api(http, sandbox, "GET", "/id", params={"customKey": "M1001"}).json() == ANNA
    response = api(http, sandbox, "GET", "/id", params={"email": "anna@example.com", "contactType": "Contact"})
    assert response.status_code == 404


def test_lookup_of_no_one_is_404(sandbox, http):
    response = api(http, sandbox, "GET", "/id", params={"email": "nobody@example.com"})
    assert response.status_code == 404 and response.json()["errorCode"] == "ContactNotFound"


def test_lookup_of_several_is_409(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/contacts", json={"attributes": {"email": "anna@example.com"}})
    response = api(http, sandbox, "GET", "/id", params={"email": "anna@example.com"})
    assert response.status_code == 409 and response.json()["errorCode"] == "MultipleMatches"


def test_lookup_finds_a_contact_by_what_it_holds_now(sandbox, http):
    api(http, sandbox, "POST", f"/{ANNA}", {"email": "Anna.Lind@Example.com", "mobilePhone": ""})
    created = api(http, sandbox, "POST", "", {"email": "anna@example.com", "contactType": "Contact"}).json()["id"]
    assert api(http, sandbox, "GET", "/id", params={"email": "anna.lind@example.com"}).json() == ANNA
    assert api(http, sandbox, "GET", "/id", params={"email": "ANNA@example.com"}).json() == created  # freed
    assert api(http, sandbox, "GET", "/id", params={"mobilePhone": "+46701234567"}).status_code == 404
    http.post(f"{sandbox.url}/_sandbox/reset", json={})
    assert api(http, sandbox, "GET", "/id", params={"email": "anna.lind@example.com"}).status_code == 404


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"email": "anna-at-example"}, "InvalidEmailAddress"),
        ({"mobilePhone": "0701234567"}, "InvalidPhoneNumber"),
        ({"socialSecurityNumber": "12"}, "InvalidSocialSecurityNumber"),
        ({"email": "anna@example.com", "contactType": "Wizard"}, "InvalidContactType"),
        ({}, "InvalidSearchQuery"),
        ({"email": "anna@example.com", "mobilePhone": "+46701234567"}, "InvalidSearchQuery"),
    ],
)
def test_lookup_refuses_bad_queries(sandbox, http, params, code):
    response = api(http, sandbox, "GET", "/id", params=params)
    assert response.status_code == 400 and response.json()["errorCode"] == code


# --- rate limit and faults -------------------------------------------------------------


def test_rate_limit_per_api_key_answers_429(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/config", json={"rateLimit": 3, "retryAfter": 2})
    statuses = [api(http, sandbox, "GET", f"/{ANNA}").status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    assert api(http, sandbox, "GET", f"/{ANNA}").headers["Retry-After"] == "2"


def test_status_fault_for_the_next_n_calls_then_normal(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "status", "route": "update", "status": 503, "count": 2})
    statuses = [api(http, sandbox, "POST", f"/{ANNA}", {"city": "Lund"}).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert api(http, sandbox, "GET", f"/{ANNA}").status_code == 200  # other routes untouched


def test_fault_for_one_contact_leaves_the_others_alone(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "status", "status": 503, "contact": ANNA})
    assert api(http, sandbox, "GET", f"/{ANNA}").status_code == 503
    assert api(http, sandbox, "GET", f"/{BERTIL}").status_code == 200


def test_fractional_fault_fires_on_about_that_share(sandbox_server, http):
    with EngageSandbox(api_keys=(SANDBOX_KEY,), seed=7) as box:
        http.post(f"{box.url}/_sandbox/faults", json={"kind": "status", "status": 500, "fraction": 0.5})
        statuses = [api(http, box, "GET", f"/{ANNA}").status_code for _ in range(200)]
    assert 60 < statuses.count(500) < 140 and statuses.count(200) == 200 - statuses.count(500)


def test_latency_fault_delays_the_answer(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "latency", "ms": 200, "count": 1})
    started = time.monotonic()
    assert api(http, sandbox, "GET", f"/{ANNA}").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_hang_fault_outlasts_the_client_timeout(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "hang", "seconds": 5, "count": 1})
    with pytest.raises(requests.Timeout):
        api(http, sandbox, "GET", f"/{ANNA}", timeout=0.3)


def test_drop_fault_closes_the_connection_without_answer(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "drop", "count": 1})
    with pytest.raises(requests.ConnectionError):
        api(http, sandbox, "GET", f"/{ANNA}")
    assert api(http, sandbox, "GET", f"/{ANNA}").status_code == 200


def test_apply_then_503_writes_the_change_and_answers_failure(sandbox, http):
    http.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"kind": "apply_then_status", "route": "promote", "status": 503, "count": 1},
    )
    assert api(http, sandbox, "POST", f"/{BERTIL}/promoteToMember", {}).status_code == 503
    assert contact(http, sandbox, BERTIL)["contactType"] == "Member"


def test_bad_fault_is_refused_with_a_reason(sandbox, http):
    response = http.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "explode"})
    assert response.status_code == 400 and "kind" in response.json()["error"]


# --- admin --------------------------------------------------------------------------------


def test_seed_list_and_reset(sandbox, http):
    response = http.post(
        f"{sandbox.url}/_sandbox/contacts",
        json={"id": "abc-123", "contactType": "Prospect", "attributes": {"firstName": "D"}},
    )
    assert response.status_code == 201 and response.json() == {"id": "abc-123"}
    ids = {c["id"] for c in http.get(f"{sandbox.url}/_sandbox/contacts").json()}
    assert ids == {ANNA, BERTIL, CECILIA, "abc-123"}
    http.post(f"{sandbox.url}/_sandbox/reset")
    assert http.get(f"{sandbox.url}/_sandbox/contacts").json() == []
    assert http.get(f"{sandbox.url}/_sandbox/requests").json() == []


def test_request_log_records_what_engage_received(sandbox, http):
    api(http, sandbox, "POST", f"/{ANNA}", {"city": "Lund"})
    (entry,) = http.get(f"{sandbox.url}/_sandbox/requests").json()
    assert entry["method"] == "POST" and entry["path"] == f"/api/v2/contacts/{ANNA}"
    assert entry["route"] == "update" and entry["body"] == '{"city": "Lund"}'
    assert entry["headers"]["apikey"] == SANDBOX_KEY


def test_keep_alive_reuses_one_connection(sandbox, http):
    for _ in range(3):
        api(http, sandbox, "GET", f"/{ANNA}")
    pool = next(iter(http.adapters["http://"].poolmanager.pools._container.values()))
    assert pool.num_connections == 1


# --- standalone ---------------------------------------------------------------------------


def test_standalone_sandbox_prints_its_port_and_serves(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "local.engage_sandbox", "--port", "0", "--api-key", "k1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        port = int(line.split("(port ")[1].rstrip(")\n"))
        response = requests.get(
            f"http://127.0.0.1:{port}/api/v2/contacts/{ANNA}", headers={**HEADERS, "apikey": "k1"}, timeout=5
        )
        assert response.status_code == 200 and response.json()["firstName"] == "Anna"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_standalone_sandbox_started_with_sigint_ignored_still_stops_on_a_signal(stop):
    """`make sandbox &` in a script starts it with SIGINT ignored: kill -INT (and TERM) must still stop it."""
    import signal

    process = subprocess.Popen(
        [sys.executable, "-m", "local.engage_sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert "listening on" in process.stdout.readline()
        process.send_signal(getattr(signal, stop))
        assert process.wait(timeout=20) == 0  # stopped in order, not killed
    finally:
        if process.poll() is None:
            process.kill()


def test_standalone_sandbox_names_a_taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "local.engage_sandbox", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2 and f"port {port}" in result.stderr
