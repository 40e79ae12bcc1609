"""Find or create: a command with `createIfMissing` whose lookup misses creates the contact, once per key.

Voyado's rule: look the contact up before creating it. One key, one contact under every fault:
a create whose outcome is unknown is looked up again before it is ever sent again (the client's
check before a retry), and a create Engage refuses with 409 (the key exists, or is being created)
was someone else's: the contact is looked up again and the operation applied to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .domain.command import Command
from .domain.contacts import Lookup
from .engage.client import EngageClient
from .engage.retry import Deadline
from .errors import ContactNotFound, RequestInProgress


@dataclass(frozen=True)
class Found:
    """The contact a command is applied to: found (or named), or created with the command's attributes."""

    contact_id: str
    created: bool = False  # created with every attribute (as a Member for promote): nothing is left to write
    contact: Any = None  # Engage's answer to the create


def find_or_create(command: Command, client: EngageClient, deadline: Deadline) -> Found:
    """The contact the lookup finds, or the contact created (`created`); a 409 is someone else's create."""
    lookup, creation = command.lookup, command.creation
    assert lookup is not None and creation is not None  # createIfMissing: parse_creation checked both
    contact_id = _find(lookup, client, deadline)
    if contact_id is not None:
        return Found(contact_id)
    outcome = client.create_contact(creation.body, creation.options, lookup, deadline)
    if outcome.created and outcome.contact_id:
        return Found(outcome.contact_id, created=True, contact=outcome.contact)
    return Found(outcome.contact_id or _created_by_someone_else(lookup, client, deadline))


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
