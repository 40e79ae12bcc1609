"""The Engage client against the sandbox over real HTTP: headers, answers, retries, faults.

Every test that takes `client` runs against both API versions (the `version` fixture); the v2-only
promotion tests say so, and v3's own calls are in test_engage_v3.py.
"""

from __future__ import annotations

import json

import boto3
import pytest
from engage_contact.aws.secrets import ApiKeySource, SecretReader
from engage_contact.domain.contacts import Lookup
from engage_contact.engage.client import EngageClient
from engage_contact.engage.retry import Deadline, RetryPolicy
from engage_contact.errors import (
    ContactNotFound,
    DependencyUnavailable,
    EngageAuthError,
    EngageRateLimited,
    EngageRejected,
    EngageUnavailable,
    InvalidRequest,
    MultipleMatches,
    NoData,
)

from local.engage_sandbox import DEMO_CONTACTS

from ..conftest import REGION, SANDBOX_KEY, SecretReadCounter

ANNA, BERTIL = DEMO_CONTACTS[0]["id"], DEMO_CONTACTS[1]["id"]
UPDATE_METHOD = {"v2": "POST", "v3": "PATCH"}
V2_ONLY = pytest.mark.parametrize("version", ["v2"])


class RecordingSleep:
    """Records the waits instead of sleeping them, so retry tests stay fast."""

    def __init__(self):
        self.waits = []

    def __call__(self, seconds):
        self.waits.append(seconds)


@pytest.fixture
def reader(api_key_secret):
    return SecretReader()


@pytest.fixture
def sleep():
    return RecordingSleep()


@pytest.fixture
def observed():
    """What the client reports through its `observe` hook: ("latency", s) and ("retry", 1)."""
    return []


@pytest.fixture(params=["v2", "v3"])
def version(request):
    """The Engage API version the client speaks: the same rules hold in both."""
    return request.param


@pytest.fixture
def client(sandbox, reader, api_key_secret, sleep, observed, version):
    return EngageClient(
        sandbox.url,
        ApiKeySource(api_key_secret, reader),
        timeout_seconds=1.0,
        retry=RetryPolicy(max_attempts=4, base_seconds=0.01, cap_seconds=0.05),
        sleep=sleep,
        observe=lambda name, value: observed.append(name),
        version=version,
    )


def deadline(seconds=30):
    return Deadline(seconds)


def log(sandbox, route=None):
    return sandbox.state.request_log(route)


def faults(sandbox, *specs):
    from local.engage_sandbox.state import Fault

    sandbox.state.add_faults([Fault.from_json(s) for s in specs])


# --- what Engage receives ----------------------------------------------------------------------


def test_update_sends_the_payload_with_every_required_header(client, sandbox, version):
    contact = client.update_contact(ANNA, {"lastName": "Examplesson"}, deadline())
    assert contact["lastName"] == "Examplesson"
    (request,) = log(sandbox)
    assert request["method"] == UPDATE_METHOD[version] and request["path"] == f"/api/{version}/contacts/{ANNA}"
    assert request["version"] == version
    assert json.loads(request["body"]) == {"lastName": "Examplesson"}
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["apikey"] == SANDBOX_KEY
    assert headers["content-type"] == "application/json" and headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("EngageContactFunctions/")


def test_non_ascii_text_arrives_intact(client, sandbox):
    client.update_contact(ANNA, {"city": "Göteborg"}, deadline())
    assert sandbox.state.get_contact(ANNA)["city"] == "Göteborg"


def test_an_unchecked_contact_id_never_reaches_a_url(client, sandbox):
    for bad in ("../../admin", "abc/promoteToMember", "abc?contactTypeId=Member", "%2e%2e"):
        with pytest.raises(InvalidRequest):
            client.update_contact(bad, {"city": "Lund"}, deadline())
    assert log(sandbox) == []


def test_empty_payload_is_nodata_without_a_call(client, sandbox):
    with pytest.raises(NoData):
        client.update_contact(ANNA, {}, deadline())
    assert log(sandbox) == []


def test_engage_404_is_contact_not_found(client):
    with pytest.raises(ContactNotFound):
        client.update_contact("00000000-0000-0000-0000-000000000000", {"city": "Lund"}, deadline())


def test_engage_4xx_is_rejected_with_its_body_kept(client):
    with pytest.raises(EngageRejected) as raised:
        client.update_contact(ANNA, {"email": "broken"}, deadline())
    assert raised.value.details["engage"]["errorCode"] == "InvalidEmailAddress"
    assert raised.value.details["status"] == 400


