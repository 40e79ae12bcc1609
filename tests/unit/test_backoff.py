"""The SQS backoff schedule and the receives an outage tolerance needs (CONTRACT.md "SQS")."""

from __future__ import annotations

import pytest
from engage_contact.aws.idempotency import EXPIRES_AFTER_SECONDS
from engage_contact.triggers.backoff import (
    MAX_TOLERANCE_HOURS,
    SQS_MAX_VISIBILITY_SECONDS,
    backoff_for,
    max_receive_count_for,
    waited_before,
)


def test_the_schedule_is_voyados_then_a_quarter_of_an_hour():
    assert [backoff_for(n) for n in range(0, 8)] == [10, 10, 30, 60, 300, 900, 900, 900]
    assert max(backoff_for(n) for n in range(1, 2000)) <= SQS_MAX_VISIBILITY_SECONDS


def test_waited_before_adds_the_waits_of_the_failed_receives():
    assert [waited_before(n) for n in (1, 2, 3, 4, 5, 6)] == [0, 10, 40, 100, 400, 1300]


@pytest.mark.parametrize("hours", [0.05, 0.1, 0.5, 1, 2, 3, 4, 6, 7.5, 8, 12, 18, 23])
def test_the_receive_count_is_the_fewest_whose_waits_cover_the_tolerance(hours):
    count = max_receive_count_for(hours)
    assert waited_before(count) >= hours * 3600 > waited_before(count - 1)
    # the last receive comes within one wait of the tolerance, and within the idempotency records' lifetime
    assert waited_before(count) - hours * 3600 < 900
    assert waited_before(count) + backoff_for(count) < EXPIRES_AFTER_SECONDS


def test_the_old_five_receives_survived_only_about_seven_minutes():
    assert waited_before(5) == 400 and max_receive_count_for(400 / 3600) == 5
    assert max_receive_count_for(6) == 29


@pytest.mark.parametrize("hours", [0, -1, MAX_TOLERANCE_HOURS + 0.5, 48, float("nan"), float("inf")])
def test_a_tolerance_outside_what_the_queues_and_records_allow_is_refused(hours):
    with pytest.raises(ValueError, match="tolerance"):
        max_receive_count_for(hours)
