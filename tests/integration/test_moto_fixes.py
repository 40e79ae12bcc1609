"""local.moto_fixes: moto's SQS made cheap with a backlog, and still behaving as SQS does."""

from __future__ import annotations

import threading
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from ..conftest import REGION


@pytest.fixture
def fifo(aws):
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="backlog.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return sqs, url


def send(sqs, url, bodies_and_groups, dedup=None):
    entries = [{"Id": str(i), "MessageBody": body, "MessageGroupId": group,
                "MessageDeduplicationId": dedup or uuid.uuid4().hex}
               for i, (body, group) in enumerate(bodies_and_groups)]  # fmt: skip
    return sqs.send_message_batch(QueueUrl=url, Entries=entries)


def counts(sqs, url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_backlog_of_many_groups_is_delivered_whole_each_group_in_order(fifo):
    sqs, url = fifo
    # 600 messages: 200 groups of 3, sent interleaved (a, b, c, ..., a, b, c, ...)
    messages = [(f"{group}:{n}", f"g{group}") for n in range(3) for group in range(200)]
    for start in range(0, len(messages), 10):
        send(sqs, url, messages[start : start + 10])
    assert counts(sqs, url) == (600, 0)  # the counts are still there outside a send
    seen: dict[str, list[int]] = {}
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
        groups = [m["Body"].split(":")[0] for m in batch]
        for message in batch:
            group, n = message["Body"].split(":")
            seen.setdefault(group, []).append(int(n))
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(batch)])  # fmt: skip
        assert len(groups) == len(batch)
    assert len(seen) == 200
    assert all(order == [0, 1, 2] for order in seen.values())
    assert counts(sqs, url) == (0, 0)


def test_a_group_with_a_message_in_flight_is_held_back(fifo):
    sqs, url = fifo
    send(sqs, url, [("first", "one"), ("second", "one"), ("other", "two")])
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)["Messages"]
    assert [m["Body"] for m in first] == ["first"]
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
    assert [m["Body"] for m in rest] == ["other"]  # "second" waits for "first"
    assert counts(sqs, url) == (1, 2)


def test_a_long_poll_does_not_hand_out_a_group_another_receiver_holds(fifo):
    """A receive waits on an empty queue; meanwhile another receiver takes a group's first message and holds it
    back (a backoff). The group's second message, sent then, is not for the waiting receive: moto had taken the
    held groups once when the wait began, and handed it out (an older update then applied after a newer one)."""
    from moto.sqs.models import sqs_backends

    sqs, url = fifo
    queue = sqs_backends["123456789012"][REGION].queues["backlog.fifo"]
    waited = {}
    poller = boto3.client("sqs", region_name=REGION)
    wait = {"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 60, "WaitTimeSeconds": 3}
    waiting = threading.Thread(target=lambda: waited.update(poller.receive_message(**wait)))
    with queue._messages_lock:  # the waiting receive looks again only once the first is held elsewhere
        waiting.start()
        time.sleep(0.3)  # it has begun, found nothing, and waits
        send(sqs, url, [("first", "one")])
        (first,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5)["Messages"]
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=60)
    send(sqs, url, [("second", "one"), ("other", "two")])
    waiting.join()
    assert [m["Body"] for m in waited.get("Messages", [])] == ["other"]  # "second" waits for "first"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    after = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
    assert [m["Body"] for m in after] == ["second"]


def test_a_deduplication_id_sent_again_is_still_dropped(fifo):
    sqs, url = fifo
    send(sqs, url, [("once", "g")], dedup="same")
    send(sqs, url, [("twice", "g")], dedup="same")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in messages] == ["once"]


def test_a_fifo_send_without_deduplication_id_is_still_refused(fifo):
    sqs, url = fifo
    with pytest.raises(ClientError, match="MessageDeduplicationId"):
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")