# --- promote and change type --------------------------------------------------------------------


@V2_ONLY
def test_promote_makes_a_member(client, sandbox):
    promotion = client.promote_to_member(BERTIL, {"memberNumber": "M2"}, deadline())
    assert promotion.contact["contactType"] == "Member" and not promotion.already_member
    assert sandbox.state.get_contact(BERTIL)["_promotions"] == 1


@V2_ONLY
def test_promote_of_a_member_is_a_success(client, sandbox):
    promotion = client.promote_to_member(ANNA, {}, deadline())
    assert promotion.contact["contactType"] == "Member" and promotion.contact["id"] == ANNA
    assert promotion.already_member
    assert sandbox.state.get_contact(ANNA)["_promotions"] == 0


@V2_ONLY
def test_promote_refused_for_another_reason_stays_refused(client, sandbox):
    cid = sandbox.state.add_contact({"contactType": "Contact"})
    with pytest.raises(EngageRejected, match="MissingRequiredAttributes"):
        client.promote_to_member(cid, {}, deadline())


@V2_ONLY
def test_promote_whose_answer_is_lost_is_checked_not_sent_twice(client, sandbox):
    faults(sandbox, {"kind": "apply_then_status", "route": "promote", "status": 503, "count": 1})
    promotion = client.promote_to_member(BERTIL, {}, deadline())
    assert promotion.contact["contactType"] == "Member" and promotion.already_member
    assert sandbox.state.get_contact(BERTIL)["_promotions"] == 1
    assert [r["route"] for r in log(sandbox)] == ["promote", "get"]


@V2_ONLY
def test_promote_that_failed_before_applying_is_retried_after_the_check(client, sandbox):
    faults(sandbox, {"kind": "status", "route": "promote", "status": 502, "count": 1})
    assert client.promote_to_member(BERTIL, {}, deadline()).contact["contactType"] == "Member"
    assert [r["route"] for r in log(sandbox)] == ["promote", "get", "promote"]


@V2_ONLY
def test_promote_is_not_resent_blind_when_the_check_fails(client, sandbox):
    faults(
        sandbox,
        {"kind": "status", "route": "promote", "status": 503, "count": 1},
        {"kind": "status", "route": "get", "status": 503, "count": 1},
    )
    with pytest.raises(EngageUnavailable):
        client.promote_to_member(BERTIL, {}, deadline())
    assert [r["route"] for r in log(sandbox)] == ["promote", "get"]


def test_change_type_sends_the_type_as_query_and_no_body(client, sandbox, version):
    assert client.change_contact_type(DEMO_CONTACTS[2]["id"], "Contact", deadline()) is None
    (request,) = log(sandbox)
    assert request["path"] == f"/api/{version}/contacts/{DEMO_CONTACTS[2]['id']}/updateContactType"
    assert request["query"] == {"contactTypeId": "Contact"} and request["body"] == ""
    assert sandbox.state.get_contact(DEMO_CONTACTS[2]["id"])["contactType"] == "Contact"


def test_change_type_to_member_is_refused_without_a_call(client, sandbox):
    with pytest.raises(InvalidRequest):
        client.change_contact_type(BERTIL, "Member", deadline())
    assert log(sandbox) == []


# --- lookup ----------------------------------------------------------------------------------------


def test_lookup_answers_the_id(client, sandbox, version):
    assert client.find_contact_id(Lookup("email", "anna@example.com"), deadline()) == ANNA
    (request,) = log(sandbox)
    assert request["method"] == "GET" and request["path"] == f"/api/{version}/contacts/id"


def test_read_answers_the_contact(client, sandbox, version):
    assert client.get_contact(ANNA, deadline())["id"] == ANNA
    (request,) = log(sandbox)
    assert request["method"] == "GET" and request["path"] == f"/api/{version}/contacts/{ANNA}"


def test_lookup_encodes_the_plus_of_a_phone_number(client, sandbox):
    assert client.find_contact_id(Lookup("mobilePhone", "+46701234567", "Member"), deadline()) == ANNA
    (request,) = log(sandbox)
    assert request["query"] == {"mobilePhone": "+46701234567", "contactType": "Member"}


def test_lookup_of_no_one_and_of_several(client, sandbox):
    with pytest.raises(ContactNotFound):
        client.find_contact_id(Lookup("email", "nobody@example.com"), deadline())
    sandbox.state.add_contact({"attributes": {"email": "anna@example.com"}})
    with pytest.raises(MultipleMatches):
        client.find_contact_id(Lookup("email", "anna@example.com"), deadline())


