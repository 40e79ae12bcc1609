"""The deployment's one rate budget: turns leased from the table (moto), shared by containers, with a fallback."""

from __future__ import annotations

import json

import boto3
import pytest
from engage_contact.aws.rate_budget import EARLY, KEY, LATE, LEASE_MAX, SharedRateBudget
from engage_contact.engage.pacing import FallbackPacer
from engage_contact.errors import EngageRateLimited

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_runtime import LocalContext, api_event

from ..conftest import REGION

# In file order on one worker (make test runs on every core): the API test further down needs moto's
# DynamoDB answering a lease within LATE (30 ms), which it does once the tests before it have warmed it.
pytestmark = pytest.mark.xdist_group("rate_budget")

ANNA = DEMO_CONTACTS[0]["id"]


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


class StoreWrites:
    """The UpdateItem calls a DynamoDB client makes on the budget's item, counted from outside (botocore events)."""

    def __init__(self, client):
        self.count = 0
        client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", self.seen)

    def seen(self, params, **_):
        if params.get("Key", {}).get("id", {}).get("S") == KEY:
            self.count += 1


def dynamodb():
    return boto3.client("dynamodb", region_name=REGION)


def budget(table, clock, client=None, rate=10.0, fallback=None):
    client = client or dynamodb()
    return SharedRateBudget(table, lambda: client, rate, fallback or FallbackPacer(rate / 4, clock=clock), clock=clock)


def test_two_containers_draw_turns_from_one_budget_never_the_same_turn(idempotency_table):
    clock = Clock()
    first, second = budget(idempotency_table, clock), budget(idempotency_table, clock)
    waits = [first.acquire(5), second.acquire(5), first.acquire(5), second.acquire(5)]
    # one turn each 1/10 s, whoever asks: the second container's turn comes after the first's
    assert waits == pytest.approx([0, 0.1 - EARLY, 0.2 - EARLY, 0.3 - EARLY], abs=1e-5)
    (item,) = [i for i in dynamodb().scan(TableName=idempotency_table)["Items"] if i["id"]["S"] == KEY]
    assert float(item["tat"]["N"]) == pytest.approx(clock.now + 0.4, abs=1e-5)


def test_an_idle_budget_starts_again_from_now_not_from_the_past(idempotency_table):
    clock = Clock()
    shared = budget(idempotency_table, clock)
    shared.acquire(5)
    clock.now += 60  # a quiet minute gives back no pile of turns, only the next one
    other = budget(idempotency_table, clock)
    assert [other.acquire(5), other.acquire(5)] == pytest.approx([0, 0.1 - EARLY], abs=1e-5)


def test_a_container_without_recent_turns_takes_an_idle_budget_with_one_write(idempotency_table):
    clock = Clock()
    client = dynamodb()
    writes = StoreWrites(client)
    assert budget(idempotency_table, clock, client=client).acquire(5) == 0  # a cold start on a quiet deployment
    assert writes.count == 1
    busy = budget(idempotency_table, clock)  # while another container keeps the budget busy
    busy.acquire(5)
    writes.count = 0
    late = budget(idempotency_table, clock, client=client)
    assert late.acquire(5) == pytest.approx(0.2 - EARLY, abs=1e-5)  # behind the others' turns: two writes
    assert writes.count == 2


def test_a_lease_serves_as_many_waiting_threads_as_it_holds_with_one_write(idempotency_table):
    import threading

    clock = Clock()
    client = dynamodb()
    writes = StoreWrites(client)
    shared = budget(idempotency_table, clock, client=client, rate=40)
    shared.acquire(5)  # the budget is busy: its next turn is ahead of now
    writes.count = 0
    waits = []
    threads = [threading.Thread(target=lambda: waits.append(shared.acquire(5))) for _ in range(LEASE_MAX)]
    with shared._lock:  # held while they all line up, as a batch's threads do behind a lease in flight
        for thread in threads:
            thread.start()
        while shared._waiting < LEASE_MAX:
            threading.Event().wait(0.01)
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([(n + 1) / 40 - EARLY for n in range(LEASE_MAX)], abs=1e-5)
    assert writes.count == 1


