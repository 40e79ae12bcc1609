"""Engage's bulk writes as the sandbox plays them: `POST`/`PATCH /api/{v2,v3}/contacts/bulk` and the batch status.

Documented (Voyado's "Bulk write contacts API"): a JSON array of at most 4,000 contacts; one request
against the rate limit; `contactType` in the query (left out: the tenant's default type, Member here,
Engage's trap again); `avoidTriggeringExport` (it only affects PATCH); creation items need the key
attribute as a single create does. Processed asynchronously.

Not documented, so the sandbox's choice, matching what the layer assumes (docs/design.md, "Bulk writes"):
the request is answered `202 {"batchId": ...}`; an update item names its contact by `contactId`, and
is refused (`ContactTypeMismatch`) when that contact is not of the batch's `contactType`, or by a status
fault on that contact's updates (route `update` with `contact`: a per-contact failure);
`GET .../contacts/bulk/status?batchId=` answers
`{"batchId", "status": "Processing" | "Completed", "total", "succeeded", "failed",
"contacts": [{"index", "contactId"}], "errors": [{"index", "errorCode", "message"}]}`. A batch is
processed `bulkDelayMs` after it was taken (a negative delay: never, a status that never completes);
until then each new key in it is "being created": a single create of it answers 409
`ContactWithKeyIsBeingCreated` and a lookup does not find it yet. Each item is created (or updated)
exactly as a single create (update) would be, so its refusal is the single call's error code.
"""

from __future__ import annotations

import time

from .engage_api import Call, create, error, update
from .state import SandboxState, key_value, new_contact_id

BULK_MAX = 4000


def bulk_create(state: SandboxState, call: Call) -> tuple[int, object]:
    return _take(state, call, "create")


def bulk_update(state: SandboxState, call: Call) -> tuple[int, object]:
    return _take(state, call, "update")


def _take(state: SandboxState, call: Call, kind: str) -> tuple[int, object]:
    items = call.body
    if not isinstance(items, list):
        return error(400, "InvalidJson", "The request body must be a JSON array of contacts")
    if not items:
        return error(400, "NoData", "No contacts in the request")
    if len(items) > BULK_MAX:
        return error(400, "TooManyContacts", f"At most {BULK_MAX} contacts in one bulk request")
    contact_type = call.query.get("contactType") or state.default_contact_type
    if contact_type not in state.contact_types:
        return error(400, "InvalidContactType", f"Unknown contact type: {contact_type!r}")
    batch_id = new_contact_id()
    with state.lock:
        ready = None if state.bulk_delay_ms < 0 else time.monotonic() + state.bulk_delay_ms / 1000
        pending: dict[str, str] = {}
        if kind == "create":
            for item in items:
                value = item.get(state.key_attribute) if isinstance(item, dict) else None
                if isinstance(value, str) and value.strip():
                    pending.setdefault(key_value(state.key_attribute, value), batch_id)
        for key, batch in pending.items():
            state.being_created.setdefault(key, batch)
        state.batches[batch_id] = {
            "kind": kind,
            "items": items,
            "contactType": contact_type,
            "version": call.version,
            "ready": ready,
            "done": False,
            "contacts": [],
            "errors": [],
            "query": dict(call.query),
        }
    return 202, {"batchId": batch_id}


def bulk_status(state: SandboxState, call: Call) -> tuple[int, object]:
    batch_id = call.query.get("batchId")
    with state.lock:
        batch = state.batches.get(batch_id) if batch_id else None
    if batch is None:
        return error(404, "BatchNotFound", "No bulk batch with that id")
    with state.lock:
        total = len(batch["items"])
        answer = {"batchId": batch_id, "status": "Completed" if batch["done"] else "Processing", "total": total}
        if batch["done"]:
            answer.update(
                succeeded=len(batch["contacts"]),
                failed=len(batch["errors"]),
                contacts=list(batch["contacts"]),
                errors=list(batch["errors"]),
            )
    return 200, answer


def settle(state: SandboxState, now: float | None = None) -> None:
    """Process every batch whose time has come (called before each Engage request: time passes for it too)."""
    now = time.monotonic() if now is None else now
    with state.lock:
        due = [
            (b, batch)
            for b, batch in state.batches.items()
            if not batch.get("claimed") and batch["ready"] is not None and batch["ready"] <= now
        ]
        for _, batch in due:
            batch["claimed"] = True  # another request's settle leaves it alone
    for batch_id, batch in due:
        _process(state, batch_id, batch)


def _process(state: SandboxState, batch_id: str, batch: dict) -> None:
    with state.lock:  # its keys are no longer "being created" by it: the single create decides each now
        for key in [k for k, b in state.being_created.items() if b == batch_id]:
            del state.being_created[key]
    for index, item in enumerate(batch["items"]):
        if not isinstance(item, dict):
            batch["errors"].append({"index": index, "errorCode": "InvalidJson", "message": "Not a contact object"})
            continue
        if batch["kind"] == "create":
            body = {**item, "contactType": batch["contactType"]}
            status, answer = create(state, Call(batch["version"], "", body, {}, {}))
        else:
            contact_id = "" if item.get("contactId") is None else str(item["contactId"])
            body = {k: v for k, v in item.items() if k != "contactId"}
            status, answer = _refusal(state, contact_id, batch) or update(
                state, Call(batch["version"], contact_id, body, {}, {})
            )
        if status < 300 and isinstance(answer, dict):
            batch["contacts"].append({"index": index, "contactId": answer["id"]})
        else:
            said = answer if isinstance(answer, dict) else {}
            code = said.get("errorCode") or str(status)
            batch["errors"].append({"index": index, "errorCode": code, "message": said.get("message")})
    with state.lock:
        batch["done"] = True


def _refusal(state: SandboxState, contact_id: object, batch: dict) -> tuple[int, object] | None:
    """Why an update item is refused before it is applied: a status fault on this contact's updates (route
    `update`, `contact` set: a per-contact failure), or a contact of another type than the batch's `contactType`."""
    contact_id = contact_id if isinstance(contact_id, str) else None
    fault = next(
        (
            f
            for f in state.draw_faults("update", contact_id, batch["version"], about_contact=True)
            if f.kind == "status"
        ),
        None,
    )
    if fault is not None:
        return error(fault.status, fault.code or str(fault.status), "Refused (a fault on this contact)")
    with state.lock:
        contact = state.contacts.get(contact_id) if contact_id else None
        if contact is not None and contact["contactType"] != batch["contactType"]:
            return error(400, "ContactTypeMismatch", "The contact is not of the batch's contact type")
    return None


HANDLERS = {"bulkCreate": bulk_create, "bulkUpdate": bulk_update, "bulkStatus": bulk_status}


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make sandbox (python -m local.engage_sandbox), of which this is a part")
