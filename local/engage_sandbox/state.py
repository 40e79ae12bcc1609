"""What the Engage sandbox remembers: contacts, the request log, faults, rate windows.

The sandbox keeps its own list of Engage's attributes on purpose: it is the
test oracle for the layer, so it must not borrow the layer's catalogue (a
misspelling there would be mirrored here and never caught).
"""

from __future__ import annotations

import copy
import random
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from .rates import peak_per_second

STANDARD_ATTRIBUTES = frozenset(
    {
        "firstName",
        "lastName",
        "email",
        "mobilePhone",
        "socialSecurityNumber",
        "externalId",
        "memberNumber",
        "street",
        "careOf",
        "zipCode",
        "city",
        "country",
        "countryCode",
        "birthDay",
        "gender",
        "store",
        "createdInStore",
        "preferences",
        "consents",
    }
)
PREFERENCE_FIELDS = frozenset({"acceptsEmail", "acceptsSms", "acceptsPostal"})
ROUTES = ("update", "promote", "contactType", "get", "lookup", "create", "bulkCreate", "bulkUpdate", "bulkStatus")
VERSIONS = ("v2", "v3")
# Faults that answer instead of Engage, and faults that let Engage apply the call first.
BEFORE_KINDS = ("status", "hang", "drop")
AFTER_KINDS = ("apply_then_status", "apply_then_hang", "apply_then_drop")
FAULT_KINDS = ("latency", *BEFORE_KINDS, *AFTER_KINDS)
LOOKUP_KEYS = ("email", "mobilePhone", "socialSecurityNumber", "customKey", "any")
KEY_ATTRIBUTES = ("email", "mobilePhone", "socialSecurityNumber", "externalId")

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
SSN_RE = re.compile(r"^(?:[0-9]{2})?[0-9]{6}[-+]?[0-9]{4}$")

DEMO_CONTACTS = (
    {
        "id": "430d3329-7eef-45c0-37f9-ae9300a0dace",
        "contactType": "Member",
        "attributes": {
            "firstName": "Anna",
            "lastName": "Andersson",
            "email": "anna@example.com",
            "mobilePhone": "+46701234567",
            "street": "Storgatan 1",
            "careOf": "Berg",
            "zipCode": "11122",
            "city": "Stockholm",
            "countryCode": "SE",
            "memberNumber": "M1001",
            "preferences": {"acceptsEmail": True, "acceptsSms": False, "acceptsPostal": True},
        },
    },
    {
        "id": "8b1f0c2e-91aa-4d2b-a7c3-0e5d2f6a9b10",
        "contactType": "Contact",
        "attributes": {
            "firstName": "Bertil",
            "lastName": "Berg",
            "email": "bertil@example.com",
            "city": "Göteborg",
            "countryCode": "SE",
            "preferences": {"acceptsEmail": False, "acceptsSms": False, "acceptsPostal": False},
        },
    },
    {
        "id": "c0ffee00-1234-5678-9abc-def012345678",
        "contactType": "Prospect",
        "attributes": {"email": "cecilia@example.com", "firstName": "Cecilia"},
    },
)


def key_value(name: str, value: str) -> str:
    """A key attribute's value as Engage compares it: an email without regard to case, the others exactly."""
    return value.lower() if name == "email" else value


class SandboxError(ValueError):
    """An admin request the sandbox cannot take; answered 400 with this message."""


