"""Sending one request to Engage: the session, the headers every call carries, and what a transport failure means."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from .. import __version__
from ..errors import EngageUnavailable
from .answers import Failure

USER_AGENT = f"EngageContactFunctions/{__version__}"


def headers(api_key: str) -> dict[str, str]:
    """Engage requires its User-Agent and a JSON Content-Type on every call (without it, it answers 500)."""
    return {
        "apikey": api_key,
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


class Transport:
    """One HTTP exchange with Engage; a response, or a Failure that says whether Engage may have applied it."""

    def __init__(self, base_url: str, session: requests.Session, observe: Callable[[str, float], None]) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.observe = observe

    def send(
        self,
        method: str,
        path: str,
        *,
        api_key: str,
        timeout: float,
        params: dict[str, str] | None,
        data: Any,
        extra_headers: dict[str, str] | None = None,
    ) -> requests.Response | Failure:
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                headers={**(extra_headers or {}), **headers(api_key)},
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.ConnectTimeout:
            return Failure(EngageUnavailable("Engage could not be reached (connect timeout)"))
        except requests.Timeout:
            return Failure(
                EngageUnavailable(f"Engage did not answer within {timeout:.1f} s"), outcome_unknown=True, in_flight=True
            )
        except requests.ConnectionError:
            return Failure(EngageUnavailable("the connection to Engage failed"), outcome_unknown=True, in_flight=True)
        self.observe("latency", time.monotonic() - started)
        return response
