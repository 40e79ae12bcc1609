"""The items of the idempotency table that name a person, found, exported and erased; and the two records
privacy needs of its own there: which shop customer is which contact key, and whom was erased when.

What names a person (see `aws.idempotency`, `aws.sent_digests`, `aws.event_times`, `ecommerce.last_applied`):
- `sent#<contactId>` (what Engage last confirmed: digests), `sent-lookup#<group>` (the remembered contactId),
- `event-time#<group>` for the lookup's group and for the contactId, `event-time#<customer group>#<channel>` for
  a shop customer's consent clocks, `contact-lease#<group>` (one write at a time on the API path),
- `last-applied#<platform>#<digest of the email>` (each platform), `last-applied#<platform>#<channel>#<digest of
  the shop customer>` (consent), `promote#<digest of the email>` (a promotion queued once),
- `shop-customer#<platform>#<shop digest>#<customer digest>` (this module: the shop's customer → the group, and
  the digests its own records are kept under), and `shop-customer-of#<group>` (the way back),
- idempotency records (`…idempotency._run_work#…`) whose stored result names the contactId (and what was sent).
`<group>` is the contact's SQS message group (`domain.contacts.message_group`): a lookup key and a digest.
Every digest here is keyed with the deployment's digest key (`domain.digest_key`), as the records' writers
key theirs: the erase function finds what they wrote, and a reader of the table cannot test guessed addresses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..domain.contacts import message_group, source_customer_group
from ..domain.digest_key import customer_digest, keyed
from ..errors import DependencyUnavailable

SHOP_CUSTOMER_DAYS = 400  # as long as the other per-customer records (event times, last applied)
# An erasure's mark outlives every message queued before it: the queues keep messages 14 days.
ERASED_MARK_DAYS = 15
IDEMPOTENCY_RECORD = "engage_contact.aws.idempotency._run_work#"  # the idempotency records' key (aws.idempotency)
PLATFORMS = ("shopify", "woocommerce")
SHOP_CUSTOMER_OF = "shop-customer-of#"  # + a contact's group: the shop customer it was reached as
CONSENT_CLOCKS = ("acceptsEmail", "acceptsSms")  # a shop customer's consent channels (domain.command.EVENT_CLOCKS)
UNREACHABLE = "the idempotency table cannot be reached"


def digest(*parts: str) -> str:
    """A keyed digest for an item's key (shop, customer id), like the table's other keys: no value in a key."""
    return keyed("privacy", "\x00".join(p.strip().lower() for p in parts))[:32]


def audit_subject(key: bytes, text: str) -> str:
    """An audit subject: keyed with the audit's own key (`digest_key.subkey`), so a reader of the audit trail
    cannot test a guessed address against it, and a rotated Engage key changes no subject."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:40]


def erasure_mark(group: str) -> str:
    """The key of a person's erasure mark: a keyed digest of their message group (the contactId or the lookup's
    digest), like the table's other keys; found by the update function that checks it under the same key."""
    return "erased#" + keyed("erased", group)[:40]


def shop_customer_id(platform: str, shop: str, customer_id: str) -> str:
    return f"{shop_prefix(platform, shop)}{digest(customer_id)}"


def shop_prefix(platform: str, shop: str) -> str:
    """The key prefix of a shop's customers (a shop as compared: trimmed, without case or a trailing '/')."""
    return f"shop-customer#{platform}#{digest(platform, shop.strip().rstrip('/'))}#"


@dataclass
class Person:
    """What is known of a person: their message groups, contactIds, email digests and shop-customer items."""

    groups: set[str] = field(default_factory=set)
    contact_ids: set[str] = field(default_factory=set)
    email_digests: set[str] = field(default_factory=set)
    shop_items: set[str] = field(default_factory=set)
    customer_digests: set[str] = field(default_factory=set)  # of `platform:shop:id`, as last-applied keeps them

    def merge(self, other: Person) -> None:
        self.groups |= other.groups
        self.contact_ids |= other.contact_ids
        self.email_digests |= other.email_digests
        self.shop_items |= other.shop_items
        self.customer_digests |= other.customer_digests

    def item_keys(self) -> list[str]:
        """Every item key the table may hold for this person (the idempotency records are found by a scan)."""
        keys = [f"sent-lookup#{g}" for g in self.groups if not g.startswith("contactId")]
        keys += [f"event-time#{g}" for g in self.groups | self.contact_ids]
        keys += [f"contact-lease#{g}" for g in self.groups | self.contact_ids]
        keys += [f"event-time#{g}#{c}" for g in self.groups if g.startswith("customer:") for c in CONSENT_CLOCKS]
        keys += [f"sent#{c}" for c in self.contact_ids]
        keys += [f"last-applied#{p}#{d}" for p in PLATFORMS for d in self.email_digests]
        keys += [f"promote#{d}" for d in self.email_digests]
        keys += [f"last-applied#{p}#{c}#{d}" for p in PLATFORMS for c in CONSENT_CLOCKS for d in self.customer_digests]
        return sorted({*keys, *self.shop_items})


