"""The calls the contract makes of Engage (API v2 or v3, see `versions`), each a few lines over one retrying `_call`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from ..domain.contacts import MEMBER, Lookup, check_contact_id, is_contact_id, refuse_member
from ..errors import (
    ContactNotFound,
    EngageAuthError,
    EngageContactError,
    EngageRejected,
    EngageUnavailable,
    InvalidRequest,
    NoData,
)
from ..http_session import new_session
from .answers import (
    CHECKED,
    MAY_STILL_LAND,
    BulkStatus,
    EngageReply,
    Failure,
    classify,
    error_details,
    is_auth_refusal,
    read_batch_id,
    read_bulk_status,
)
from .pacing import RateBudget, wait_for_turn
from .retry import MIN_ATTEMPT_SECONDS, Deadline, RetryPolicy
from .transport import Transport
from .versions import BULK_MAX, DEFAULT_VERSION, api_version


class ApiKey(Protocol):
    """Where the Engage key comes from: read once, read again (`refresh`) when Engage refuses it."""

    def get(self, *, refresh: bool = False) -> str: ...


@dataclass(frozen=True)
class Promotion:
    contact: Any
    already_member: bool  # the contact was found a Member: the promotion's attributes are not written


@dataclass(frozen=True)
class CreateOutcome:
    """What became of a create: the contact made, the one its key finds after a lost answer, or a key taken."""

    contact_id: str | None  # None: Engage answered 409, a contact with that key exists or is being created
    contact: Any = None  # Engage's answer to the create
    created: bool = False  # Engage answered this create 201


class EngageClient:
    def __init__(
        self,
        base_url: str,
        api_key: ApiKey,
        timeout_seconds: float,
        session: requests.Session | None = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        observe: Callable[[str, float], None] | None = None,
        budget: RateBudget | None = None,
        version: str = DEFAULT_VERSION,
    ) -> None:
        self.api_key = api_key
        self.timeout_seconds = timeout_seconds
        self.retry = retry
        self.sleep = sleep
        self.observe = observe or (lambda name, value: None)  # ("latency", s), ("retry", 1), ("turn_missed", n)
        self.transport = Transport(base_url, session or new_session(), self.observe)
        self.budget = budget
        self.api = api_version(version)  # the only place the API version is known: paths, methods, promote

    # --- the contract's calls ---------------------------------------------------
    def update_contact(self, contact_id: str, payload: dict[str, Any], deadline: Deadline) -> Any:
        """POST (v2) or PATCH (v3) only the attributes to change; answers the contact's new data."""
        if not payload:
            raise NoData("nothing to send to Engage")
        path = self.api.contact_path(contact_id)
        return self._call(self.api.update_method, path, deadline, json_body=payload).body

    def promote_to_member(self, contact_id: str, payload: dict[str, Any], deadline: Deadline) -> Promotion:
        """Promote to Member; no one is promoted twice.

        A contact that is a Member already (Engage refuses the promotion, or the GET made before a retry
        shows a Member) is answered `already_member`: the promotion's attributes were not written by it.
        v3 has no promoteToMember: see `_promote_by_type_change`.
        """
        if self.api.promotes_by_type_change:
            return self._promote_by_type_change(contact_id, payload, deadline)
        path = self.api.contact_path(contact_id, "promoteToMember")
        return self._promote(contact_id, path, deadline, json_body=payload)

    def _promote_by_type_change(self, contact_id: str, payload: dict[str, Any], deadline: Deadline) -> Promotion:
        """v3: a Member already is answered as such, untouched; else the attributes by an update, then the type.

        The update is skipped when there is nothing to send. If the type change then fails, the attributes
        stay written (the error says `attributesWritten`); sending the whole promotion again is safe.
        """
        contact = self.get_contact(contact_id, deadline)
        if _is_member(contact):
            return Promotion(contact, already_member=True)
        if payload:
            self.update_contact(contact_id, payload, deadline)
        path = self.api.contact_path(contact_id, "updateContactType")
        try:
            promotion = self._promote(contact_id, path, deadline, params={"contactTypeId": MEMBER})
        except EngageContactError as exc:
            exc.details["attributesWritten"] = bool(payload)
            raise
        # Not a Member a moment ago, and its attributes are written: whatever the check saw, not "already".
        return Promotion(promotion.contact, already_member=False)

    def _promote(self, contact_id: str, path: str, deadline: Deadline, **request: Any) -> Promotion:
        """The promoting call, checked with a GET before it is sent again; a refusal of a Member is a success."""

        def promoted_already() -> EngageReply | None:
            contact = self.get_contact(contact_id, deadline, attempts=1)
            return EngageReply(CHECKED, contact) if _is_member(contact) else None

        try:
            answer = self._call("POST", path, deadline, check_before_retry=promoted_already, **request)
        except EngageRejected:
            # Engage refuses to promote a Member: confirm with a GET and call it the success it is.
            contact = self.get_contact(contact_id, deadline, attempts=1)
            if _is_member(contact):
                return Promotion(contact, already_member=True)
            raise
        return Promotion(answer.body, already_member=answer.status == CHECKED)

    def change_contact_type(self, contact_id: str, contact_type_id: str, deadline: Deadline) -> Any:
        """Change the contact type; never to Member, which only promote can do."""
        refuse_member(contact_type_id)
        path = self.api.contact_path(contact_id, "updateContactType")
        return self._call("POST", path, deadline, params={"contactTypeId": contact_type_id}).body

    def create_contact(
        self, body: dict[str, Any], options: Mapping[str, str], key: Lookup, deadline: Deadline
    ) -> CreateOutcome:
        """Create a contact; one key, one contact.

        A create whose outcome is unknown is looked up by `key` before it is ever sent again; a 409
        (ApprovedContactWithKeyExists, ContactWithKeyIsBeingCreated) is answered as a key taken.
        """
        params, headers = self.api.create_options(dict(options))  # v2: headers; v3: query parameters

        def created_already() -> EngageReply | None:
            contact_id = self.find_existing(key, deadline)
            return EngageReply(CHECKED, contact_id) if contact_id else None

        try:
            answer = self._call(
                "POST",
                self.api.contacts_path,
                deadline,
                params=params or None,
                headers=headers or None,
                json_body=body,
                check_before_retry=created_already,
            )
        except EngageRejected as exc:
            if exc.details.get("status") == 409:
                return CreateOutcome(None)
            raise
        if answer.status == CHECKED:
            return CreateOutcome(answer.body)
        new_id = answer.body.get("id") if isinstance(answer.body, dict) else None
        if not is_contact_id(new_id):
            raise EngageRejected("Engage answered the create without a contact id")
        return CreateOutcome(new_id, answer.body, created=True)

    def delete_contact(self, contact_id: str, source: str | None, deadline: Deadline) -> bool:
        """DELETE the contact (Voyado's documented delete, v2 and v3; `source` says why); True when Engage deleted
        it, False when it had no such contact (gone already: an erasure's success). Engage soft-deletes: the
        contact can be restored by Voyado for a grace period, then its personal data is erased."""
        params, headers = self.api.delete_options(source)
        try:
            self._call(
                "DELETE", self.api.contact_path(contact_id), deadline, params=params or None, headers=headers or None
            )
        except ContactNotFound:
            return False
        return True

    def find_existing(self, key: Lookup, deadline: Deadline) -> str | None:
        """The contactId a key finds now, in one try; None when Engage finds no one."""
        try:
            return self.find_contact_id(key, deadline, attempts=1)
        except ContactNotFound:
            return None

    def get_contact(self, contact_id: str, deadline: Deadline, attempts: int | None = None) -> Any:
        return self._call("GET", self.api.contact_path(contact_id), deadline, attempts=attempts).body

    def find_contact_id(self, lookup: Lookup, deadline: Deadline, attempts: int | None = None) -> str:
        """The contactId for a lookup; ContactNotFound or MultipleMatches when it is not exactly one."""
        params = {lookup.key: lookup.value}
        if lookup.contact_type:
            params["contactType"] = lookup.contact_type
        answer = self._call("GET", self.api.lookup_path, deadline, params=params, attempts=attempts)
        try:
            return check_contact_id(answer.body, "Engage's lookup answer")
        except InvalidRequest as exc:
            raise EngageRejected("Engage answered the lookup with something that is not a contact id") from exc

    # --- bulk writes (asynchronous: a batch id now, each contact's outcome from its status later) ---------------
    def bulk_create(self, items: list[dict[str, Any]], contact_type: str, deadline: Deadline) -> str:
        """POST up to BULK_MAX new contacts (each with the key attribute); the batch id to read the status by.

        `contactType` is always sent: left out, Engage would use the tenant's default type. A 429 is tried
        again (Engage took nothing); any other failure is raised at once and never sent blind again (the
        batch may have been taken: the caller finds out per contact, looking each up before creating it).
        """
        return self._bulk("POST", items, {"contactType": contact_type}, deadline)

    def bulk_update(
        self,
        items: list[dict[str, Any]],
        deadline: Deadline,
        avoid_triggering_export: bool = False,
        contact_type: str | None = None,
    ) -> str:
        """PATCH up to BULK_MAX existing contacts (each with its `contactId` and only what changes); the batch id.

        `contact_type`: the type the contacts have (Voyado: left out, the tenant's default type is used), sent
        whenever it is known; the same retry rules as `bulk_create`."""
        params = {"avoidTriggeringExport": "true"} if avoid_triggering_export else {}
        if contact_type:
            params["contactType"] = contact_type
        return self._bulk("PATCH", items, params, deadline)

    def bulk_status(self, batch_id: str, keys: list[str | None], deadline: Deadline) -> BulkStatus:
        """A bulk batch's status, read defensively (its shape is not documented); `keys`: each item's key value."""
        answer = self._call("GET", self.api.bulk_status_path, deadline, params={"batchId": batch_id})
        return read_bulk_status(answer.body, keys)

    def _bulk(self, method: str, items: list[dict[str, Any]], params: dict[str, str], deadline: Deadline) -> str:
        if not items or len(items) > BULK_MAX:
            raise InvalidRequest(f"a bulk request holds 1 to {BULK_MAX} contacts, not {len(items)}")

        def unknown() -> EngageReply | None:
            raise EngageUnavailable("the bulk request's outcome is unknown")  # never sent blind a second time

        answer = self._call(
            method, self.api.bulk_path, deadline, params=params or None, json_body=items, check_before_retry=unknown
        )
        batch_id = read_batch_id(answer.body)
        if batch_id is None:
            raise EngageUnavailable("Engage answered the bulk request without a batch id", {"status": answer.status})
        return batch_id

    # --- one call, tried again as the retry policy allows -----------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        attempts: int | None = None,
        check_before_retry: Callable[[], EngageReply | None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> EngageReply:
        """Send until an answer, an error retrying cannot mend, or no attempt or time is left.

        A try whose outcome is unknown is checked (`check_before_retry`) before it is sent again.
        """
        data = json.dumps(json_body, ensure_ascii=False, allow_nan=False).encode() if json_body is not None else None
        attempt, in_flight = 0, False
        while True:
            attempt += 1
            outcome = self._attempt(method, path, deadline, params, data, headers)
            if isinstance(outcome, EngageReply):
                return outcome
            in_flight = in_flight or outcome.in_flight
            wait = self.retry.wait_before_next(attempt, outcome.error.retry_after, deadline, attempts)
            if wait is None:
                if in_flight:  # a try that got no answer may still land: the contact's next write must wait for it
                    outcome.error.details[MAY_STILL_LAND] = True
                raise outcome.error
            self.sleep(wait)
            self.observe("retry", 1)
            if outcome.outcome_unknown and check_before_retry is not None:
                done = self._check(check_before_retry, outcome)
                if done is not None:
                    return done

    def _attempt(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        params: dict[str, str] | None,
        data: bytes | None,
        headers: dict[str, str] | None = None,
    ) -> EngageReply | Failure:
        """One try; a refused key is read again once (it may have been rotated) and the try repeated."""
        for refreshed in (False, True):
            timeout = min(self.timeout_seconds, deadline.remaining())
            if timeout < MIN_ATTEMPT_SECONDS:
                raise EngageUnavailable("no time left in this invocation to call Engage")
            self._pace(deadline)
            key = self.api_key.get(refresh=refreshed)
            response = self.transport.send(
                method, path, api_key=key, timeout=timeout, params=params, data=data, extra_headers=headers
            )
            if isinstance(response, Failure):
                return response
            if not is_auth_refusal(response):
                return classify(response)
            refused = response
        raise EngageAuthError(f"Engage refused the API key ({refused.status_code})", error_details(refused))

    @staticmethod
    def _check(check_before_retry: Callable[[], EngageReply | None], failure: Failure) -> EngageReply | None:
        try:
            return check_before_retry()
        except EngageContactError:
            raise failure.error from None  # cannot tell whether it was applied: do not send it blind

    def _pace(self, deadline: Deadline) -> None:
        """Wait for this request's turn in the deployment's one rate budget (EngageRateLimited if too far)."""
        if self.budget is None:
            return
        missed = wait_for_turn(self.budget, deadline.turn_within, self.sleep)
        if missed:
            self.observe("turn_missed", missed)


def _is_member(contact: Any) -> bool:
    return isinstance(contact, dict) and contact.get("contactType") == MEMBER