def test_a_turn_not_used_in_time_is_dropped_not_piled_up(idempotency_table):
    clock = Clock()
    shared = budget(idempotency_table, clock)
    shared._turns.extend([clock.now - 1.0, clock.now - LATE * 2])  # leased, then the threads went away
    assert shared.acquire(5) == 0
    assert not shared._turns or min(shared._turns) >= clock.now


def test_a_turn_further_than_the_caller_may_wait_is_rate_limited_with_retry_after(idempotency_table):
    clock = Clock()
    shared = budget(idempotency_table, clock, rate=0.5)  # one turn every two seconds
    assert shared.acquire(2) == 0
    with pytest.raises(EngageRateLimited) as raised:
        shared.acquire(1.0)
    assert raised.value.retry_after == 2


def test_an_unreachable_table_falls_back_to_the_container_share_and_never_fails(aws, log_output, capsys):
    clock = Clock()
    unreachable = boto3.client(
        "dynamodb", region_name=REGION, endpoint_url="http://127.0.0.1:9",
        config=__import__("botocore.config").config.Config(retries={"total_max_attempts": 1}, connect_timeout=0.5),
    )  # fmt: skip
    shared = budget("idempotency", clock, client=unreachable, rate=8, fallback=FallbackPacer(2, clock=clock))
    waits = [shared.acquire(5) for _ in range(3)]
    assert waits == pytest.approx([0, 0.5, 1.0])  # the fallback's share: 8/s over 4 containers
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert sum("shared rate budget cannot be reached" in line["message"] for line in lines) == 1
    from engage_contact.observability import flush

    flush()
    assert "RateBudgetFallback" in capsys.readouterr().out


def test_api_request_whose_turn_is_too_far_answers_503_rate_limited(function_env, monkeypatch, sandbox):
    from ..conftest import load_function

    function_env("update_contact")
    monkeypatch.setenv("WEBHOOK_SIGNING", "off")
    # one turn every twenty seconds: the second request asks within that window even on a loaded machine (at one
    # every five seconds, a first request slower than five seconds let the second find the budget idle again)
    monkeypatch.setenv("ENGAGE_REQUESTS_PER_SECOND", "0.05")
    handler = load_function("update_contact").lambda_handler
    body = json.dumps({"contactId": ANNA, "attributes": {"city": "Lund"}})

    def call():
        event = api_event("POST", "/contacts/update", body, {"Content-Type": "application/json"})
        return handler(event, LocalContext(timeout_seconds=30))

    first, second = call(), call()
    assert first["statusCode"] == 200
    assert second["statusCode"] == 503 and json.loads(second["body"])["error"] == "EngageRateLimited"
    assert int(second["headers"]["Retry-After"]) >= 2
    assert len(sandbox.state.request_log("update")) == 1


def test_queued_work_waits_for_its_turn_where_an_api_caller_would_not(function_env, monkeypatch, sandbox):
    from ..conftest import load_function

    function_env("update_contact")
    monkeypatch.setenv("ENGAGE_REQUESTS_PER_SECOND", "0.4")  # one turn every 2.5 seconds
    handler = load_function("update_contact").lambda_handler
    for city in ("A", "B"):  # direct invocation: the second waits its turn within the deadline
        handler({"contactId": ANNA, "attributes": {"city": city}}, LocalContext(timeout_seconds=30))
    assert [json.loads(r["body"])["city"] for r in sandbox.state.request_log("update")] == ["A", "B"]


def test_the_containers_light_dynamodb_client_leases_as_boto3s_does(idempotency_table):
    from engage_contact.aws.dynamodb_light import LightDynamoDb

    clock = Clock()
    light, boto = budget(idempotency_table, clock, client=LightDynamoDb()), budget(idempotency_table, clock)
    waits = [light.acquire(5), boto.acquire(5), light.acquire(5)]
    assert waits == pytest.approx([0, 0.1 - EARLY, 0.2 - EARLY], abs=1e-5)
    (item,) = [i for i in dynamodb().scan(TableName=idempotency_table)["Items"] if i["id"]["S"] == KEY]
    assert float(item["tat"]["N"]) == pytest.approx(clock.now + 0.3, abs=1e-5)


