"""A correction to moto's FIFO queues, applied wherever this project runs moto in-process.

moto counts a message group as "in flight" while any of its messages is in its
pending set, even one whose visibility has already run out. When a failed
message and the ones held back behind it become visible a millisecond apart,
moto then skips the first and hands out a later one: FIFO order broken, by the
emulator. Real SQS holds a group only while one of its messages is invisible.
"""

from __future__ import annotations


def apply() -> None:
    from moto.sqs.models import Queue

    if getattr(Queue, "_engage_fifo_fix", False):
        return

    def pending_message_groups(self: Queue) -> set[str]:
        return {m.group_id for m in self._pending_messages if m.group_id is not None and not m.visible}

    Queue.pending_message_groups = property(pending_message_groups)
    Queue._engage_fifo_fix = True
