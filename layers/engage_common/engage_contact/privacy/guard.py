"""What the update and promote functions do for privacy: skip a command queued before its person was erased,
and record which shop customer a command came from (so an id-only deletion, or a shop's erasure, finds them)."""

from __future__ import annotations

from typing import Any

from .. import observability
from ..domain.contacts import Lookup
from ..errors import DependencyUnavailable
from .records import PrivacyRecords, email_digest, erased_at


class ErasureGuard:
    def __init__(self, table_name: str, client: Any) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client
        self.records = PrivacyRecords(table_name, client)

    def erased_after(self, group: str, queued_at_ms: int) -> bool:
        """Whether the person of this message group was erased after this command was queued (then it is not
        applied: it would bring back what the erasure removed)."""
        at = erased_at(self.client, self.table_name, group)
        return at is not None and queued_at_ms <= at

    def remember_origin(self, source_customer: str, group: str, lookup: Lookup | None) -> None:
        """Record the shop customer (a command's `sourceCustomer`, `platform:shop:id`) → group link; a table that
        cannot be reached only loses the link (said)."""
        platform, _, rest = source_customer.partition(":")
        shop, _, customer_id = rest.rpartition(":")  # a WooCommerce shop is a URL, with colons of its own
        digest = email_digest(lookup.value) if lookup is not None and lookup.key == "email" else None
        try:
            self.records.remember_shop_customer(platform, shop, customer_id, group=group, email_digest=digest)
        except DependencyUnavailable as error:
            observability.unexpected(error, privacy="shop customer not recorded")
