"""What each function does with a checked command: its journey to the one Engage call, top to bottom.

    1. resolve the contact:  the command's contactId, the contact its shop customer was last found as, the
                             one its lookup finds, or one created (`createIfMissing`, find_or_create.py)
    2. decide what to send:  `records.before` (only_changed.py): only what changed, when asked; the names
                             sent start being forgotten beside the call
    3. one Engage call:      update, promote or change type (none when nothing is left to send)
    4. record the outcome:   `records.after`: what Engage confirmed, a created contact, what the lookup
                             resolved to

Idempotency and the contact's order wrap the journey at the edge (handler.py, ordering.py); `records` is
the one interface to the per-contact records, and nothing is handed down into the Engage call.
"""

from __future__ import annotations

from typing import Any

from .domain.command import Command, Operation
from .engage.client import EngageClient
from .engage.retry import Deadline
from .errors import ContactNotFound
from .find_or_create import Found, find_or_create
from .only_changed import NO_RECORD, NoRecord, Outcome, Plan, SentRecord


def execute(
    command: Command, client: EngageClient, deadline: Deadline, records: SentRecord | NoRecord | None = None
) -> dict[str, Any]:
    """Run the command against Engage; the contract's success result (`sent`: what Engage really received).

    `records`: what Engage last confirmed per contact (None without the table): kept truthful by every
    write, and consulted by an update that sends only what changed.
    """
    records = records if records is not None else NO_RECORD
    # The contact to try: the one remembered for the command's shop customer, else the one resolved now (also
    # when Engage answers 404 for the remembered one: merged or removed since, and forgotten).
    remembered = records.remembered(command)
    while True:
        found = Found(remembered) if remembered is not None else resolve(command, client, deadline)
        if found is None:  # nothing to apply it to and nothing to create (an unsubscribe never creates): a success
            return {**_result(None, None, {}, command.payload.dropped_empty), "notFound": True}
        if found.created:  # created with every attribute (as a Member for promote): nothing is left to write
            result = _created(command, found)
            records.after(command, Outcome(found.contact_id, result, created=True))
            return result
        plan = records.before(command, found.contact_id)
        try:
            result = _call(command, found.contact_id, plan, client, deadline)
        except Exception as error:
            gone = isinstance(error, ContactNotFound)  # nothing confirmed; a remembered contact gone is forgotten
            records.after(command, Outcome(found.contact_id, None, plan, remembered is not None, gone=gone))
            if gone and remembered is not None:
                remembered = None
                continue
            raise
        if command.creation is not None:
            result["created"] = False
        records.after(command, Outcome(found.contact_id, result, plan, remembered is not None), deadline)
        return result


def resolve(command: Command, client: EngageClient, deadline: Deadline) -> Found | None:
    """The contact the command is about: named, found by its lookup, or created; None when a lookup that may
    miss (`skipIfMissing`) missed."""
    if command.creation is not None:
        return find_or_create(command, client, deadline)
    if command.contact_id is not None:
        return Found(command.contact_id)
    assert command.lookup is not None  # parse_command: a contactId or a lookup
    try:
        return Found(client.find_contact_id(command.lookup, deadline))
    except ContactNotFound:
        if not command.skip_if_missing:
            raise
        return None


def _created(command: Command, found: Found) -> dict[str, Any]:
    """The result of a create: what it sent is what Engage holds."""
    assert command.creation is not None  # only a command with createIfMissing creates
    result = _result(found.contact_id, found.contact, command.creation.body, command.payload.dropped_empty)
    return {**result, "created": True, **({"droppedUnchanged": []} if command.send_only_changed else {})}


def _call(
    command: Command, contact_id: str, plan: Plan | None, client: EngageClient, deadline: Deadline
) -> dict[str, Any]:
    """The command's one Engage call on a contact that exists (none when nothing is left to send)."""
    if command.operation is Operation.CHANGE_TYPE:
        assert command.contact_type_id is not None  # parse_command: a type change names its type
        contact = client.change_contact_type(contact_id, command.contact_type_id, deadline)
        return _result(contact_id, contact, {"contactTypeId": command.contact_type_id}, [])
    dropped = command.payload.dropped_empty
    if command.operation is Operation.UPDATE and not command.payload.sent:
        # only a key to find or create by (createIfMissing): found, there is nothing to write, and that is no NoData
        return {**_result(contact_id, None, {}, dropped), "unchanged": True}
    said = {} if plan is None or plan.unchanged is None else {"droppedUnchanged": plan.unchanged}
    if plan is not None and plan.nothing_left:  # Engage holds all of it: not called, and not NoData
        return {**_result(contact_id, None, {}, dropped), **said, "unchanged": True}
    sent = command.payload.sent if plan is None else plan.sent
    if command.operation is Operation.UPDATE:
        return {**_result(contact_id, client.update_contact(contact_id, sent, deadline), sent, dropped), **said}
    promotion = client.promote_to_member(contact_id, sent, deadline)
    if not promotion.already_member:
        return {**_result(contact_id, promotion.contact, sent, dropped), **said}
    # A Member already: its attributes are still written, by an update (same sparse payload).
    contact = client.update_contact(contact_id, sent, deadline) if sent else promotion.contact
    return {**_result(contact_id, contact, sent, dropped), **said, "alreadyMember": True}


def _result(contact_id: str | None, contact: Any, sent: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    return {"contactId": contact_id, "contact": contact, "sent": sent, "droppedEmpty": dropped}