def test_the_light_client_reports_a_lost_condition_as_boto3_would(idempotency_table):
    from botocore.exceptions import ClientError
    from engage_contact.aws.dynamodb_light import LightDynamoDb

    with pytest.raises(ClientError) as raised:
        LightDynamoDb().update_item(
            TableName=idempotency_table, Key={"id": {"S": "x"}}, UpdateExpression="SET n = :n",
            ConditionExpression="attribute_exists(n)", ExpressionAttributeValues={":n": {"N": "1"}},
        )  # fmt: skip
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_a_slow_table_never_keeps_a_container_leasing_without_end(idempotency_table, log_output):
    """#29 point 10: with UpdateItem answering 40 ms late (more than a turn's LATE), every small lease came back
    with its turns already late, and one acquire() leased again and again for seconds. Now an idle lease starts
    a round trip ahead, a lease's last turn is used within its own slot, and after a few late leases in a row
    the container keeps to its own share: each acquire() makes a bounded number of writes, and gets a turn."""
    from engage_contact.aws.dynamodb_light import LightDynamoDb
    from engage_contact.aws.rate_budget import LATE_LEASES

    from local import moto_faults

    client = LightDynamoDb()
    shared = SharedRateBudget(idempotency_table, lambda: client, 45.0, FallbackPacer(45.0 / 4))
    acquires = 30
    with moto_faults.slow("UpdateItem", 0.04) as slowed:
        waits = [shared.acquire(5.0) for _ in range(acquires)]
    assert all(0 <= wait <= 5.0 for wait in waits)
    assert slowed["calls"] <= acquires * LATE_LEASES


def test_a_background_lease_takes_one_turn_however_many_of_its_threads_wait(idempotency_table):
    """A backfill's container never books turns ahead: a live call arriving next waits for one turn at most."""
    import threading

    clock = Clock()
    client = dynamodb()
    shared = SharedRateBudget(idempotency_table, lambda: client, 40.0, FallbackPacer(10, clock=clock), clock=clock,
                              lease_max=1)  # fmt: skip
    shared.acquire(5)
    writes = StoreWrites(client)
    waits = []
    threads = [threading.Thread(target=lambda: waits.append(shared.acquire(5))) for _ in range(LEASE_MAX)]
    with shared._lock:  # they all line up, as a batch's threads do
        for thread in threads:
            thread.start()
        while shared._waiting < LEASE_MAX:
            threading.Event().wait(0.01)
    for thread in threads:
        thread.join()
    assert writes.count == LEASE_MAX  # one write a turn, never ten turns in one
    live = budget(idempotency_table, clock, rate=40.0)
    assert live.acquire(5) == pytest.approx((LEASE_MAX + 1) / 40 - EARLY, abs=1e-5)  # right after them, no further


def test_the_backfill_share_is_one_schedule_for_all_writer_containers_apart_from_the_budget(idempotency_table):
    """Two writer containers keep to the share together, and a lone one has all of it (a small backfill is one
    delivery, one container); the deployment's budget item is another schedule."""
    clock = Clock()
    client = dynamodb()

    def writer():
        return SharedRateBudget(idempotency_table, lambda: client, 8.0, FallbackPacer(4, clock=clock), clock=clock,
                                key=f"{KEY}#backfill")  # fmt: skip

    first, second = writer(), writer()
    waits = [first.acquire(5), second.acquire(5), first.acquire(5), second.acquire(5)]
    assert waits == pytest.approx([0, 1 / 8 - EARLY, 2 / 8 - EARLY, 3 / 8 - EARLY], abs=1e-5)  # 8/s together
    items = {i["id"]["S"] for i in client.scan(TableName=idempotency_table)["Items"]}
    assert f"{KEY}#backfill" in items and KEY not in items
