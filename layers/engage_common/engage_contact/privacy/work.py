"""An erasure, a data request or a shop's erasure, from a checked privacy command to its audit entry.

An erasure: the person is marked erased first (an update queued before it is not applied after it), then,
once updates already under way have had time to finish, Engage is asked as the policy says (its delete
for the contact the key finds; a Member only with `erase-including-members`; a contact gone already is
success), and only then our own records go: a failure anywhere leaves what is needed to try again (the
shop-customer record goes last), and the request is retried and audited, never lost.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from ..domain.contacts import MEMBER, message_group
from ..engage.client import EngageClient
from ..engage.retry import Deadline
from ..errors import ContactNotFound, EngageContactError, policy_of
from .audit import AuditTrail
from .command import DATA_REQUEST, ERASE_SHOP, PrivacyCommand
from .config import PrivacySettings
from .policy import ERASE_MEMBERS, RECORD
from .records import Person, PrivacyRecords, audit_subject, customer_person, digest, lookup_person, plain

DEAD_LETTERS = "not searched: a dead letter is kept by its queue for 14 days at most (docs: purge by message group)"


class Privacy:
    """The erase function's work; its parts given (the composition root builds them)."""

    def __init__(
        self,
        settings: PrivacySettings,
        records: PrivacyRecords,
        audit: AuditTrail | None,
        engage: EngageClient,
        key: Callable[[], bytes],
        s3: Callable[[], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.records = records
        self.audit = audit
        self.engage = engage
        self.key = key
        self.s3 = s3
        self.sleep = sleep
        self.clock = clock

    def handle(self, command: PrivacyCommand, deadline: Deadline) -> dict[str, Any]:
        """Run the command and audit it; a failure is audited too, then raised (retried as its error says)."""
        subject = audit_subject(self.key(), subject_of(command))
        try:
            if command.request == DATA_REQUEST:
                result = self.data_request(command, subject)
            else:
                result = self.erasure(command, deadline)
        except Exception as error:
            name = error.name if isinstance(error, EngageContactError) else "InternalError"
            retried = "retried" if policy_of(error).retryable else "dead-lettered"
            self._audit(subject, command, f"failed: {name} ({retried})")
            raise
        outcome = "partly done" if str(result.get("engage", "")).startswith("not erased") else "done"
        self._audit(subject, command, outcome, **{k: v for k, v in result.items() if k != "request"})
        return {**result, "subject": subject}

    # --- erasure ------------------------------------------------------------------------------------
    def erasure(self, command: PrivacyCommand, deadline: Deadline) -> dict[str, Any]:
        policy = self.policy(command)
        person = self.person(command)
        self.records.complete(person)
        self.mark_and_settle(person, deadline)
        engage = "not asked (record)"
        if policy != RECORD and command.request != ERASE_SHOP:  # a shop's erasure is ours alone, never Engage's
            try:
                engage = self.erase_in_engage(command, person, policy, deadline)
            except EngageContactError as error:
                if policy_of(error).retryable:
                    raise  # tried again as a whole: our records are still there for the next try
                # Engage cannot do it (MultipleMatches, a refusal): ours still go; the audit says what is left
                engage = f"not erased: {error.name}"
        erased = self.records.erase(person)
        return {
            "request": command.request,
            "erasure": policy,
            "engage": engage,
            "recordsErased": erased,
            "deadLetters": DEAD_LETTERS,
        }

    @staticmethod
    def policy(command: PrivacyCommand) -> str:
        """The command's own (a shop's, from the shops document, or a retailer's erase command), else record."""
        return command.erasure if command.erasure is not None else RECORD

    def person(self, command: PrivacyCommand) -> Person:
        person = Person()
        if command.shop is not None:
            return self.records.shop_customers(*command.shop)
        if command.lookup is not None:
            person.merge(lookup_person(command.lookup.key, command.lookup.value))
        if command.contact_id is not None:
            person.contact_ids.add(command.contact_id)
        if command.shop_customer is not None:
            sc = command.shop_customer
            person.merge(self.records.shop_customer(sc.platform, sc.shop, sc.customer_id))
            person.merge(customer_person(sc.platform, sc.shop, sc.customer_id))
        return person

    def mark_and_settle(self, person: Person, deadline: Deadline) -> None:
        """Mark the person erased, then wait until an update that checked just before the mark is done."""
        groups = person.groups | person.contact_ids
        if not groups:
            return
        first = self.records.mark_erased(groups, int(self.clock() * 1000))
        wait = self.settings.settle_seconds - (self.clock() - first / 1000)
        if wait > 0:
            self.sleep(min(wait, max(deadline.remaining() - 30, 0)))

    def erase_in_engage(self, command: PrivacyCommand, person: Person, policy: str, deadline: Deadline) -> str:
        """Engage's delete for the contact(s) the key finds; a Member only when the policy says so."""
        ids = set(person.contact_ids)
        if command.lookup is not None:
            found = self.engage.find_existing(command.lookup, deadline)
            if found:
                ids.add(found)
        person.contact_ids |= ids
        outcomes = [self.delete_one(contact_id, policy, deadline) for contact_id in sorted(ids)]
        return ", ".join(outcomes) or "not found"

    def delete_one(self, contact_id: str, policy: str, deadline: Deadline) -> str:
        try:
            contact = self.engage.get_contact(contact_id, deadline)
        except ContactNotFound:
            return "not found"
        if isinstance(contact, dict) and contact.get("contactType") == MEMBER and policy != ERASE_MEMBERS:
            return "member kept"
        return "deleted" if self.engage.delete_contact(contact_id, "privacy", deadline) else "not found"

    # --- data request -------------------------------------------------------------------------------
    def data_request(self, command: PrivacyCommand, subject: str) -> dict[str, Any]:
        person = self.person(command)
        self.records.complete(person)
        items = [plain(item) for item in self.records.items(person)]
        held = _inventory(items)
        if self.settings.export_bucket and self.s3 is not None:
            at = dt.datetime.now(tz=dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            key = f"{self.settings.export_prefix}{subject}-{at}.json"
            body = json.dumps(
                {"subject": subject, "source": command.source, "requestedAt": at, "items": items},
                indent=1,
                sort_keys=True,
            ).encode()
            encryption = (
                {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.export_kms_key}
                if self.settings.export_kms_key
                else {"ServerSideEncryption": "AES256"}
            )
            self.s3().put_object(
                Bucket=self.settings.export_bucket, Key=key, Body=body, ContentType="application/json", **encryption
            )
            delivered = f"s3://{self.settings.export_bucket}/{key}"
        else:
            delivered = "audit (inventory only: set DATA_REQUEST_BUCKET for the records themselves)"
        return {"request": DATA_REQUEST, "delivered": delivered, "items": len(items), "held": held}

    def _audit(self, subject: str, command: PrivacyCommand, outcome: str, **what: Any) -> None:
        if self.audit is not None:
            self.audit.record(subject, command.request, command.source, outcome, **what)


def subject_of(command: PrivacyCommand) -> str:
    """The key the request names, as one string (its keyed digest is the audit's subject)."""
    if command.shop is not None:
        return f"shop:{digest(*command.shop)}"
    if command.lookup is not None:
        return message_group({"lookup": {command.lookup.key: command.lookup.value}})
    if command.contact_id is not None:
        return command.contact_id
    sc = command.shop_customer
    if sc is None:  # parse_privacy_command refuses such a command: this is a caller's mistake
        raise ValueError("the privacy command names no one (no shop, lookup, contactId or shopCustomer)")
    return f"shop-customer:{digest(sc.platform, sc.shop, sc.customer_id)}"


def _inventory(items: list[dict[str, Any]]) -> str:
    """What kinds of records are held, and how many of each (names only: no value, no key)."""
    kinds: dict[str, int] = {}
    for item in items:
        kind = item["id"].split("#", 1)[0]
        kind = "idempotency" if "idempotency" in kind else kind
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())) or "nothing"
