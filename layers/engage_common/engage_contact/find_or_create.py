"""Find or create: a command with `createIfMissing` whose lookup misses creates the contact, once per key.

Voyado's rule: look the contact up before creating it. One key, one contact under every fault:
a create whose outcome is unknown is looked up again before it is ever sent again (the client's
check before a retry), and a create Engage refuses with 409 (the key exists, or is being created)
was someone else's: the contact is looked up again and the operation applied to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .domain.command import Command
from .domain.contacts import Lookup
from .engage.client import EngageClient
from .engage.retry import Deadline
from .errors import ContactNotFound, RequestInProgress

# The operation on a contact that exists: (command, contactId, client, deadline) -> the success result.
Apply = Callable[[Command, str, EngageClient, Deadline], dict[str, Any]]


def find_or_create(command: Command, client: EngageClient, deadline: Deadline, apply: Apply) -> dict[str, Any]:
    """The operation on the contact the lookup finds, or the contact created; `"created"` says which."""
    assert command.lookup is not None and command.creation is not None  # createIfMissing: parse_creation checked
    contact_id = _find(command.lookup, client, deadline)
    if contact_id is None:
        creation = command.creation
        outcome = client.create_contact(creation.body, creation.options, command.lookup, deadline)
        if outcome.created:
            # created with every attribute, as a Member for promote: nothing is left to apply
            return {
                "contactId": outcome.contact_id,
                "contact": outcome.contact,
                "sent": creation.body,
                "droppedEmpty": command.payload.dropped_empty,
                "created": True,
            }
        contact_id = outcome.contact_id or _created_by_someone_else(command.lookup, client, deadline)
    return {**apply(command, contact_id, client, deadline), "created": False}


def _find(lookup: Lookup, client: EngageClient, deadline: Deadline) -> str | None:
    try:
        return client.find_contact_id(lookup, deadline)
    except ContactNotFound:
        return None


def _created_by_someone_else(lookup: Lookup, client: EngageClient, deadline: Deadline) -> str:
    """Engage refused the create for its key (409): the contact that holds it, once Engage finds it."""
    contact_id = _find(lookup, client, deadline)
    if contact_id is None:
        raise RequestInProgress(
            "a contact with this key is being created elsewhere; retry shortly", {"lookup": lookup.key}
        )
    return contact_id
