"""A local HTTP server that behaves like Voyado Engage's contact API (v2 and v3).

Start it standalone with `python -m local.engage_sandbox --port 0`, or
in-process with `EngageSandbox().start()`. Admin routes live under `/_sandbox/`.

Engage's side (v2 and v3 share one set of contacts):

- v2: `POST /api/v2/contacts` (create), `POST /api/v2/contacts/{id}` (update),
  `GET /api/v2/contacts/{id}`, `GET /api/v2/contacts/id?{key}=…[&contactType=…]`,
  `POST …/{id}/promoteToMember`, `POST …/{id}/updateContactType?contactTypeId=…`
  (refuses `Member`).
- v3: `POST /api/v3/contacts` (create), `PATCH /api/v3/contacts/{id}` (update),
  `GET /api/v3/contacts/{id}`, `GET /api/v3/contacts/id?…`,
  `POST …/{id}/updateContactType?contactTypeId=…` (here `Member` works and counts
  as a promotion); `promoteToMember` is 404 in v3.
- Update, both versions: sparse; a field present is written even when `""` or
  `null`; unknown names and `contactType` are dropped silently.
- Create, both versions: body = attributes + `contactType` + the tenant's key
  attribute (config `keyAttribute`, default `email`). `contactType` left out or
  `null` silently makes a Member; an unknown type is 400 `InvalidContactType`; no
  key value is 400 `MissingKeyAttribute`; a contact holding that key already is
  409 `ApprovedContactWithKeyExists`; unknown names are dropped and empty values
  stored, as update does; answers 201 with the contact and its new GUID-like id.
  `source`, `storeExternalId`, `createAsUnapproved` (`true`/`false`, else 400) are
  HEADERS in v2 and QUERY parameters in v3; the other place is ignored. The admin
  view records them as `_source`, `_storeExternalId`, `_createAsUnapproved`
  (strings as received, `None` when unset) and `_createdVia` (`v2`/`v3`).

Admin (`/_sandbox/…`; the same through `sandbox.state`):

- `contacts` (POST seeds, GET lists; `contacts/{id}` adds `_promotions` and the
  create fields above), `reset` (keeps the config), `stats` (counts and
  `peakPerSecond`).
- `config` (GET, POST): `rateLimit` (per key per sliding second, then 429),
  `retryAfter`, `customAttributes`, `memberRequired`, `apiKeys`, `keyAttribute`,
  `latencyMs` (added to every Engage call; rate counting uses arrival time).
- `requests[?route=…&version=…]` / `state.request_log(route, version)`: every
  Engage call in arrival order with `started` (wall clock) and `monotonic` (when
  it arrived, before any latency), `time` (= `started`), `version`, `method`,
  `path`, `query`, `headers` (as received, `apikey` included), `body`, `route`,
  `contactId` (the new id for a create), `status` and `errorCode` (what Engage's
  logic answered, whatever a fault made the client see), `applied`.
- `rates[?route=…&version=…]`: `requests`, `peakPerSecond`, `sustainedRate`; in
  Python `peak_per_second(log)` (most requests started in any one-second sliding
  window) and `sustained_rate(log, start=None, end=None)`.
- `faults` (POST adds one or a list, GET lists, DELETE clears). A fault is
  `{"kind", "route", "version", "contact", "status", "count", "fraction", "ms",
  "seconds", "headers", "body", "code"}`; `route` is `*` or one of `update`,
  `promote`, `contactType`, `get`, `lookup`, `create` (the same names in v2 and
  v3; `version` narrows to one). Kinds: `latency` (`ms`); `status`, `hang`,
  `drop` answer instead of Engage (nothing applied); `apply_then_status`,
  `apply_then_hang`, `apply_then_drop` let Engage apply a successful call and
  then answer `status`, hang `seconds` then close, or close at once: an outcome
  the caller cannot know. `code` gives a status fault Engage's error body, e.g.
  `{"kind": "status", "route": "create", "status": 409,
  "code": "ContactWithKeyIsBeingCreated", "count": 1}` or, a contact that exists
  but is not found yet, `{"kind": "status", "route": "lookup", "status": 404,
  "code": "ContactNotFound", "count": 2}`.
"""

from .rates import peak_per_second, sustained_rate
from .server import EngageSandbox
from .state import DEMO_CONTACTS, SandboxState

__all__ = ["DEMO_CONTACTS", "EngageSandbox", "SandboxState", "peak_per_second", "sustained_rate"]