def test_a_deleted_message_deletes_again_quietly_and_a_made_up_handle_is_refused(fifo):
    sqs, url = fifo
    send(sqs, url, [("a", "g1"), ("b", "g2")])
    first, second = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert counts(sqs, url) == (0, 1)  # only the second is left, still in flight
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == ["b"]


@pytest.fixture
def table(aws):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])  # fmt: skip
    return dynamodb


def add(name, n):
    values = {":n": {"N": str(n)}}
    return {"Update": {"TableName": "t", "Key": {"id": {"S": name}}, "UpdateExpression": "ADD #n :n",
                       "ExpressionAttributeNames": {"#n": "n"}, "ExpressionAttributeValues": values}}  # fmt: skip


def put_once(name):
    return {"Put": {"TableName": "t", "Item": {"id": {"S": name}}, "ConditionExpression": "attribute_not_exists(id)"}}


def n(table, name):
    item = table.get_item(TableName="t", Key={"id": {"S": name}}, ConsistentRead=True).get("Item")
    return None if item is None else int(item.get("n", {"N": "0"})["N"])


def test_a_transaction_writes_all_its_items(table):
    table.transact_write_items(TransactItems=[put_once("marker"), add("counter", 3)])
    assert (n(table, "marker"), n(table, "counter")) == (0, 3)


def test_a_cancelled_transaction_puts_back_only_what_it_wrote(table):
    table.transact_write_items(TransactItems=[add("counter", 3)])
    table.put_item(TableName="t", Item={"id": {"S": "taken"}})
    for i in range(50):  # items the transaction does not name stay as they are (moto put a whole table back)
        table.put_item(TableName="t", Item={"id": {"S": f"other-{i}"}, "n": {"N": str(i)}})
    with pytest.raises(ClientError) as cancelled:
        table.transact_write_items(TransactItems=[add("counter", 5), put_once("new"), put_once("taken")])
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert (n(table, "counter"), n(table, "new"), n(table, "taken")) == (3, None, 0)
    assert [n(table, f"other-{i}") for i in range(50)] == list(range(50))


def test_two_writes_of_one_item_in_a_transaction_are_refused(table):
    with pytest.raises(ClientError, match="ValidationException"):
        table.transact_write_items(TransactItems=[add("counter", 1), add("counter", 2)])
    assert n(table, "counter") is None


def test_the_server_still_sends_each_request_to_its_own_service(monkeypatch):
    """The server remembers each host's service: calls to three services, interleaved, each reach their own."""
    from moto.server import ThreadedMotoServer

    from local import moto_fixes

    moto_fixes.apply()
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        sqs, dynamodb, secrets = (boto3.client(s, endpoint_url=url, region_name=REGION)
                                  for s in ("sqs", "dynamodb", "secretsmanager"))  # fmt: skip
        for round_ in range(2):  # the second round is answered from what the server remembers
            queue = sqs.create_queue(QueueName=f"q{round_}")["QueueUrl"]
            dynamodb.create_table(TableName=f"t{round_}", BillingMode="PAY_PER_REQUEST",
                                  AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                                  KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])  # fmt: skip
            secrets.create_secret(Name=f"s{round_}", SecretString=f"v{round_}")
        assert sorted(u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]) == ["q0", "q1"]
        assert queue.endswith("/q1")
        assert sorted(dynamodb.list_tables()["TableNames"]) == ["t0", "t1"]
        assert secrets.get_secret_value(SecretId="s1")["SecretString"] == "v1"
    finally:
        server.stop()


def test_concurrent_adds_to_one_item_are_all_counted(table):
    """DynamoDB applies each write to an item whole: ADDs from many threads at once all count (moto's did not)."""
    import sys
    import threading

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
    update = add("counter", 1)["Update"]

    def adds():
        for _ in range(300):
            backend.update_item("t", update["Key"], update["UpdateExpression"], update["ExpressionAttributeNames"],
                                update["ExpressionAttributeValues"])  # fmt: skip

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as they can: a read-then-write shows its gap
    try:
        threads = [threading.Thread(target=adds) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert n(table, "counter") == 8 * 300