def new_contact_id() -> str:
    """A GUID-like id that, like Engage's, is not always a valid RFC 4122 UUID."""
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Fault:
    """One injected fault. Fires on every matching call, the next `count`, or a `fraction`."""

    kind: str
    route: str = "*"
    version: str | None = None  # only calls to this API version ("v2" or "v3")
    contact: str | None = None  # only calls about this contact id
    status: int = 503
    count: int | None = None
    fraction: float | None = None
    ms: int = 0
    seconds: float = 30.0
    headers: dict = field(default_factory=dict)
    body: object = None
    code: str | None = None  # an Engage-shaped error body with this errorCode (status faults)
    fired: int = 0

    @classmethod
    def from_json(cls, data: object) -> Fault:
        if not isinstance(data, dict):
            raise SandboxError("a fault is a JSON object")
        unknown = set(data) - {f for f in cls.__dataclass_fields__ if f != "fired"}
        if unknown:
            raise SandboxError(f"unknown fault fields: {sorted(unknown)}")
        fault = cls(**data)
        if fault.kind not in FAULT_KINDS:
            raise SandboxError(f"fault kind must be one of {FAULT_KINDS}")
        if fault.route != "*" and fault.route not in ROUTES:
            raise SandboxError(f"fault route must be '*' or one of {ROUTES}")
        if fault.version is not None and fault.version not in VERSIONS:
            raise SandboxError(f"fault version must be one of {VERSIONS}")
        if fault.count is not None and (not isinstance(fault.count, int) or fault.count < 0):
            raise SandboxError("count must be a whole number >= 0")
        if fault.fraction is not None and not 0 <= fault.fraction <= 1:
            raise SandboxError("fraction must be between 0 and 1")
        if not isinstance(fault.status, int) or not 100 <= fault.status <= 599:
            raise SandboxError("status must be an HTTP status")
        return fault

    def to_json(self) -> dict:
        return asdict(self)


