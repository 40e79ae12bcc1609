"""Input at its hard edges: whole-value patterns, finite numbers, hidden characters, and errors that stay short."""

from __future__ import annotations

import json

import pytest
from engage_contact.domain.attributes import AttributeCatalogue, problem_with_value
from engage_contact.domain.command import Operation, parse_command
from engage_contact.domain.json_body import decode_json
from engage_contact.domain.sparse_payload import build_sparse_payload
from engage_contact.errors import InvalidRequest

ID = "430d3329-7eef-45c0-37f9-ae9300a0dace"
CATALOGUE = AttributeCatalogue(frozenset({"favoriteStore", "notes"}))


def parse(data, operation=Operation.UPDATE):
    return parse_command(data, operation, CATALOGUE)


def refused(data, operation=Operation.UPDATE) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as raised:
        parse(data, operation)
    return raised.value


# --- 8: a pattern validates the whole value -------------------------------------------------------


@pytest.mark.parametrize("contact_id", [ID + "\n", "abc\n", ID + "\r\n"])
def test_a_contact_id_with_a_trailing_newline_is_refused(contact_id):
    assert refused({"contactId": contact_id, "attributes": {"city": "Lund"}}).details == {"field": "contactId"}


@pytest.mark.parametrize(
    ("name", "value"), [("email", "anna@example.com\n"), ("mobilePhone", "+46701234567\n")]
)  # fmt: skip
def test_email_and_phone_patterns_match_the_whole_value(name, value):
    assert problem_with_value(name, value) is not None
    assert problem_with_value(name, value.strip()) is None


# --- 9: numbers JSON cannot carry -------------------------------------------------------------------


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1E400"])
def test_a_number_too_large_for_a_float_is_refused_not_read_as_infinity(number):
    with pytest.raises(InvalidRequest, match="finite"):
        decode_json(f'{{"contactId": "{ID}", "attributes": {{"shoeSize": {number}}}}}')


def test_a_whole_number_with_thousands_of_digits_is_refused_without_pythons_own_message():
    with pytest.raises(InvalidRequest) as raised:
        decode_json('{"shoeSize": ' + "9" * 5000 + "}")
    assert "digits" in raised.value.message and "sys." not in raised.value.message


def test_ordinary_numbers_are_read_as_numbers():
    assert decode_json('{"a": 1.5, "b": -2, "c": 1e3, "d": 12345678901234567890}') == {
        "a": 1.5, "b": -2, "c": 1000.0, "d": 12345678901234567890}  # fmt: skip


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_number_in_a_direct_invocation_is_refused_naming_the_attribute(number):
    # Lambda's runtime reads a direct event itself, Infinity and NaN included: the command is checked too
    error = refused({"contactId": ID, "attributes": {"favoriteStore": {"size": [1, number]}}})
    assert "'favoriteStore.size.1' is not a finite number" in error.message


# --- 10: hidden characters in values ------------------------------------------------------------------

HIDDEN = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066",
          "\u2069", "\u061c", "\u2028", "\u2029", "\ufeff", "\ud800"]  # fmt: skip


@pytest.mark.parametrize("char", HIDDEN)
@pytest.mark.parametrize("name", ["firstName", "street", "favoriteStore"])
def test_control_and_bidi_characters_are_refused_in_any_attribute(name, char):
    error = refused({"contactId": ID, "attributes": {name: f"Anna{char}Berg"}})
    assert f"'{name}' holds a control or invisible formatting character (U+{ord(char):04X})" in error.message
    assert "Anna" not in error.message and "Berg" not in error.message  # the value is never repeated


@pytest.mark.parametrize("char", ["\t", "\n", "\r\n"])
@pytest.mark.parametrize("name", ["street", "careOf", "favoriteStore", "notes"])
def test_tab_and_line_breaks_are_kept_in_free_text_attributes(name, char):
    command = parse({"contactId": ID, "attributes": {name: f"Storgatan 1{char}Lgh 1102"}})
    assert command.payload.sent == {name: f"Storgatan 1{char}Lgh 1102"}


@pytest.mark.parametrize("char", ["\t", "\n", "\r\n", "\r"])
@pytest.mark.parametrize(("name", "value"), [("firstName", "Anna{}Maria"), ("lastName", "Berg{}son"),
                                             ("email", "anna{}@example.com"), ("mobilePhone", "+4670{}1234567"),
                                             ("externalId", "ext{}1"), ("city", "Lu{}nd")])  # fmt: skip
def test_names_email_phone_and_ids_take_no_tab_or_line_break(name, value, char):
    error = refused({"contactId": ID, "attributes": {name: value.format(char)}})
    assert f"'{name}' holds a control" in error.message


def test_a_lone_carriage_return_is_refused_even_in_free_text():
    assert "U+000D" in refused({"contactId": ID, "attributes": {"street": "Storgatan 1\rLgh 1102"}}).message


def test_hidden_characters_are_found_at_any_depth_and_in_keys():
    error = refused({"contactId": ID, "attributes": {
        "favoriteStore": {"list": [{"ok": "fine", "bad": "x\u202ey"}]}, "notes": {"k\x00ey": 1}}})  # fmt: skip
    assert "'favoriteStore.list.0.bad'" in error.message
    assert "'notes (key 0)'" in error.message  # a key is one line, even in free text


def test_consents_are_checked_inside_their_list():
    error = refused({"contactId": ID, "attributes": {"consents": [{"id": "news\u202e", "value": True}]}})
    assert "'consents.0.id'" in error.message


def test_lookup_values_take_no_hidden_characters():
    assert refused({"lookup": {"customKey": "k\u202e1"}, "attributes": {"city": "L"}})


def test_hidden_characters_in_the_engage_payload_never_reach_it_after_cleaning():
    # cleaning trims first: a trailing newline on a name is white space, not a refusal
    assert build_sparse_payload({"firstName": "Anna\n"}, (), CATALOGUE).sent == {"firstName": "Anna"}


# --- 15: an error names the first few problems and counts the rest ---------------------------------------


def test_thousands_of_unknown_names_make_a_short_error():
    attributes = {f"unknownName{n}": "x" for n in range(2355)}
    error = refused({"contactId": ID, "attributes": attributes})
    assert error.message.endswith(" … and 2,345 more")
    assert error.message.count("unknown attribute") == 10
    assert len(error.details["problems"]) == 10 and error.details["problemCount"] == 2355
    assert len(error.details["unknownNames"]) == 10 and error.details["unknownNameCount"] == 2355
    assert len(error.message) + len(json.dumps(error.details)) < 4000


def test_a_very_long_unknown_name_is_quoted_short():
    error = refused({"contactId": ID, "attributes": {"x" * 100_000: "v"}})
    assert len(error.message) < 300 and len(error.details["unknownNames"][0]) <= 65


def test_thousands_of_unknown_command_fields_make_a_short_error():
    error = refused({"contactId": ID, "attributes": {"city": "L"}, **{f"field{n}": 1 for n in range(5000)}})
    assert "… and 4,990 more" in error.message and len(error.message) < 1000
    assert len(error.details["fields"]) == 10 and error.details["fieldCount"] == 5000


def test_a_few_problems_are_all_named_without_a_count():
    error = refused({"contactId": ID, "attributes": {"firstNam": "A", "cty": "L"}})
    assert "more" not in error.message and error.details["problemCount"] == 2
