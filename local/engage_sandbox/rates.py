"""Requests per second as Engage's side sees them, from the sandbox's request log.

Both functions take log entries (dicts with `monotonic`, the moment a request
arrived) or plain monotonic timestamps, in any order.
"""

from __future__ import annotations

from collections.abc import Iterable

WINDOW = 1.0


def _times(requests: Iterable[dict | float]) -> list[float]:
    return sorted(r["monotonic"] if isinstance(r, dict) else float(r) for r in requests)


def peak_per_second(requests: Iterable[dict | float]) -> int:
    """The most requests started within any one-second sliding window, [t, t + 1 s)."""
    return busiest_second(requests)[0]


def busiest_second(requests: Iterable[dict | float]) -> tuple[int, float | None]:
    """The most requests started within any one-second sliding window, and when that window starts."""
    times = _times(requests)
    peak, at, first = 0, None, 0
    for last, now in enumerate(times):
        while now - times[first] >= WINDOW:
            first += 1
        if last - first + 1 > peak:
            peak, at = last - first + 1, times[first]
    return peak, at


def sustained_rate(requests: Iterable[dict | float], start: float | None = None, end: float | None = None) -> float:
    """Requests per second over a span.

    With `start` and `end` (monotonic seconds): the requests started in [start, end)
    divided by the span's length. Without them: the rate between the first and the
    last request, (n - 1) / (last - first), which a steady stream of n requests
    spaced 1/r apart answers as exactly r. Fewer than two requests, or a span of
    no length: 0.0.
    """
    times = _times(requests)
    if not times:
        return 0.0
    if start is not None or end is not None:
        lo = times[0] if start is None else start
        hi = times[-1] if end is None else end
        if hi <= lo:
            return 0.0
        return sum(1 for t in times if lo <= t < hi) / (hi - lo)
    if len(times) < 2 or times[-1] == times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make sandbox (python -m local.engage_sandbox), of which this is a part")
