"""The sandbox's request log counts requests per second the way Engage's rate limit does."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from local.engage_sandbox import peak_per_second, sustained_rate
from local.engage_sandbox.rates import busiest_second

from .test_sandbox import ANNA, HEADERS


def get_anna(http, sandbox):
    return http.get(f"{sandbox.url}/api/v2/contacts/{ANNA}", headers=HEADERS)


# --- the helpers, on timestamps a test chooses ------------------------------------------------


def test_peak_counts_a_sliding_second_not_calendar_seconds():
    # Three in each calendar second, but all six within 0.7 s of each other.
    assert peak_per_second([0.6, 0.7, 0.8, 1.1, 1.2, 1.3]) == 6


def test_peak_does_not_count_a_request_exactly_one_second_later_in_the_same_window():
    assert peak_per_second([0.0, 0.5, 1.0, 1.5]) == 2
    assert busiest_second([0.0, 0.5, 1.0, 1.05, 1.5, 1.7]) == (4, 1.0)  # and when the busiest second starts
    assert busiest_second([]) == (0, None)


def test_peak_takes_log_entries_in_any_order():
    entries = [{"monotonic": t} for t in (5.0, 0.1, 0.2, 5.5, 0.3, 5.9, 5.95)]
    assert peak_per_second(entries) == 4
    assert peak_per_second([]) == 0


def test_sustained_rate_between_the_first_and_the_last_request():
    assert sustained_rate([i / 10 for i in range(21)]) == pytest.approx(10.0)
    assert sustained_rate([3.0]) == 0.0 and sustained_rate([]) == 0.0


def test_sustained_rate_over_a_given_span():
    times = [i / 10 for i in range(10)]  # ten requests in the first second, none after
    assert sustained_rate(times, start=0.0, end=2.0) == pytest.approx(5.0)
    assert sustained_rate(times, start=1.0, end=2.0) == 0.0


# --- the log, over HTTP ------------------------------------------------------------------------


def test_the_log_records_when_each_request_arrived(sandbox, http):
    before_wall, before = time.time(), time.monotonic()
    get_anna(http, sandbox)
    after = time.monotonic()
    (entry,) = http.get(f"{sandbox.url}/_sandbox/requests").json()
    assert before <= entry["monotonic"] <= after
    assert before_wall - 1 <= entry["started"] <= time.time() + 1 and entry["time"] == entry["started"]


def test_the_arrival_is_logged_before_the_latency(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/config", json={"latencyMs": 150})
    assert get_anna(http, sandbox).status_code == 200
    answered = time.monotonic()
    (entry,) = sandbox.state.request_log()
    assert answered - entry["monotonic"] >= 0.15


def test_latency_setting_delays_every_call_until_set_back(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/config", json={"latencyMs": 100})
    for _ in range(2):
        started = time.monotonic()
        assert get_anna(http, sandbox).status_code == 200
        assert time.monotonic() - started >= 0.1
    assert http.get(f"{sandbox.url}/_sandbox/config").json()["latencyMs"] == 100
    http.post(f"{sandbox.url}/_sandbox/config", json={"latencyMs": 0})
    assert http.get(f"{sandbox.url}/_sandbox/config").json()["latencyMs"] == 0


def test_a_negative_latency_is_refused(sandbox, http):
    response = http.post(f"{sandbox.url}/_sandbox/config", json={"latencyMs": -5})
    assert response.status_code == 400 and "latencyMs" in response.json()["error"]


def test_the_log_holds_method_path_query_headers_and_body(sandbox, http):
    http.post(
        f"{sandbox.url}/api/v3/contacts",
        params={"source": "ECOM"},
        json={"contactType": "Contact", "email": "logged@example.com"},
        headers={**HEADERS, "X-Trace": "t-1"},
    )
    (entry,) = sandbox.state.request_log("create", "v3")
    assert (entry["method"], entry["path"], entry["query"]) == ("POST", "/api/v3/contacts", {"source": "ECOM"})
    assert entry["headers"]["X-Trace"] == "t-1"
    assert entry["body"] == '{"contactType": "Contact", "email": "logged@example.com"}'


def test_rates_over_http_agree_with_the_helpers_on_the_log(sandbox, http):
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda _: (
                    requests.get(f"{sandbox.url}/api/v2/contacts/{ANNA}", headers=HEADERS, timeout=10).status_code
                ),
                range(24),
            )
        )
    assert statuses == [200] * 24
    log = sandbox.state.request_log()
    rates = http.get(f"{sandbox.url}/_sandbox/rates").json()
    assert rates["requests"] == 24
    assert rates["peakPerSecond"] == peak_per_second(log) >= 1
    assert rates["sustainedRate"] == pytest.approx(sustained_rate(log))
    assert http.get(f"{sandbox.url}/_sandbox/stats").json()["peakPerSecond"] == rates["peakPerSecond"]


def test_requests_refused_with_429_still_count_on_engages_side(sandbox, http):
    http.post(f"{sandbox.url}/_sandbox/config", json={"rateLimit": 0})  # every call over the limit
    assert [get_anna(http, sandbox).status_code for _ in range(4)] == [429] * 4
    log = sandbox.state.request_log("get")
    assert len(log) == 4 and peak_per_second(log) == http.get(f"{sandbox.url}/_sandbox/rates").json()["peakPerSecond"]