# --- retries ---------------------------------------------------------------------------------------


def test_5xx_is_retried_until_it_succeeds(client, sandbox, sleep, observed):
    faults(sandbox, {"kind": "status", "route": "update", "status": 503, "count": 2})
    assert client.update_contact(ANNA, {"city": "Lund"}, deadline())["city"] == "Lund"
    assert len(log(sandbox, "update")) == 3 and len(sleep.waits) == 2 and observed.count("retry") == 2


def test_5xx_that_persists_is_engage_unavailable_after_the_attempts_allowed(client, sandbox):
    faults(sandbox, {"kind": "status", "route": "update", "status": 500})
    with pytest.raises(EngageUnavailable):
        client.update_contact(ANNA, {"city": "Lund"}, deadline())
    assert len(log(sandbox, "update")) == 4


def test_retry_after_is_honoured(client, sandbox, sleep):
    faults(sandbox, {"kind": "status", "route": "update", "status": 429, "count": 1, "headers": {"Retry-After": "2"}})
    client.update_contact(ANNA, {"city": "Lund"}, deadline())
    assert sleep.waits == [2.0]


def test_429_that_persists_is_rate_limited_with_its_retry_after(client, sandbox):
    faults(sandbox, {"kind": "status", "status": 429, "headers": {"Retry-After": "1"}})
    with pytest.raises(EngageRateLimited) as raised:
        client.update_contact(ANNA, {"city": "Lund"}, deadline())
    assert raised.value.retry_after == 1.0


def test_backoff_is_jittered_and_grows(sandbox, reader, api_key_secret, sleep):
    client = EngageClient(
        sandbox.url,
        ApiKeySource(api_key_secret, reader),
        1.0,
        retry=RetryPolicy(max_attempts=4, base_seconds=1, cap_seconds=8),
        sleep=sleep,
    )
    faults(sandbox, {"kind": "status", "route": "update", "status": 503})
    with pytest.raises(EngageUnavailable):
        client.update_contact(ANNA, {"city": "Lund"}, deadline(60))
    assert [0 <= w <= cap for w, cap in zip(sleep.waits, (1, 2, 4), strict=True)] == [True] * 3


def test_a_hang_past_the_timeout_is_retried(client, sandbox):
    faults(sandbox, {"kind": "hang", "route": "update", "seconds": 3, "count": 1})
    assert client.update_contact(ANNA, {"city": "Lund"}, deadline())["city"] == "Lund"
    assert len(log(sandbox, "update")) == 2


def test_a_dropped_connection_is_retried(client, sandbox):
    faults(sandbox, {"kind": "drop", "route": "update", "count": 1})
    assert client.update_contact(ANNA, {"city": "Lund"}, deadline())["city"] == "Lund"


def test_no_attempt_is_started_past_the_time_left(client, sandbox):
    faults(sandbox, {"kind": "hang", "seconds": 3})
    with pytest.raises(EngageUnavailable):
        client.update_contact(ANNA, {"city": "Lund"}, Deadline(1.2))
    assert len(log(sandbox)) <= 2


def test_a_wait_longer_than_the_time_left_is_not_waited(client, sandbox, sleep):
    faults(sandbox, {"kind": "status", "status": 429, "headers": {"Retry-After": "60"}})
    with pytest.raises(EngageRateLimited):
        client.update_contact(ANNA, {"city": "Lund"}, deadline(5))
    assert sleep.waits == [] and len(log(sandbox)) == 1


# --- the key ---------------------------------------------------------------------------------------


def test_the_key_is_read_once_per_container(client, reader, sandbox):
    counter = SecretReadCounter(reader)
    for _ in range(50):
        client.get_contact(ANNA, deadline())
    assert counter.count == 1


def test_the_key_is_read_again_after_five_minutes(api_key_secret):
    now = [0.0]
    reader = SecretReader(clock=lambda: now[0])
    counter = SecretReadCounter(reader)
    key = ApiKeySource(api_key_secret, reader)
    assert key.get() == SANDBOX_KEY
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=api_key_secret, SecretString="new")
    now[0] = 299.0
    assert key.get() == SANDBOX_KEY and counter.count == 1  # still the cached key
    now[0] = 300.0
    assert key.get() == "new" and counter.count == 2


