"""Engage's contact API (v2): the only code that knows its paths, headers and answers."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .command import MEMBER, Lookup, check_contact_id, refuse_member
from .errors import (
    ContactNotFound,
    EngageAuthError,
    EngageContactError,
    EngageRateLimited,
    EngageRejected,
    EngageUnavailable,
    InvalidRequest,
    MultipleMatches,
    NoData,
)

if TYPE_CHECKING:
    from .credentials import ApiKeySource

USER_AGENT = f"EngageContactFunctions/{__version__}"
MIN_ATTEMPT_SECONDS = 0.25  # no attempt is started with less time than this left
ERROR_BODY_MAX = 2000


def new_session(pool_size: int = 16, base_url: str | None = None) -> requests.Session:
    """One keep-alive session per container; its pool is sized for concurrent use.

    The environment's proxy and CA settings are read once here, not on every request
    (requests would scan the whole environment per call: about a millisecond each).
    """
    session = requests.Session()
    if base_url is not None:
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.trust_env = False
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class Deadline:
    """The time this invocation has left for Engage; built from the Lambda context when there is one."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    @classmethod
    def from_context(cls, context: Any, reserve_seconds: float = 1.0, default_seconds: float = 30.0) -> Deadline:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        seconds = remaining() / 1000 if callable(remaining) else default_seconds
        return cls(max(seconds - reserve_seconds, 0.0))

    def remaining(self) -> float:
        return max(self._end - self._clock(), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries within one invocation: jittered exponential backoff, Retry-After honoured."""

    max_attempts: int = 4
    base_seconds: float = 0.2
    cap_seconds: float = 4.0

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1)))


class RequestPacer:
    """At most `rate` requests per second from this container (shared by its threads), after a burst.

    A generic cell-rate algorithm: in any one-second window at most `rate + burst` requests start, and a
    whole SQS batch (10 records) can start at once.
    """

    def __init__(self, rate: float, burst: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self.credit = max(burst - 1, 0) * self.interval
        self.clock = clock
        self._due = 0.0  # when the next request is due if none had been sent early
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait before using it."""
        with self._lock:
            now = self.clock()
            due = max(self._due, now)
            self._due = due + self.interval
            return max(due - now - self.credit, 0.0)


@dataclass
class Answer:
    status: int  # Engage's status, or CHECKED when a GET showed the work done already
    body: Any  # decoded JSON, or None when Engage sent no body


CHECKED = 0  # the status of an answer made up from the GET that checked an unknown outcome


@dataclass(frozen=True)
class Promotion:
    contact: Any
    already_member: bool  # the contact was found a Member: the promotion's attributes are not written


def _decode(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _error_details(response: requests.Response) -> dict[str, Any]:
    """Engage's error body, read defensively: its shape is not documented."""
    details: dict[str, Any] = {"status": response.status_code}
    body = _decode(response)
    if isinstance(body, dict):
        kept = {k: body[k] for k in ("errorCode", "message", "messageDetails", "detail", "statusCode") if k in body}
        details["engage"] = kept or {k: body[k] for k in list(body)[:10]}
    elif response.content:
        details["engage"] = {"text": response.text[:ERROR_BODY_MAX]}
    return details


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough to fall back on our own backoff


class EngageClient:
    def __init__(
        self,
        base_url: str,
        api_key: ApiKeySource,
        timeout_seconds: float,
        session: requests.Session | None = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        observe: Callable[[str, float], None] | None = None,
        pacer: RequestPacer | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_seconds = timeout_seconds
        self.session = session or new_session()
        self.retry = retry
        self.sleep = sleep
        self.retries = 0  # retries made by this client, for metrics and benchmarks
        self.observe = observe or (lambda name, value: None)  # ("latency", seconds) and ("retry", 1)
        self.pacer = pacer

    # --- the contract's calls ---------------------------------------------------
    def update_contact(self, contact_id: str, payload: dict[str, Any], deadline: Deadline) -> Any:
        """POST only the attributes to change; answers the contact's new data."""
        if not payload:
            raise NoData("nothing to send to Engage")
        return self._call("POST", self._contact_path(contact_id), deadline, json_body=payload).body

    def promote_to_member(self, contact_id: str, payload: dict[str, Any], deadline: Deadline) -> Promotion:
        """Promote to Member; no one is promoted twice.

        A contact that is a Member already (Engage refuses the promotion, or the GET made before a retry
        shows a Member) is answered `already_member`: the promotion's attributes were not written by it.
        """
        path = self._contact_path(contact_id, "promoteToMember")

        def promoted_already() -> Answer | None:
            contact = self.get_contact(contact_id, deadline, attempts=1)
            return Answer(CHECKED, contact) if _is_member(contact) else None

        try:
            answer = self._call("POST", path, deadline, json_body=payload, check_before_retry=promoted_already)
        except EngageRejected:
            # Engage refuses to promote a Member: confirm with a GET and call it the success it is.
            contact = self.get_contact(contact_id, deadline, attempts=1)
            if _is_member(contact):
                return Promotion(contact, already_member=True)
            raise
        return Promotion(answer.body, already_member=answer is not None and answer.status == CHECKED)

    def change_contact_type(self, contact_id: str, contact_type_id: str, deadline: Deadline) -> Any:
        """Change the contact type; never to Member, which only promote can do."""
        refuse_member(contact_type_id)
        path = self._contact_path(contact_id, "updateContactType")
        return self._call("POST", path, deadline, params={"contactTypeId": contact_type_id}).body

    def get_contact(self, contact_id: str, deadline: Deadline, attempts: int | None = None) -> Any:
        return self._call("GET", self._contact_path(contact_id), deadline, attempts=attempts).body

    def find_contact_id(self, lookup: Lookup, deadline: Deadline) -> str:
        """The contactId for a lookup; ContactNotFound or MultipleMatches when it is not exactly one."""
        params = {lookup.key: lookup.value}
        if lookup.contact_type:
            params["contactType"] = lookup.contact_type
        answer = self._call("GET", "/api/v2/contacts/id", deadline, params=params)
        try:
            return check_contact_id(answer.body, "Engage's lookup answer")
        except InvalidRequest as exc:
            raise EngageRejected("Engage answered the lookup with something that is not a contact id") from exc

    # --- plumbing ---------------------------------------------------------------
    @staticmethod
    def _contact_path(contact_id: str, action: str | None = None) -> str:
        path = f"/api/v2/contacts/{quote(check_contact_id(contact_id), safe='')}"
        return f"{path}/{action}" if action else path

    def _headers(self, key: str) -> dict[str, str]:
        return {
            "apikey": key,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _call(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        attempts: int | None = None,
        check_before_retry: Callable[[], Answer | None] | None = None,
    ) -> Answer:
        max_attempts = attempts or self.retry.max_attempts
        data = json.dumps(json_body, ensure_ascii=False).encode() if json_body is not None else None
        key = self.api_key.get()
        refreshed_key = False
        attempt = 0
        while True:
            attempt += 1
            timeout = min(self.timeout_seconds, deadline.remaining())
            if timeout < MIN_ATTEMPT_SECONDS:
                raise EngageUnavailable("no time left in this invocation to call Engage")
            self._pace(deadline)
            outcome_unknown = False
            started = time.monotonic()
            try:
                response = self.session.request(
                    method, self.base_url + path, params=params, data=data,
                    headers=self._headers(key), timeout=timeout, allow_redirects=False,
                )  # fmt: skip
            except requests.ConnectTimeout:
                failure: EngageContactError = EngageUnavailable("Engage could not be reached (connect timeout)")
            except requests.Timeout:
                failure, outcome_unknown = EngageUnavailable(f"Engage did not answer within {timeout:.1f} s"), True
            except requests.ConnectionError:
                failure, outcome_unknown = EngageUnavailable("the connection to Engage failed"), True
            else:
                self.observe("latency", time.monotonic() - started)
                status = response.status_code
                if 200 <= status < 300:
                    return Answer(status, _decode(response))
                if status in (401, 403):
                    if refreshed_key:
                        raise EngageAuthError(f"Engage refused the API key ({status})", _error_details(response))
                    key, refreshed_key = self.api_key.get(refresh=True), True  # the key may have been rotated
                    attempt -= 1
                    continue
                if status == 429:
                    failure = EngageRateLimited(
                        "Engage's rate limit was hit", _error_details(response), retry_after=_retry_after(response)
                    )
                elif status >= 500 or status < 200 or 300 <= status < 400:
                    failure, outcome_unknown = EngageUnavailable(
                        f"Engage answered {status}", _error_details(response)), True  # fmt: skip
                else:
                    raise _client_error(response)
            if attempt >= max_attempts:
                raise failure
            wait = failure.retry_after if failure.retry_after is not None else self.retry.backoff(attempt)
            if wait + MIN_ATTEMPT_SECONDS > deadline.remaining():
                raise failure
            self.sleep(wait)
            self.retries += 1
            self.observe("retry", 1)
            if outcome_unknown and check_before_retry is not None:
                try:
                    done = check_before_retry()
                except EngageContactError:
                    raise failure from None  # cannot tell whether it was applied: do not send it blind
                if done is not None:
                    return done

    def _pace(self, deadline: Deadline) -> None:
        """Keep this container under its share of Engage's rate guidance."""
        if self.pacer is None:
            return
        wait = self.pacer.reserve()
        if wait + MIN_ATTEMPT_SECONDS > deadline.remaining():
            raise EngageRateLimited("this container's request budget toward Engage is used up for now", retry_after=1)
        if wait > 0:
            self.sleep(wait)


def _is_member(contact: Any) -> bool:
    return isinstance(contact, dict) and contact.get("contactType") == MEMBER


def _client_error(response: requests.Response) -> EngageContactError:
    details = _error_details(response)
    code = details.get("engage", {}).get("errorCode")
    status = response.status_code
    if status == 404:
        return ContactNotFound("Engage has no such contact", details)
    if status == 409 and code == "MultipleMatches":
        return MultipleMatches("the lookup matched several contacts", details)
    if status == 400 and code == "NoData":
        return NoData("Engage found nothing to update", details)
    return EngageRejected(f"Engage refused the request ({status}{' ' + code if code else ''})", details)