def email_digest(email: str) -> str:
    """The digest an email's last-applied records are kept under (`ecommerce.last_applied`)."""
    return customer_digest(email)


def customer_person(platform: str, shop: str, customer_id: str) -> Person:
    """The keys a shop customer's own records are kept under (their consent clocks, the contact they reached)."""
    source = f"{platform}:{shop.strip().lower().rstrip('/')}:{customer_id.strip()}"
    return Person(groups={source_customer_group(source)}, customer_digests={email_digest(source)})


def lookup_person(key: str, value: str) -> Person:
    person = Person(groups={message_group({"lookup": {key: value}})})
    if key == "email":
        person.email_digests.add(email_digest(value))
    return person


def _shop_person(item: dict[str, Any]) -> Person:
    """The person a shop-customer item names: the item itself, its group, its email's digest."""
    person = Person(shop_items={item["id"]["S"]})
    group = item.get("group", {}).get("S")
    if group:  # a command by contactId has the id itself as its group
        (person.groups if ":" in group else person.contact_ids).add(group)
    if "emailDigest" in item:
        person.email_digests.add(item["emailDigest"]["S"])
    if "customerGroup" in item:  # the shop customer's own records' keys (digests)
        person.groups.add(item["customerGroup"]["S"])
        person.customer_digests.add(item["customerDigest"]["S"])
    return person


