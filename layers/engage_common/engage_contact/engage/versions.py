"""What differs between Engage's API v2 and v3, in one table: the client reads it, nothing else knows the version.

Both versions share the sparse update rules, the lookup's parameters and answers, the error bodies and
the rate limit. They differ in the paths, the update's method, how a contact becomes a Member, and
where a create's options go.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ..domain.contacts import check_contact_id

CREATE_OPTIONS = ("source", "storeExternalId", "createAsUnapproved")
BULK_MAX = 4000  # contacts in one bulk request (Voyado's "Bulk write contacts API", v2 and v3 alike)


@dataclass(frozen=True)
class ApiVersion:
    name: str  # "v2" or "v3": the path segment
    update_method: str  # v2 POST, v3 PATCH (same sparse body)
    # v2: POST .../promoteToMember with the attributes. v3 has no promoteToMember: the attributes go by
    # an update, then POST .../updateContactType?contactTypeId=Member.
    promotes_by_type_change: bool
    # v2 takes a create's options as headers, v3 as query parameters (each ignores the other place silently).
    create_options_in_query: bool

    @property
    def contacts_path(self) -> str:
        """The collection: create is POST here."""
        return f"/api/{self.name}/contacts"

    @property
    def lookup_path(self) -> str:
        return f"{self.contacts_path}/id"

    @property
    def bulk_path(self) -> str:
        """Bulk writes: POST creates, PATCH updates, up to BULK_MAX contacts a request (both versions)."""
        return f"{self.contacts_path}/bulk"

    @property
    def bulk_status_path(self) -> str:
        """A bulk batch's status, `?batchId=`: the path is our assumption (docs/design.md, "Bulk writes")."""
        return f"{self.contacts_path}/bulk/status"

    def contact_path(self, contact_id: str, action: str | None = None) -> str:
        """One contact's path (read, update), or one of its actions; the id is checked before it enters a URL."""
        path = f"{self.contacts_path}/{quote(check_contact_id(contact_id), safe='')}"
        return f"{path}/{action}" if action else path

    def create_options(self, options: dict[str, str | bool | None]) -> tuple[dict[str, str], dict[str, str]]:
        """A create's options (`source`, `storeExternalId`, `createAsUnapproved`) as (query parameters, headers)."""
        values = {name: _text(value) for name in CREATE_OPTIONS if (value := options.get(name)) is not None}
        return (values, {}) if self.create_options_in_query else ({}, values)

    def delete_options(self, source: str | None) -> tuple[dict[str, str], dict[str, str]]:
        """A delete's `source` (why the contact was deleted) as (query parameters, headers): v2 header, v3 query."""
        if not source:
            return {}, {}
        return ({"source": source}, {}) if self.create_options_in_query else ({}, {"source": source})


def _text(value: str | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else value


V2 = ApiVersion("v2", update_method="POST", promotes_by_type_change=False, create_options_in_query=False)
V3 = ApiVersion("v3", update_method="PATCH", promotes_by_type_change=True, create_options_in_query=True)
VERSIONS = {version.name: version for version in (V2, V3)}
DEFAULT_VERSION = V2.name


def api_version(name: str) -> ApiVersion:
    """The version named `name` ("v2" or "v3"); ValueError for any other name."""
    try:
        return VERSIONS[name]
    except KeyError:
        raise ValueError(f"Engage API version must be one of {', '.join(VERSIONS)}, not {name!r}") from None
