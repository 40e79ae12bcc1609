"""Only what changed, the pure rule: digests of values, never values; preferences per field; entries expire."""

from __future__ import annotations

import pytest
from engage_contact.domain.attributes import AttributeCatalogue
from engage_contact.domain.command import Operation, parse_command
from engage_contact.domain.contacts import Lookup, still_found_by
from engage_contact.domain.sent_digests import changed_only, digest, digests, entry, flatten, is_current, unflatten
from engage_contact.errors import InvalidRequest

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
CONTACT = "430d3329-7eef-45c0-37f9-ae9300a0dace"
DAY = 24 * 3600
NOW = 1_800_000_000.0


def stored_for(sent, at=NOW, key=KEY, contact=CONTACT):
    return {name: entry(d, at) for name, d in digests(key, contact, sent).items()}


def test_an_entry_names_no_value_and_differs_by_contact_name_and_key():
    value = digest(KEY, CONTACT, "city", "Uppsala")
    assert "Uppsala" not in value and len(value) == 32
    assert value != digest(KEY, "abc-123", "city", "Uppsala")
    assert value != digest(KEY, CONTACT, "street", "Uppsala")
    assert value != digest(OTHER_KEY, CONTACT, "city", "Uppsala")
    assert value == digest(KEY, CONTACT, "city", "Uppsala")


def test_false_zero_and_their_strings_are_different_values():
    seen = {digest(KEY, CONTACT, "x", v) for v in (False, 0, "0", "false", None, True, 1)}
    assert len(seen) == 7


def test_objects_compare_without_regard_to_key_order():
    assert digest(KEY, CONTACT, "consents", [{"a": 1, "b": 2}]) == digest(KEY, CONTACT, "consents", [{"b": 2, "a": 1}])


def test_preferences_are_compared_per_field_and_rebuilt():
    sent = {"city": "Lund", "preferences": {"acceptsEmail": True, "acceptsSms": False}}
    flat = flatten(sent)
    assert flat == {"city": "Lund", "preferences.acceptsEmail": True, "preferences.acceptsSms": False}
    assert unflatten(flat) == sent


def test_what_engage_holds_is_left_out_and_named():
    before = {"firstName": "Anna", "city": "Lund", "preferences": {"acceptsEmail": True, "acceptsSms": False}}
    now = {"firstName": "Anna", "city": "Malmö", "preferences": {"acceptsEmail": True, "acceptsSms": True}}
    kept = changed_only(now, digests(KEY, CONTACT, now), stored_for(before), NOW + 60, 30 * DAY)
    assert kept.sent == {"city": "Malmö", "preferences": {"acceptsSms": True}}
    assert kept.unchanged == ["firstName", "preferences.acceptsEmail"]
    assert set(kept.digests) == {"city", "preferences.acceptsSms"}


def test_nothing_changed_leaves_nothing_to_send():
    sent = {"firstName": "Anna", "preferences": {"acceptsEmail": False}}
    kept = changed_only(sent, digests(KEY, CONTACT, sent), stored_for(sent), NOW, 30 * DAY)
    assert kept.sent == {} and kept.unchanged == ["firstName", "preferences.acceptsEmail"] and kept.digests == {}


def test_clear_names_have_no_digest_and_always_go():
    sent = {"careOf": "", "city": "Lund"}
    new = digests(KEY, CONTACT, sent, clear=["careOf"])
    assert set(new) == {"city"}
    stored = {**stored_for({"city": "Lund"}), "careOf": entry(digest(KEY, CONTACT, "careOf", ""), NOW)}
    kept = changed_only(sent, new, stored, NOW, 30 * DAY)
    assert kept.sent == {"careOf": ""} and kept.unchanged == ["city"]


def test_an_entry_older_than_its_lifetime_counts_for_nothing():
    sent = {"city": "Lund"}
    value = digests(KEY, CONTACT, sent)["city"]
    assert is_current(entry(value, NOW - 29 * DAY), value, NOW, 30 * DAY)
    assert not is_current(entry(value, NOW - 30 * DAY), value, NOW, 30 * DAY)
    kept = changed_only(sent, digests(KEY, CONTACT, sent), stored_for(sent, at=NOW - 31 * DAY), NOW, 30 * DAY)
    assert kept.sent == sent and kept.unchanged == []


@pytest.mark.parametrize("stored", [None, "", "nonsense", "abc@", "abc@x", 42])
def test_a_malformed_entry_is_no_entry(stored):
    assert not is_current(stored, "abc", NOW, DAY)


def test_an_entry_from_another_key_or_contact_never_matches():
    sent = {"city": "Lund"}
    for stored in (stored_for(sent, key=OTHER_KEY), stored_for(sent, contact="abc-123")):
        assert changed_only(sent, digests(KEY, CONTACT, sent), stored, NOW, DAY).sent == sent


# --- the command's field -------------------------------------------------------------------------


def parse(data, operation=Operation.UPDATE):
    return parse_command(data, operation, AttributeCatalogue())


def test_send_only_changed_is_read_from_the_update_command():
    command = {"contactId": CONTACT, "attributes": {"city": "Lund"}}
    assert parse(command).send_only_changed is False
    assert parse({**command, "sendOnlyChanged": True}).send_only_changed is True
    assert parse({**command, "sendOnlyChanged": False}).send_only_changed is False


@pytest.mark.parametrize("value", ["true", 1, 0, None, [], {}])
def test_send_only_changed_that_is_not_a_boolean_is_refused(value):
    with pytest.raises(InvalidRequest) as caught:
        parse({"contactId": CONTACT, "attributes": {"city": "Lund"}, "sendOnlyChanged": value})
    assert caught.value.details == {"field": "sendOnlyChanged"}


@pytest.mark.parametrize("operation", [Operation.PROMOTE, Operation.CHANGE_TYPE])
def test_send_only_changed_belongs_to_update_only(operation):
    command = {"contactId": CONTACT, "sendOnlyChanged": True}
    command.update({"contactTypeId": "Prospect"} if operation is Operation.CHANGE_TYPE else {})
    with pytest.raises(InvalidRequest):
        parse(command, operation)


def test_engage_answer_still_found_by_the_lookup_only_without_evidence_against_it():
    lookup = Lookup("email", "Anna@Example.com")
    assert still_found_by(lookup, {"id": "1", "email": "anna@example.com "})  # Engage's spelling: same key
    assert still_found_by(lookup, {"id": "1", "attributes": {"email": "anna@example.com"}})
    assert not still_found_by(lookup, {"id": "1", "email": "someone@example.com"})
    assert still_found_by(lookup, {"id": "1"}) and still_found_by(lookup, None)  # no evidence either way
    typed = Lookup("email", "anna@example.com", contact_type="Member")
    assert not still_found_by(typed, {"email": "anna@example.com", "contactType": "Contact"})
    assert still_found_by(typed, {"email": "anna@example.com", "contactType": "Member"})