class PrivacyRecords:
    """The table's items of a person; `client` a boto3 DynamoDB client (scans are the erase function's alone)."""

    def __init__(self, table_name: str, client: Any, clock: Any = time.time) -> None:
        self.table_name = table_name
        self.client = client
        self.clock = clock

    # --- the shop's customers, recorded by the update function ---------------------------------------
    def remember_shop_customer(
        self, platform: str, shop: str, customer_id: str, group: str, email_digest: str | None = None
    ) -> None:
        """Record that this shop customer is the contact of `group` (so an id-only deletion finds them), and the
        digest their email's last-applied records are kept under (see `ecommerce.last_applied`)."""
        expires = int(self.clock() + SHOP_CUSTOMER_DAYS * 86400)
        own = customer_person(platform, shop, customer_id)
        (customer_group,), (customer_digest,) = own.groups, own.customer_digests
        item = {
            "id": {"S": shop_customer_id(platform, shop, customer_id)},
            "group": {"S": group},
            "customerGroup": {"S": customer_group},
            "customerDigest": {"S": customer_digest},
            "expiration": {"N": str(expires)},
        }
        if email_digest:
            item["emailDigest"] = {"S": email_digest}
        self._call("put_item", TableName=self.table_name, Item=item)
        # and the way back, from the contact's group to the shop customer: a request that names only the email
        # finds what is kept under the shop customer's keys (the contact it reached, its consent clocks)
        back = {
            "id": {"S": f"{SHOP_CUSTOMER_OF}{group}"},
            "customerGroup": item["customerGroup"],
            "customerDigest": item["customerDigest"],
            "shopItem": item["id"],
            "expiration": item["expiration"],
        }
        self._call("put_item", TableName=self.table_name, Item=back)

    def shop_customer(self, platform: str, shop: str, customer_id: str) -> Person:
        """The person a shop customer id is, as far as the table knows: the item, and the group it names."""
        key = shop_customer_id(platform, shop, customer_id)
        return _shop_person(self._item(key) or {"id": {"S": key}})

    def shop_customers(self, platform: str, shop: str) -> Person:
        """Everyone the table knows as a customer of the shop (a scan: a shop's erasure is rare)."""
        person = Person()
        for item in self.scan("begins_with(id, :prefix)", {":prefix": {"S": shop_prefix(platform, shop)}}):
            person.merge(_shop_person(item))
        return person

    # --- resolving, exporting, erasing --------------------------------------------------------------
    def complete(self, person: Person) -> None:
        """Add the shop customer their groups lead to, and the contactIds their lookups were remembered as."""
        for group in list(person.groups):
            item = self._item(f"{SHOP_CUSTOMER_OF}{group}")
            if "customerGroup" in item:
                person.groups.add(item["customerGroup"]["S"])
                person.customer_digests.add(item["customerDigest"]["S"])
                person.shop_items |= {item["id"]["S"], item["shopItem"]["S"]}
        for group in list(person.groups):
            if group.startswith("contactId") or ":" not in group:
                continue
            item = self._item(f"sent-lookup#{group}")
            if "contactId" in item:
                person.contact_ids.add(item["contactId"]["S"])

    def items(self, person: Person) -> list[dict[str, Any]]:
        """Every item of the table that names the person, as stored (DynamoDB's typed JSON)."""
        found = []
        for key in person.item_keys():
            item = self._item(key)
            if item:
                found.append(item)
        return found + list(self.idempotency_records(person.contact_ids))

    def idempotency_records(self, contact_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The idempotency records whose stored result names one of these contacts (a scan of the table)."""
        wanted = sorted(set(contact_ids))
        if not wanted:
            return
        for item in self.scan("contains(id, :record)", {":record": {"S": IDEMPOTENCY_RECORD}}):
            data = item.get("data", {}).get("S", "")
            if any(f'"contactId": "{c}"' in data for c in wanted):
                yield item

    def erase(self, person: Person) -> int:
        """Delete every item that names the person; how many there were. Deleting what is gone is harmless."""
        keys = [item["id"]["S"] for item in self.idempotency_records(person.contact_ids)]
        keys += person.item_keys()
        erased = 0
        for key in keys:
            answer = self._call(
                "delete_item", TableName=self.table_name, Key={"id": {"S": key}}, ReturnValues="ALL_OLD"
            )
            erased += bool(answer.get("Attributes"))
        return erased

    # --- erasure marks: an update queued before an erasure is not applied after it --------------------
    def mark_erased(self, groups: Iterable[str], at_ms: int) -> int:
        """Mark these message groups erased at `at_ms` (a mark there already keeps its time: a retried erasure
        is the same erasure); the earliest time now marked, in ms."""
        expires = int(self.clock() + ERASED_MARK_DAYS * 86400)
        first = at_ms
        for group in sorted(groups):
            answer = self._call(
                "update_item",
                TableName=self.table_name,
                Key={"id": {"S": erasure_mark(group)}},
                UpdateExpression="SET #at = if_not_exists(#at, :at), expiration = :exp",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":at": {"N": str(at_ms)}, ":exp": {"N": str(expires)}},
                ReturnValues="UPDATED_NEW",
            )
            first = min(first, int(answer.get("Attributes", {}).get("at", {}).get("N", at_ms)))
        return first

    def scan(self, condition: str, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        while True:
            page = self._call("scan", **params)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _item(self, key: str) -> dict[str, Any]:
        """The item of this key as stored ({} when there is none), read consistently."""
        return (
            self._call("get_item", TableName=self.table_name, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")
            or {}
        )

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**params)
        except Exception as exc:
            raise DependencyUnavailable(UNREACHABLE) from exc


def erased_at(client: Any, table_name: str, group: str) -> int | None:
    """When the person of this message group was erased, in ms; None when they were not (or the mark expired)."""
    try:
        item = client.get_item(TableName=table_name, Key={"id": {"S": erasure_mark(group)}}, ConsistentRead=True)
    except Exception as exc:
        raise DependencyUnavailable(UNREACHABLE) from exc
    at = (item.get("Item") or {}).get("at", {}).get("N")
    return int(at) if at is not None else None


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A stored item as plain JSON (for an export)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    value = {k: deserializer.deserialize(v) for k, v in item.items()}
    return json.loads(json.dumps(value, default=lambda v: str(v) if isinstance(v, Decimal) else sorted(v)))
