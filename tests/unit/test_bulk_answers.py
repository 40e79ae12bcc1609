"""Engage's bulk answers, read defensively: their shape is not documented (docs/design.md, "Bulk writes")."""

from __future__ import annotations

import pytest
from engage_contact.engage.answers import read_batch_id, read_bulk_status
from engage_contact.engage.pacing import BackgroundShare, FallbackPacer

KEYS = ["a@example.com", "b@example.com", "c@example.com"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [("3f1c-77", "3f1c-77"), ({"batchId": "b-1"}, "b-1"), ({"id": 42}, "42"), ({"jobId": " j "}, "j"),
     ({}, None), ([], None), ("", None), ({"batchId": "x" * 200}, None), (True, None), ("bad\nid", None)],
)  # fmt: skip
def test_a_batch_id_is_found_in_any_documented_or_likely_place_and_nonsense_is_none(body, expected):
    assert read_batch_id(body) == expected


def test_a_status_names_each_row_by_its_index_created_or_refused():
    refused = {"index": 2, "errorCode": "InvalidEmailAddress", "message": "bad"}
    status = read_bulk_status({"status": "Completed", "contacts": [{"index": 0, "contactId": "id-0"}],
                               "errors": [refused]}, KEYS)  # fmt: skip
    assert status.done and not status.failed_whole
    assert status.rows[0].contact_id == "id-0"
    assert (status.rows[2].error_code, status.rows[2].message) == ("InvalidEmailAddress", "bad")
    assert 1 not in status.rows  # not named: unknown, the caller looks it up


def test_a_status_may_name_rows_by_their_key_value_in_any_case():
    status = read_bulk_status({"state": "FINISHED", "failed": [{"email": "B@EXAMPLE.COM", "code": 409}],
                               "results": [{"email": "a@example.com", "id": "id-a"}]}, KEYS)  # fmt: skip
    assert status.done and status.rows[1].error_code == "409" and status.rows[0].contact_id == "id-a"


@pytest.mark.parametrize("word", ["Processing", "queued", "InProgress", None, 7])
def test_any_other_status_is_not_done(word):
    assert not read_bulk_status({"status": word}, KEYS).done


@pytest.mark.parametrize("body", [None, "Completed", [], {"status": "completed", "contacts": "all of them"},
                                  {"status": "done", "contacts": [{"index": 99, "contactId": "x"}, 5]}])  # fmt: skip
def test_a_status_of_an_unexpected_shape_names_no_row(body):
    assert read_bulk_status(body, KEYS).rows == {}


def test_a_batch_reported_failed_is_done_with_no_row_created():
    status = read_bulk_status({"status": "Failed"}, KEYS)
    assert status.done and status.failed_whole and status.rows == {}


def test_a_refusal_wins_over_a_success_for_the_same_row():
    status = read_bulk_status({"status": "completed", "contacts": [{"index": 0, "contactId": "x"}],
                               "errors": [{"index": 0, "errorCode": "Oops"}]}, KEYS)  # fmt: skip
    assert status.rows[0].contact_id is None and status.rows[0].error_code == "Oops"


def test_background_turns_keep_to_their_share_so_the_shared_schedule_never_runs_ahead():
    clock = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    shared = FallbackPacer(10, clock=lambda: clock[0])
    background = BackgroundShare(shared, FallbackPacer(8, clock=lambda: clock[0]), sleep=sleep)
    for _ in range(16):
        assert background.acquire(within=60) == 0.0  # the shared turn is free when the share's turn comes
    assert clock[0] == pytest.approx(15 / 8)  # 16 turns at 8 a second
    assert shared.pending() <= 1 / 10 + 1e-9  # no backlog: a live call waits at most the one interval


# the least a function's environment holds (Settings.from_env)
SETTINGS = {"ENGAGE_BASE_URL": "http://127.0.0.1:9", "ENGAGE_API_KEY_SECRET_ARN": "a", "DIGEST_KEY_SECRET_ARN": "d",
            "WEBHOOK_SIGNING": "off"}  # fmt: skip


def test_the_writer_containers_share_the_backfill_share_so_together_they_keep_to_it():
    from engage_contact.container import rate_budget
    from engage_contact.settings import Settings

    env = {**SETTINGS, "ENGAGE_REQUESTS_PER_SECOND": "45", "BACKFILL_RATE_SHARE": "0.8"}
    one = rate_budget(Settings.from_env(env), background=True)
    two = rate_budget(Settings.from_env({**env, "BACKFILL_WRITER_CONTAINERS": "2"}), background=True)
    assert one.share.interval == pytest.approx(1 / 36)
    assert two.share.interval == pytest.approx(1 / 18)  # two containers at once: 36/s together, never 72


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("false", False), ("true", True), ("TRUE", True)])
def test_avoid_triggering_export_is_off_unless_the_deployment_says_true(value, expected):
    from engage_contact.settings import Settings

    env = dict(SETTINGS)
    if value is not None:
        env["BACKFILL_AVOID_TRIGGERING_EXPORT"] = value
    assert Settings.from_env(env).avoid_triggering_export is expected


def test_avoid_triggering_export_refuses_anything_but_true_or_false_naming_the_variable():
    from engage_contact.errors import ConfigurationError
    from engage_contact.settings import Settings

    env = {**SETTINGS, "BACKFILL_AVOID_TRIGGERING_EXPORT": "yes"}
    with pytest.raises(ConfigurationError, match="BACKFILL_AVOID_TRIGGERING_EXPORT"):
        Settings.from_env(env)
