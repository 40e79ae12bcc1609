"""The record of what Engage last confirmed per contact: digests, in the idempotency table, under `sent#<contactId>`.

One item a contact; one attribute `d:<name>` a compared entry ("<digest>@<unix seconds>", see
`domain.sent_digests`); `expiration` (the table's TTL) moved on at every write, so a quiet contact's
record goes away and its next update is sent whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import DependencyUnavailable
from .table import UNREACHABLE, update_if

PREFIX = "d:"


def _key(contact_id: str) -> dict[str, Any]:
    return {"id": {"S": f"sent#{contact_id}"}}


def _names(names: Iterable[str]) -> dict[str, str]:
    return {f"#n{i}": f"{PREFIX}{name}" for i, name in enumerate(names)}


class SentDigests:
    """Read, forget and record a contact's entries; `lifetime_seconds` is how long an entry counts.

    Each raises DependencyUnavailable when the table cannot be reached; what then is the caller's choice.
    """

    def __init__(self, table_name: str, client: Any, lifetime_seconds: float) -> None:
        """`client`: the container's DynamoDB client."""
        self.table_name = table_name
        self.client = client
        self.lifetime_seconds = lifetime_seconds

    def read(self, contact_id: str) -> dict[str, str]:
        """The contact's entries by name ({} when it has none), read consistently: the last write counts."""
        try:
            item = self.client.get_item(TableName=self.table_name, Key=_key(contact_id), ConsistentRead=True)
        except Exception as exc:
            raise DependencyUnavailable(UNREACHABLE) from exc
        fields = item.get("Item") or {}
        return {k[len(PREFIX) :]: v["S"] for k, v in fields.items() if k.startswith(PREFIX) and "S" in v}

    def absent(self, contact_ids: list[str]) -> set[str]:
        """Which of these contacts (at most 100) have no record: one consistent BatchGetItem for them all.

        A key DynamoDB left unread counts as having a record (it is forgotten as usual).
        """
        contact_ids = list(dict.fromkeys(contact_ids))[:100]  # a key asked twice is refused
        keys = [_key(c) for c in contact_ids]
        request = {self.table_name: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "id"}}
        try:
            answer = self.client.batch_get_item(RequestItems=request)
        except Exception as exc:
            raise DependencyUnavailable(UNREACHABLE) from exc
        unread = answer.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
        present = {k["id"]["S"] for k in [*answer.get("Responses", {}).get(self.table_name, []), *unread]}
        return {c for c, k in zip(contact_ids, keys, strict=False) if k["id"]["S"] not in present}

    def forget(self, contact_id: str, names: Iterable[str]) -> None:
        """Remove these entries (their values are on their way to Engage).

        A contact without a record is left without one (no empty item is made).
        """
        placeholders = _names(names)
        if not placeholders:
            return
        update_if(  # a contact without a record fails the condition: nothing to forget
            self.client,
            TableName=self.table_name,
            Key=_key(contact_id),
            UpdateExpression="REMOVE " + ", ".join(placeholders),
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeNames=placeholders,
        )

    def record(self, contact_id: str, entries: Mapping[str, str], now: float | None = None) -> None:
        """Set these entries (Engage confirmed their values) and move the record's expiry on."""
        if not entries:
            return
        now = time.time() if now is None else now
        placeholders = _names(entries)
        values = {f":v{i}": {"S": value} for i, value in enumerate(entries.values())}
        values[":exp"] = {"N": str(int(now + self.lifetime_seconds))}
        sets = [f"{p} = :v{i}" for i, p in enumerate(placeholders)]
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(contact_id),
                UpdateExpression="SET " + ", ".join([*sets, "expiration = :exp"]),
                ExpressionAttributeNames=placeholders,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            raise DependencyUnavailable(UNREACHABLE) from exc

    def contact_for(self, lookup_group: str) -> str | None:
        """The contactId a lookup (its message group: key and digest, no value) last resolved to, if recorded."""
        try:
            item = (
                self.client.get_item(
                    TableName=self.table_name, Key={"id": {"S": f"sent-lookup#{lookup_group}"}}, ConsistentRead=True
                ).get("Item")
                or {}
            )
        except Exception as exc:
            raise DependencyUnavailable(UNREACHABLE) from exc
        return item.get("contactId", {}).get("S")

    def remember_contact(self, lookup_group: str, contact_id: str | None, now: float) -> None:
        """Record (or, with None, forget) the contactId a lookup resolved to; it expires with the entries."""
        key = {"id": {"S": f"sent-lookup#{lookup_group}"}}
        try:
            if contact_id is None:
                self.client.delete_item(TableName=self.table_name, Key=key)
                return
            item = {**key, "contactId": {"S": contact_id}, "expiration": {"N": str(int(now + self.lifetime_seconds))}}
            self.client.put_item(TableName=self.table_name, Item=item)
        except Exception as exc:
            raise DependencyUnavailable(UNREACHABLE) from exc
