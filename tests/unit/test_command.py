"""The one command shape (docs/contract.md §2): every rule gives InvalidRequest naming the field."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from engage_contact.domain.attributes import AttributeCatalogue
from engage_contact.domain.command import Operation, parse_command
from engage_contact.domain.contacts import Lookup, message_group
from engage_contact.domain.json_body import decode_json
from engage_contact.errors import InvalidRequest, NoData

ID = "430d3329-7eef-45c0-37f9-ae9300a0dace"
CATALOGUE = AttributeCatalogue(frozenset({"favoriteStore"}))


def parse(data, operation=Operation.UPDATE):
    return parse_command(data, operation, CATALOGUE)


def test_the_contract_example_parses():
    command = parse(
        {
            "contactId": ID,
            "attributes": {"lastName": "Examplesson", "street": "New Street 1337"},
            "clear": ["careOf"],
            "idempotencyKey": "shop-42-evt-9",
        }
    )
    assert command.contact_id == ID and command.idempotency_key == "shop-42-evt-9"
    assert command.payload.sent == {"lastName": "Examplesson", "street": "New Street 1337", "careOf": ""}


def test_lookup_with_contact_type():
    data = {"lookup": {"email": " Anna@example.com ", "contactType": "Member"}, "attributes": {"city": "Lund"}}
    command = parse(data)
    assert command.lookup == Lookup("email", "Anna@example.com", "Member")
    # the SQS message group: the contact, as a digest of the address without case
    assert (
        message_group(data)
        == message_group({"lookup": {"email": "anna@EXAMPLE.com"}})
        != message_group({"lookup": {"email": "bertil@example.com"}})
    )


@pytest.mark.parametrize(
    ("data", "operation", "field"),
    [
        ([], Operation.UPDATE, "object"),
        ("x", Operation.UPDATE, "object"),
        ({"attributes": {"city": "Lund"}}, Operation.UPDATE, "exactly one of 'contactId' and 'lookup'"),
        (
            {"contactId": ID, "lookup": {"email": "a@b.se"}, "attributes": {"city": "L"}},
            Operation.UPDATE,
            "exactly one",
        ),
        ({"contactId": "../../admin", "attributes": {"city": "L"}}, Operation.UPDATE, "contactId"),
        ({"contactId": "abc?x=1", "attributes": {"city": "L"}}, Operation.UPDATE, "contactId"),
        ({"contactId": "a" * 65, "attributes": {"city": "L"}}, Operation.UPDATE, "contactId"),
        ({"contactId": 12, "attributes": {"city": "L"}}, Operation.UPDATE, "contactId"),
        ({"contactId": ID, "clear": ["careOf"]}, Operation.PROMOTE, "'clear' does not belong to the promote"),
        ({"contactId": ID, "contactTypeId": "Prospect"}, Operation.UPDATE, "'contactTypeId' does not belong"),
        ({"contactId": ID, "attributes": {"city": "L"}}, Operation.CHANGE_TYPE, "'attributes' does not belong"),
        ({"contactId": ID, "attributes": {"city": "L"}, "extra": 1}, Operation.UPDATE, "'extra'"),
        ({"contactId": ID, "attributes": "city=Lund"}, Operation.UPDATE, "'attributes' must be an object"),
        ({"contactId": ID, "clear": "careOf"}, Operation.UPDATE, "'clear' must be a list"),
        ({"contactId": ID, "clear": [""]}, Operation.UPDATE, "'clear' must be a list"),
        ({"lookup": "anna@example.com", "attributes": {"city": "L"}}, Operation.UPDATE, "'lookup' must be an object"),
        ({"lookup": {}, "attributes": {"city": "L"}}, Operation.UPDATE, "exactly one of email"),
        ({"lookup": {"email": "a@b.se", "mobilePhone": "+46701234567"}}, Operation.PROMOTE, "exactly one of"),
        ({"lookup": {"phone": "+46701234567"}}, Operation.PROMOTE, "unknown fields"),
        ({"lookup": {"email": "not-an-email"}}, Operation.PROMOTE, "lookup.email"),
        ({"lookup": {"mobilePhone": "0701234567"}}, Operation.PROMOTE, "lookup.mobilePhone"),
        ({"lookup": {"email": ""}}, Operation.PROMOTE, "lookup.email"),
        ({"lookup": {"customKey": "a\nb"}}, Operation.PROMOTE, "lookup.customKey"),
        ({"lookup": {"email": "a@b.se", "contactType": "Member&x=1"}}, Operation.PROMOTE, "lookup.contactType"),
        ({"contactId": ID}, Operation.CHANGE_TYPE, "'contactTypeId' is required"),
        ({"contactId": ID, "contactTypeId": "Member"}, Operation.CHANGE_TYPE, "only through the promote"),
        ({"contactId": ID, "contactTypeId": "member"}, Operation.CHANGE_TYPE, "only through the promote"),
        ({"contactId": ID, "contactTypeId": "Prospect/../x"}, Operation.CHANGE_TYPE, "contactTypeId"),
        ({"contactId": ID, "contactTypeId": 3}, Operation.CHANGE_TYPE, "contactTypeId"),
        ({"contactId": ID, "attributes": {"contactType": "Member"}}, Operation.UPDATE, "never writable"),
        ({"contactId": ID, "attributes": {"city": "L"}, "idempotencyKey": ""}, Operation.UPDATE, "idempotencyKey"),
        ({"contactId": ID, "attributes": {"city": "L"}, "idempotencyKey": "k" * 300}, Operation.UPDATE, "idempotency"),
    ],
)
def test_rule_breaks_are_invalid_request_naming_the_problem(data, operation, field):
    with pytest.raises(InvalidRequest, match=field.replace("?", r"\?").replace(".", r"\.")):
        parse(data, operation)


def test_update_with_nothing_to_send_is_nodata():
    with pytest.raises(NoData):
        parse({"contactId": ID, "attributes": {"city": " "}})


def test_promote_with_no_attributes_is_fine():
    assert parse({"contactId": ID}, Operation.PROMOTE).payload.sent == {}


def test_change_type_takes_a_type():
    assert parse({"contactId": ID, "contactTypeId": "Prospect"}, Operation.CHANGE_TYPE).contact_type_id == "Prospect"


@pytest.mark.parametrize("body", [b"{", b"NaN", b'{"a": Infinity}', b"\xff\xfe", b"[" * 100_000, b"x" * 70_000])
def test_bad_json_is_invalid_request(body):
    with pytest.raises(InvalidRequest):
        decode_json(body)


# What SQS takes as a MessageGroupId: 1-128 ASCII letters, digits and punctuation.
SQS_GROUP_ID = re.compile(r"^[A-Za-z0-9!-/:-@\[-`{-~]{1,128}$")


@pytest.mark.parametrize(
    "command",
    [
        {"lookup": {"email": "anna@exämple.se"}},  # an internationalised domain
        {"lookup": {"email": "ånna@例え.jp"}},
        {"lookup": {"customKey": "Ünïcödé-42"}},
        {"lookup": {"socialSecurityNumber": "198112189876"}},
        {"lookup": {"email": "x" * 300 + "@example.com"}},
        {"contactId": "kontakt-ö"},
        {"contactId": ID},
    ],
)
def test_the_message_group_is_what_sqs_takes_and_holds_no_lookup_value(command):
    group = message_group(command)
    assert SQS_GROUP_ID.match(group), group
    for value in (command.get("lookup") or {}).values():
        assert value.lower() not in group.lower()


def test_a_contact_id_is_its_own_message_group():
    assert message_group({"contactId": ID}) == ID


# --- eventTime: when the change happened at its source --------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27T10:00:00+01:00", dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)),
        ("2026-11-27T09:00:00Z", dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)),
        ("2026-11-27T09:00:00.250+00:00", dt.datetime(2026, 11, 27, 9, 0, 0, 250_000, tzinfo=dt.UTC)),
    ],
)
@pytest.mark.parametrize("operation", [Operation.UPDATE, Operation.PROMOTE])
def test_an_event_time_with_its_zone_is_parsed(value, expected, operation):
    command = parse({"contactId": ID, "attributes": {"city": "Lund"}, "eventTime": value}, operation)
    assert command.event_time == expected and command.event_time.utcoffset() is not None


@pytest.mark.parametrize(
    "value", ["2026-11-27T10:00:00", "2026-11-27", "yesterday", "", 1764234000, None, "2026-13-01T00:00Z"]
)
def test_an_event_time_without_a_zone_or_not_a_time_is_refused(value):
    with pytest.raises(InvalidRequest) as caught:
        parse({"contactId": ID, "attributes": {"city": "Lund"}, "eventTime": value})
    assert caught.value.details["field"] == "eventTime"


@pytest.mark.parametrize(("ahead", "refused"), [(dt.timedelta(days=365), True), (dt.timedelta(minutes=6), True),
                                               (dt.timedelta(minutes=4), False)])  # fmt: skip
def test_an_event_time_more_than_five_minutes_ahead_of_the_clock_is_refused(ahead, refused):
    """A time far ahead would freeze the contact: every later event would seem older (docs/contract.md §9)."""
    value = (dt.datetime.now(tz=dt.UTC) + ahead).isoformat()
    data = {"contactId": ID, "attributes": {"city": "Lund"}, "eventTime": value}
    if not refused:
        assert parse(data).event_time is not None
        return
    with pytest.raises(InvalidRequest, match="ahead of the clock") as caught:
        parse(data)
    assert caught.value.details["field"] == "eventTime"


def test_change_type_takes_no_event_time_and_without_one_there_is_none():
    with pytest.raises(InvalidRequest, match="eventTime"):
        parse(
            {"contactId": ID, "contactTypeId": "Prospect", "eventTime": "2026-11-27T09:00:00Z"}, Operation.CHANGE_TYPE
        )
    assert parse({"contactId": ID, "attributes": {"city": "Lund"}}).event_time is None