def test_a_read_that_failed_holds_the_next_off_for_five_seconds(aws):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    now = [0.0]
    reader = SecretReader(clock=lambda: now[0])
    counter = SecretReadCounter(reader)
    key = ApiKeySource("later-key", reader)
    with pytest.raises(DependencyUnavailable, match="could not be read"):
        key.get()  # no such secret yet: Secrets Manager is asked, and refuses
    secrets.create_secret(Name="later-key", SecretString="mended")
    now[0] = 4.9  # the batch's other records, asking meanwhile, are answered at once: nobody waits again
    for refresh in (False, True):
        with pytest.raises(DependencyUnavailable, match=r"4\.9 s ago; it is read again 5 s after"):
            key.get(refresh=refresh)
    assert counter.count == 1
    now[0] = 5.0
    assert key.get() == "mended" and counter.count == 2


def test_a_read_an_api_deadline_cut_short_holds_nothing_off(aws):
    from engage_contact.aws.json_protocol import calls_end_by

    secrets = boto3.client("secretsmanager", region_name=REGION)
    reader = SecretReader(clock=lambda: 0.0)
    key = ApiKeySource("later-key", reader)
    with calls_end_by(0.0), pytest.raises(DependencyUnavailable):  # the request's time was up: not the service
        key.get()
    secrets.create_secret(Name="later-key", SecretString="there")
    assert key.get() == "there"


def test_a_rotated_key_is_read_again_once_on_401(client, reader, sandbox, api_key_secret):
    client.get_contact(ANNA, deadline())
    counter = SecretReadCounter(reader)
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=api_key_secret, SecretString=json.dumps({"apiKey": "rotated-key"})
    )
    sandbox.state.configure({"apiKeys": ["rotated-key"]})
    assert client.get_contact(ANNA, deadline())["id"] == ANNA
    assert counter.count == 1
    assert [r["headers"]["apikey"] for r in log(sandbox)][-2:] == [SANDBOX_KEY, "rotated-key"]


def test_a_key_engage_keeps_refusing_is_an_auth_error(client, sandbox):
    sandbox.state.configure({"apiKeys": ["some-other-key"]})
    with pytest.raises(EngageAuthError):
        client.get_contact(ANNA, deadline())
    assert len(log(sandbox)) == 2


def test_an_unreadable_secret_is_dependency_unavailable(sandbox, aws):
    client = EngageClient(
        sandbox.url, ApiKeySource("arn:aws:secretsmanager:eu-north-1:123456789012:secret:none", SecretReader()), 1.0
    )
    with pytest.raises(DependencyUnavailable):
        client.get_contact(ANNA, deadline())
    assert log(sandbox) == []


def test_the_fallback_pacer_spaces_requests_after_a_small_burst():
    from engage_contact.engage.pacing import FallbackPacer

    now = [0.0]
    pacer = FallbackPacer(10, burst=3, clock=lambda: now[0])
    waits = [pacer.reserve() for _ in range(6)]
    assert waits[:3] == [0, 0, 0] and waits[3:] == pytest.approx([0.1, 0.2, 0.3])
    now[0] = 100.0  # idle time gives the burst back, never more
    assert [pacer.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 0.1])


def test_the_fallback_pacer_starts_one_request_then_keeps_its_share():
    from engage_contact.engage.pacing import FallbackPacer

    now = [0.0]
    pacer = FallbackPacer(4, clock=lambda: now[0])
    assert [pacer.reserve() for _ in range(3)] == pytest.approx([0, 0.25, 0.5])


def test_a_paced_client_never_waits_past_its_deadline(sandbox, reader, api_key_secret):
    from engage_contact.engage.pacing import FallbackPacer

    pacer = FallbackPacer(0.5, burst=2)  # two at once, then one per two seconds
    client = EngageClient(sandbox.url, ApiKeySource(api_key_secret, reader), 1.0, budget=pacer)
    client.get_contact(ANNA, deadline())
    client.get_contact(ANNA, deadline())  # the burst allowance
    with pytest.raises(EngageRateLimited):
        client.get_contact(ANNA, Deadline(1.0))
    assert len(log(sandbox)) == 2


def test_a_broken_key_secret_is_read_again_once_mended(client, reader, sandbox, api_key_secret):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.put_secret_value(SecretId=api_key_secret, SecretString='{"apiKey": ""}')
    with pytest.raises(DependencyUnavailable):
        client.get_contact(ANNA, deadline())
    secrets.put_secret_value(SecretId=api_key_secret, SecretString=SANDBOX_KEY)
    assert client.get_contact(ANNA, deadline())["id"] == ANNA  # not stuck on the cached broken value
