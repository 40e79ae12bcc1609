"""Corrections to moto's SQS queues, applied wherever this project runs moto in-process.

FIFO order: moto counts a message group as "in flight" while any of its messages
is in its pending set, even one whose visibility has already run out. When a
failed message and the ones held back behind it become visible a millisecond
apart, moto then skips the first and hands out a later one: FIFO order broken,
by the emulator. Real SQS holds a group only while one of its messages is
invisible.

FIFO order under long polling: a receive that waits (WaitTimeSeconds) took its
set of held groups once, when it started, and tested every later look at the
queue against it. A group that went in flight to another receiver meanwhile
stayed open to the waiting one: with a group's first message in flight (held
back by a backoff), the waiting receive handed out its second one as soon as it
was sent. Real SQS holds the group until the first is deleted or visible again.
Here the held groups are taken again at each look.

Speed with a backlog (moto 5.2): every message sent and every message received
recomputed all of the queue's attributes, three counts each a walk over every
message the queue holds (four times per send, three times per message received),
and each message's visibility asked the clock through a datetime. With 1,000
messages waiting, a receive of 10 took 0.6 s and a send 66 ms a message, so a
backfill through the local stack was paced by the emulator, not by the rate
budget. Here the retention check and a send read the one attribute they need,
the clock is read as `time.time()` (the same UTC epoch seconds moto's datetime
arithmetic gives), and a deletion finds its message in one pass: a receive of 10
from 10,000 waiting takes about 10 ms, sending 10,000 about 10 s.
Behaviour is unchanged; only the cost.

DynamoDB transactions: moto deep-copied every table a transaction names before
writing, to put the copy back if the transaction is cancelled. With the
idempotency table holding a record per row, each backfill batch's counters
(`TransactWriteItems`) copied thousands of items, and a copy taken while another
thread wrote failed ("dictionary changed size during iteration": a 500, the
backfill stopped), while putting a copy back would undo what other writers did
meanwhile. Here a cancelled transaction puts back only the items it wrote.

DynamoDB writes at once: moto's update reads an item, works out the new values
and writes them back with nothing held, so two `ADD n :one` to one item from two
threads could count once (a backfill's applied counter ended 9,499 of 9,500
with the server in a process of its own). DynamoDB applies each write to an
item whole; here moto's writes (put, update, delete, transactions) take turns.

moto's server: every request had its service found again by matching the host
it infers (`sqs.eu-north-1.amazonaws.com`) against each of the hundreds of URL
patterns of every service moto knows, under one lock, after listing moto's
modules: about a sixth of the server's time in a backfill. The answer for a
host never changes while the server runs, so here it is remembered per host.
"""

from __future__ import annotations

import threading
import time
from typing import Any


def apply() -> None:
    from moto.sqs import models
    from moto.sqs.models import Queue, SQSBackend

    if getattr(Queue, "_engage_fifo_fix", False):
        return

    def pending_message_groups(self: Queue) -> set[str]:
        return {m.group_id for m in self._pending_messages if m.group_id is not None and not m.visible}

    Queue.pending_message_groups = property(pending_message_groups)  # type: ignore[method-assign,assignment]  # moto patched
    SQSBackend.receive_message = _receive_message  # type: ignore[method-assign]  # moto patched
    _fast_clock(models)
    _cheap_attribute_reads(Queue, SQSBackend)
    Queue.delete_message = _delete_message  # type: ignore[method-assign]  # moto patched
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]  # moto patched
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _one_write_at_a_time(getattr(DynamoDBBackend, name)))
    _remembered_backends()
    Queue._engage_fifo_fix = True  # type: ignore[attr-defined]  # our mark on moto's class: patched once


