"""What each function does with a checked command: resolve the contact, make the one Engage call."""

from __future__ import annotations

from typing import Any

from .domain.command import Command, Operation
from .engage.client import EngageClient
from .engage.retry import Deadline
from .find_or_create import find_or_create


def execute(command: Command, client: EngageClient, deadline: Deadline) -> dict[str, Any]:
    """Run the command against Engage; the contract's success result (`sent`: what Engage really received)."""
    if command.creation is not None:
        return find_or_create(command, client, deadline, apply)
    return apply(command, command.contact_id or client.find_contact_id(command.lookup, deadline), client, deadline)


def apply(command: Command, contact_id: str, client: EngageClient, deadline: Deadline) -> dict[str, Any]:
    """The command's one Engage call on a contact that exists."""
    if command.operation is Operation.CHANGE_TYPE:
        contact = client.change_contact_type(contact_id, command.contact_type_id, deadline)
        return _result(contact_id, contact, {"contactTypeId": command.contact_type_id}, [])
    sent, dropped = command.payload.sent, command.payload.dropped_empty
    if command.operation is Operation.UPDATE:
        return _result(contact_id, client.update_contact(contact_id, sent, deadline), sent, dropped)
    promotion = client.promote_to_member(contact_id, sent, deadline)
    if not promotion.already_member:
        return _result(contact_id, promotion.contact, sent, dropped)
    # A Member already: its attributes are still written, by an update (same sparse payload).
    contact = client.update_contact(contact_id, sent, deadline) if sent else promotion.contact
    return {**_result(contact_id, contact, sent, dropped), "alreadyMember": True}


def _result(contact_id: str, contact: Any, sent: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    return {"contactId": contact_id, "contact": contact, "sent": sent, "droppedEmpty": dropped}