class SandboxState:
    """All of the sandbox's memory, behind one lock."""

    def __init__(
        self,
        api_keys=("sandbox-api-key",),
        rate_limit: float = 200.0,
        retry_after: float | None = None,
        custom_attributes=("favoriteStore", "shoeSize"),
        contact_types=("Member", "Contact", "Prospect"),
        member_required=("email",),
        custom_key: str = "memberNumber",
        key_attribute: str = "email",
        latency_ms: float = 0,
        bulk_delay_ms: float = 200,
        demo: bool = True,
        seed: int | None = None,
    ):
        if key_attribute not in KEY_ATTRIBUTES:
            raise SandboxError(f"the key attribute is one of {KEY_ATTRIBUTES}")
        self.lock = threading.Lock()
        self.shutdown = threading.Event()
        self.api_keys = set(api_keys)
        self.rate_limit = rate_limit
        self.retry_after = retry_after
        self.custom_attributes = set(custom_attributes)
        self.contact_types = tuple(contact_types)
        self.member_required = tuple(member_required)
        self.custom_key = custom_key
        self.key_attribute = key_attribute  # the tenant's key: what a create must carry and may not repeat
        self.latency_ms = latency_ms  # added to every Engage call, after it is logged and counted
        self.bulk_delay_ms = self.bulk_delay_default = bulk_delay_ms  # a bulk batch is processed this long after
        # it is taken (< 0: never); a reset restores it
        self.default_contact_type = "Member"  # what a bulk request without contactType makes (the tenant's default)
        self.batches: dict[str, dict] = {}  # bulk batches by id (local.engage_sandbox.bulk)
        self.being_created: dict[str, str] = {}  # key value (as compared) -> the pending bulk batch creating it
        self.rng = random.Random(seed)
        self.contacts: dict[str, dict] = {}
        self.keys: dict[tuple[str, str], set[str]] = {}  # (attribute, value as compared) -> contact ids
        self.requests: list[dict] = []
        self.deleted: list[dict] = []  # contacts deleted through the API: id, contactType, source
        self.faults: list[Fault] = []
        self.windows: dict[str, deque] = {}
        self.faults_fired = 0
        self.rate_limited = 0
        if demo:
            self.seed_demo()

    # --- contacts -----------------------------------------------------------
    def seed_demo(self) -> None:
        for contact in DEMO_CONTACTS:
            self.add_contact(copy.deepcopy(contact))

    def add_contact(self, data: object) -> str:
        if not isinstance(data, dict):
            raise SandboxError("a contact is a JSON object")
        unknown = set(data) - {"id", "contactType", "attributes"}
        if unknown:
            raise SandboxError(f"unknown contact fields: {sorted(unknown)}")
        contact_id = data.get("id") or new_contact_id()
        contact_type = data.get("contactType", "Contact")
        attributes = data.get("attributes", {})
        if not isinstance(contact_id, str) or not isinstance(attributes, dict):
            raise SandboxError("id is a string and attributes an object")
        if contact_type not in self.contact_types:
            raise SandboxError(f"contactType must be one of {self.contact_types}")
        with self.lock:
            if contact_id in self.contacts:
                raise SandboxError(f"contact {contact_id} exists already")
            self.contacts[contact_id] = {
                "id": contact_id,
                "contactType": contact_type,
                "attributes": copy.deepcopy(attributes),
                "promotions": 0,
                "created": None,
            }
            self.index(self.contacts[contact_id])
        return contact_id

    # --- the key index: a lookup or a create's duplicate check without a walk over every contact ----------
    def _keys_of(self, contact: dict) -> list[tuple[str, str]]:
        attributes = contact["attributes"]
        return [
            (name, key_value(name, attributes[name]))
            for name in (*KEY_ATTRIBUTES, self.custom_key)
            if isinstance(attributes.get(name), str) and attributes[name]
        ]

    def index(self, contact: dict) -> None:
        """File a contact under its key attributes' values (call with the lock held, after a write)."""
        for key in self._keys_of(contact):
            self.keys.setdefault(key, set()).add(contact["id"])

    def unindex(self, contact: dict) -> None:
        """Take a contact out of the index (call with the lock held, before its attributes change)."""
        for key in self._keys_of(contact):
            ids = self.keys.get(key)
            if ids is not None:
                ids.discard(contact["id"])
                if not ids:
                    del self.keys[key]

    def with_value(self, name: str, value: str) -> list[dict]:
        """The contacts whose attribute `name` holds `value` (email compared without case); lock held."""
        ids = self.keys.get((name, key_value(name, value)), ())
        return [self.contacts[i] for i in ids if i in self.contacts]

    def writable(self, name: str) -> bool:
        return name in STANDARD_ATTRIBUTES or name in self.custom_attributes

    @staticmethod
    def view(contact: dict) -> dict:
        """A contact as Engage answers it: id, contactType and the attributes, flat."""
        return {"id": contact["id"], "contactType": contact["contactType"], **copy.deepcopy(contact["attributes"])}

    def admin_view(self, contact: dict) -> dict:
        """Engage's view plus what the sandbox saw: promotions, and how an API create arrived."""
        created = contact.get("created") or {}
        return {
            **self.view(contact),
            "_promotions": contact["promotions"],
            "_createdVia": created.get("version"),
            "_source": created.get("source"),
            "_storeExternalId": created.get("storeExternalId"),
            "_createAsUnapproved": created.get("createAsUnapproved"),
        }

    def list_contacts(self) -> list[dict]:
        with self.lock:
            return [self.admin_view(c) for c in self.contacts.values()]

    def get_contact(self, contact_id: str) -> dict | None:
        with self.lock:
            contact = self.contacts.get(contact_id)
            return self.admin_view(contact) if contact else None

    def existing_contact(self, contact_id: str) -> dict:
        """A contact the caller knows is here (it just added it); KeyError naming the id otherwise."""
        contact = self.get_contact(contact_id)
        if contact is None:
            raise KeyError(f"the sandbox holds no contact {contact_id}")
        return contact

    # --- request log --------------------------------------------------------
    def log_request(self, entry: dict) -> None:
        with self.lock:
            self.requests.append(entry)

    def request_log(self, route: str | None = None, version: str | None = None) -> list[dict]:
        """Every call Engage received, optionally only one route's or one version's.

        Each entry holds `started` (wall clock) and `monotonic` (the moment the request
        arrived, before any latency), so `peak_per_second` and `sustained_rate` can
        count requests the way Engage's rate limit does (entries are in the order they were
        logged, which concurrent requests may make differ from `monotonic` order).
        """
        with self.lock:
            return [
                dict(r)
                for r in self.requests
                if (route is None or r["route"] == route) and (version is None or r.get("version") == version)
            ]

    # --- faults -------------------------------------------------------------
    def add_faults(self, faults: list[Fault]) -> None:
        with self.lock:
            self.faults.extend(faults)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def draw_faults(
        self, route: str, contact_id: str | None = None, version: str | None = None, about_contact: bool = False
    ) -> list[Fault]:
        """The faults that fire on this call (counts are used up as they fire); `about_contact`: only those naming
        this route and this contact (a bulk batch's item)."""
        fired = []
        with self.lock:
            for fault in self.faults:
                if fault.route not in ("*", route) or fault.count == 0:
                    continue
                if about_contact and (fault.route != route or fault.contact is None):
                    continue
                if fault.version is not None and fault.version != version:
                    continue
                if fault.contact is not None and fault.contact != contact_id:
                    continue
                if fault.fraction is not None and self.rng.random() >= fault.fraction:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                fault.fired += 1
                self.faults_fired += 1
                fired.append(fault)
        return fired

    # --- rate limit ---------------------------------------------------------
    def over_rate_limit(self, api_key: str, now: float | None = None) -> bool:
        """Sliding one-second window per API key, counted at `now` (the request's arrival)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            window = self.windows.setdefault(api_key, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.rate_limit:
                self.rate_limited += 1
                return True
            window.append(now)
            return False

    # --- admin --------------------------------------------------------------
    def configure(self, data: object) -> dict:
        if not isinstance(data, dict):
            raise SandboxError("config is a JSON object")
        allowed = {
            "rateLimit",
            "retryAfter",
            "customAttributes",
            "memberRequired",
            "apiKeys",
            "keyAttribute",
            "latencyMs",
            "bulkDelayMs",
        }
        unknown = set(data) - allowed
        if unknown:
            raise SandboxError(f"unknown config fields: {sorted(unknown)}")
        if "keyAttribute" in data and data["keyAttribute"] not in KEY_ATTRIBUTES:
            raise SandboxError(f"keyAttribute must be one of {KEY_ATTRIBUTES}")
        latency = data.get("latencyMs", 0)
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise SandboxError("latencyMs is a number of milliseconds >= 0")
        delay = data.get("bulkDelayMs", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise SandboxError("bulkDelayMs is a number of milliseconds (negative: a batch is never processed)")
        with self.lock:
            if "bulkDelayMs" in data:
                self.bulk_delay_ms = delay
            if "keyAttribute" in data:
                self.key_attribute = data["keyAttribute"]
            if "latencyMs" in data:
                self.latency_ms = latency
            if "rateLimit" in data:
                self.rate_limit = float(data["rateLimit"])
            if "retryAfter" in data:
                self.retry_after = data["retryAfter"]
            if "customAttributes" in data:
                self.custom_attributes = set(data["customAttributes"])
            if "memberRequired" in data:
                self.member_required = tuple(data["memberRequired"])
            if "apiKeys" in data:
                self.api_keys = set(data["apiKeys"])
        return self.config()

    def config(self) -> dict:
        return {
            "rateLimit": self.rate_limit,
            "retryAfter": self.retry_after,
            "customAttributes": sorted(self.custom_attributes),
            "memberRequired": list(self.member_required),
            "contactTypes": list(self.contact_types),
            "keyAttribute": self.key_attribute,
            "latencyMs": self.latency_ms,
            "bulkDelayMs": self.bulk_delay_ms,
        }

    def stats(self) -> dict:
        with self.lock:
            by_route: dict[str, int] = {}
            for r in self.requests:
                by_route[r["route"]] = by_route.get(r["route"], 0) + 1
            return {
                "requests": len(self.requests),
                "byRoute": by_route,
                "faultsFired": self.faults_fired,
                "rateLimited": self.rate_limited,
                "contacts": len(self.contacts),
                "peakPerSecond": peak_per_second(self.requests),
            }

    def reset(self, demo: bool = False) -> None:
        with self.lock:
            self.contacts.clear()
            self.keys.clear()
            self.batches.clear()
            self.being_created.clear()
            self.bulk_delay_ms = self.bulk_delay_default
            self.requests.clear()
            self.deleted.clear()
            self.faults.clear()
            self.windows.clear()
            self.faults_fired = 0
            self.rate_limited = 0
        if demo:
            self.seed_demo()


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make sandbox (python -m local.engage_sandbox), of which this is a part")