def _remembered_backends() -> None:
    """moto's server finds a host's service once, not on every request (its patterns are fixed at start)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    find = DomainDispatcherApplication.get_backend_for_host

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        known = self.__dict__.setdefault("_engage_backends", {})  # called under the dispatcher's lock
        if host not in known:
            known[host] = find(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]  # moto patched


def _fast_clock(models: Any) -> None:
    """moto.sqs's clock without a datetime per call: a message's visibility is asked on every scan."""
    unix_time = models.unix_time

    def fast_unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else unix_time(dt)

    def fast_unix_time_millis(dt: Any = None) -> float:
        return fast_unix_time(dt) * 1000.0

    models.unix_time, models.unix_time_millis = fast_unix_time, fast_unix_time_millis


def _cheap_attribute_reads(queue: Any, backend: Any) -> None:
    """The retention check and a send read the one attribute they need, not all of them (counts included)."""
    every_attribute = queue.attributes.fget

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(_SENDING, "now", False):  # all a send reads (_validate_message, send_message, add_message)
            return {"ContentBasedDeduplication": str(bool(self.content_based_deduplication)).lower()}
        return every_attribute(self)

    def sending(method: Any) -> Any:
        def send(self: Any, *args: Any, **kwargs: Any) -> Any:
            outer, _SENDING.now = getattr(_SENDING, "now", False), True
            try:
                return method(self, *args, **kwargs)
            finally:
                _SENDING.now = outer

        return send

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > time.time()

    queue.attributes = property(attributes)
    backend.send_message = sending(backend.send_message)
    backend.send_message_batch = sending(backend.send_message_batch)
    backend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


_SENDING = threading.local()  # set on the thread of a send while it runs


def _receive_message(
    self: Any,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Any]:
    """moto 5.2's SQSBackend.receive_message, the groups held taken afresh at each look at the queue (it took them
    once per call, so a long poll handed out a group's next message while another receiver held its first)."""
    from copy import deepcopy

    from moto.sqs import models

    message_attribute_names = message_attribute_names or []
    queue = self.get_queue(queue_name)
    result: list[Any] = []
    polling_end = models.unix_time() + wait_seconds_timeout
    taken: set[Any] = set()  # this call's messages: several of one group may go out in one batch, in order

    def held_groups() -> set[str]:
        """The groups another receiver holds now (a message of theirs in flight)."""
        return {m.group_id for m in queue.pending_messages if m.group_id and not m.visible and m not in taken}

    while True:
        if result or (wait_seconds_timeout and models.unix_time() > polling_end):
            break
        held = held_groups()  # the fix: at each look, not once when the call began
        messages_to_dlq = []
        for message in queue.messages:
            if not message.visible:
                continue
            if message in queue.pending_messages:  # visible again: its receiver timed out
                queue.pending_messages.remove(message)
                held = held_groups()
            if message.group_id and queue.fifo_queue and message.group_id in held:
                continue
            if (
                queue.dead_letter_queue is not None
                and queue.redrive_policy
                and message.approximate_receive_count >= queue.redrive_policy["maxReceiveCount"]
            ):
                messages_to_dlq.append(message)
                continue
            queue.pending_messages.add(message)
            taken.add(message)
            message.mark_received(visibility_timeout=visibility_timeout)
            message_copy = deepcopy(message)  # moto's: the caller's copy, its attributes filtered
            models._filter_message_attributes(message_copy, message_attribute_names)
            if not self.is_message_valid_based_on_retention_period(queue_name, message):
                break
            result.append(message_copy)
            if len(result) >= count:
                break
        for message in messages_to_dlq:
            queue._messages.remove(message)
            queue.dead_letter_queue.add_message(message)
        if not result:
            if wait_seconds_timeout == 0:
                break
            queue.wait_for_messages(1)
    return result


def _delete_message(self: Any, receipt_handle: str) -> None:
    """moto's Queue.delete_message in one pass (it walked the messages twice, a list of handles built per message)."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    if receipt_handle in self.deleted_messages:
        return  # already deleted: deleting it again is fine
    for position, message in enumerate(self._messages):
        if message.receipt_handle == receipt_handle or receipt_handle in message._old_receipt_handles:
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)
            self._messages = self._messages[:position] + self._messages[position + 1 :]
            return
    raise ReceiptHandleIsInvalid()


_WRITES = threading.RLock()  # one DynamoDB write (or transaction, with its writes) at a time


def _one_write_at_a_time(write: Any) -> Any:
    def one_write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _WRITES:
            return write(self, *args, **kwargs)

    return one_write


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's DynamoDBBackend.transact_write_items, cancelled by putting back only the items it wrote."""
    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _WRITES:
        written: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []  # (table, key, item as it was)
        keys: set[tuple[str, str]] = set()
        errors = []
        try:
            for item in transact_items:
                errors.append(_transact_one(self, item, keys, written))
        except (MultipleTransactionsException, MockValidationException):
            _put_back(self, written)
            raise
        if any(code is not None for code, _, _ in errors):
            _put_back(self, written)
            raise TransactionCanceledException(errors)


def _transact_one(self: Any, item: dict[str, Any], keys: set, written: list) -> tuple[Any, Any, Any]:
    """One of a transaction's writes, as moto does it: (None, None, None), or why it was cancelled."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TransactWriteSingleOpException,
    )

    if len(item) > 1:
        raise TransactWriteSingleOpException
    old = None
    try:
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        name = op["TableName"]
        key = op.get("Key")
        if op_type == "Put":
            table = self.get_table(name)
            key = {a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a is not None}
        unique = (str(name), str(dict(sorted(key.items()))))
        if unique in keys:
            raise MultipleTransactionsException()
        keys.add(unique)
        current = self.get_item(name, key)
        names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(condition, names, values).expr(current):
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            raise ConditionalCheckFailed(item=old)
        if op_type == "ConditionCheck":
            return None, None, None
        written.append((name, key, current.to_json()["Attributes"] if current else None))
        options = {
            "condition_expression": condition,
            "expression_attribute_names": names,
            "expression_attribute_values": values,
        }
        if op_type == "Put":
            self.put_item(name, op["Item"], **options)
        elif op_type == "Delete":
            self.delete_item(name, key, **options)
        else:
            self.update_item(name, key, update_expression=op["UpdateExpression"], **options)
    except (MultipleTransactionsException, MockValidationException):
        raise
    except ConditionalCheckFailed as exc:
        return "ConditionalCheckFailed", str(exc.message), old
    except Exception as exc:  # as moto: any other failure cancels the transaction with its name
        return type(exc).__name__, str(exc), old
    return None, None, None


def _put_back(self: Any, written: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> None:
    for name, key, before in reversed(written):
        if before is None:
            self.delete_item(name, key)
        else:
            self.put_item(name, before)


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make run (python -m local.stack), which applies them to its moto")
