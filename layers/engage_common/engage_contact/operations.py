"""What each function does with a checked command: resolve the contact, make the one Engage call."""

from __future__ import annotations

from functools import partial
from typing import Any

from .domain.command import Command, Operation
from .engage.client import EngageClient
from .engage.retry import Deadline
from .errors import ContactNotFound
from .find_or_create import find_or_create
from .only_changed import SentRecord


def execute(
    command: Command, client: EngageClient, deadline: Deadline, record: SentRecord | None = None
) -> dict[str, Any]:
    """Run the command against Engage; the contract's success result (`sent`: what Engage really received).

    `record`: what Engage last confirmed per contact (None without the table): kept truthful by every
    write, and consulted by an update that sends only what changed.
    """
    run = partial(apply, record=record)
    remembered = record.remembered(command) if record is not None else None
    result = _on_remembered(command, remembered, client, deadline, run, record) if remembered and record else None
    if result is None:
        remembered, result = None, _execute(command, client, deadline, run, record)
    if record is not None:
        record.resolved(command, result, remembered)
    return result


def _on_remembered(
    command: Command, contact_id: str, client: EngageClient, deadline: Deadline, run: Any, record: SentRecord
) -> dict[str, Any] | None:
    """The update on the contact its lookup last resolved to, without a lookup; None when Engage no longer has
    that contact (404: merged or removed), and the lookup must run as if nothing were remembered."""
    try:
        result = run(command, contact_id, client, deadline)
    except ContactNotFound:
        record.forget_contact(command)
        return None
    return result if command.creation is None else {**result, "created": False}


def _execute(
    command: Command, client: EngageClient, deadline: Deadline, run: Any, record: SentRecord | None
) -> dict[str, Any]:
    if command.creation is not None:
        result = find_or_create(command, client, deadline, run)
        if result.get("created") and record is not None:
            record.created(result["contactId"], result["sent"])
        if result.get("created") and command.send_only_changed:
            result["droppedUnchanged"] = []
        return result
    try:
        contact_id = command.contact_id
        if contact_id is None:
            assert command.lookup is not None  # parse_command: a contactId or a lookup
            contact_id = client.find_contact_id(command.lookup, deadline)
    except ContactNotFound:
        if not command.skip_if_missing:
            raise
        # nothing to apply it to and nothing to create (an unsubscribe never creates): a counted success
        return {**_result(None, None, {}, command.payload.dropped_empty), "notFound": True}
    return run(command, contact_id, client, deadline)


def apply(
    command: Command, contact_id: str, client: EngageClient, deadline: Deadline, record: SentRecord | None = None
) -> dict[str, Any]:
    """The command's one Engage call on a contact that exists (none when nothing changed)."""
    if command.operation is Operation.CHANGE_TYPE:
        assert command.contact_type_id is not None  # parse_command: a type change names its type
        contact = client.change_contact_type(contact_id, command.contact_type_id, deadline)
        return _result(contact_id, contact, {"contactTypeId": command.contact_type_id}, [])
    if command.operation is Operation.UPDATE and not command.payload.sent:
        # only a key to find or create by (createIfMissing): found, there is nothing to write, and that is no NoData
        return {**_result(contact_id, None, {}, command.payload.dropped_empty), "unchanged": True}
    if record is None:
        return _write(command, contact_id, client, deadline, command.payload.sent)
    plan = record.plan(command, contact_id)
    said = {} if plan.unchanged is None else {"droppedUnchanged": plan.unchanged}
    if plan.unchanged is not None and not plan.sent:  # Engage holds all of it: not called, and not NoData
        return {**_result(contact_id, None, {}, command.payload.dropped_empty), **said, "unchanged": True}
    write = partial(_write, command, contact_id, client, deadline, plan.sent)
    return {**record.send(contact_id, plan, write, deadline), **said}


def _write(
    command: Command, contact_id: str, client: EngageClient, deadline: Deadline, sent: dict[str, Any]
) -> dict[str, Any]:
    """Update or promote with `sent`, the attributes to write."""
    dropped = command.payload.dropped_empty
    if command.operation is Operation.UPDATE:
        return _result(contact_id, client.update_contact(contact_id, sent, deadline), sent, dropped)
    promotion = client.promote_to_member(contact_id, sent, deadline)
    if not promotion.already_member:
        return _result(contact_id, promotion.contact, sent, dropped)
    # A Member already: its attributes are still written, by an update (same sparse payload).
    contact = client.update_contact(contact_id, sent, deadline) if sent else promotion.contact
    return {**_result(contact_id, contact, sent, dropped), "alreadyMember": True}


def _result(contact_id: str | None, contact: Any, sent: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    return {"contactId": contact_id, "contact": contact, "sent": sent, "droppedEmpty": dropped}
