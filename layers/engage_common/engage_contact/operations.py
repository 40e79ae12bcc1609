"""What each function does with a checked command: resolve the contact, make the one Engage call."""

from __future__ import annotations

from typing import Any

from .client import Deadline, EngageClient
from .command import Command, Operation


def execute(command: Command, client: EngageClient, deadline: Deadline) -> dict[str, Any]:
    """Run the command against Engage; the contract's success result."""
    contact_id = command.contact_id or client.find_contact_id(command.lookup, deadline)
    dropped: list[str] = []
    if command.operation is Operation.CHANGE_TYPE:
        sent: dict[str, Any] = {"contactTypeId": command.contact_type_id}
        contact = client.change_contact_type(contact_id, command.contact_type_id, deadline)
    else:
        sent, dropped = command.payload.sent, command.payload.dropped_empty
        call = client.update_contact if command.operation is Operation.UPDATE else client.promote_to_member
        contact = call(contact_id, sent, deadline)
    return {"contactId": contact_id, "contact": contact, "sent": sent, "droppedEmpty": dropped}
