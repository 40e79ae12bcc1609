"""Find or create (docs/contract.md §7): the `createIfMissing` object and what a create would send."""

from __future__ import annotations

import pytest
from engage_contact.domain.attributes import AttributeCatalogue
from engage_contact.domain.command import Operation, parse_command
from engage_contact.domain.creation import parse_create_if_missing
from engage_contact.errors import InvalidRequest, NoData

ID = "430d3329-7eef-45c0-37f9-ae9300a0dace"
CATALOGUE = AttributeCatalogue(frozenset({"favoriteStore"}))
NORA = {"email": "new@example.com"}


def parse(data, operation=Operation.UPDATE):
    return parse_command(data, operation, CATALOGUE)


def command(create, lookup=NORA, attributes=None, **extra):
    return {"lookup": lookup, "attributes": attributes or {"firstName": "Nora"}, "createIfMissing": create, **extra}


def test_the_contract_example_parses_with_its_create_body_and_options():
    parsed = parse(command({"contactType": "Contact", "source": "ECOM", "storeExternalId": "600"},
                           attributes={"firstName": "Nora", "city": "Lund"}))  # fmt: skip
    assert parsed.creation.body == {
        "firstName": "Nora", "city": "Lund", "email": "new@example.com", "contactType": "Contact"
    }  # fmt: skip
    assert parsed.creation.options == {"source": "ECOM", "storeExternalId": "600"}
    assert parsed.payload.sent == {"firstName": "Nora", "city": "Lund"}  # the update, when found, is unchanged


def test_a_command_without_it_creates_nothing():
    assert parse({"lookup": NORA, "attributes": {"city": "Lund"}}).creation is None


@pytest.mark.parametrize(("given", "sent"), [(True, "true"), (False, "false")])
def test_create_as_unapproved_is_sent_as_engage_reads_it(given, sent):
    assert parse(command({"contactType": "Contact", "createAsUnapproved": given})).creation.options == {
        "createAsUnapproved": sent
    }


def test_the_create_body_has_no_empty_value_and_no_clear_name():
    parsed = parse(command({"contactType": "Contact"}, attributes={"firstName": " Nora ", "city": "", "street": None},
                           clear=["careOf"]))  # fmt: skip
    assert parsed.creation.body == {"firstName": "Nora", "email": "new@example.com", "contactType": "Contact"}
    assert parsed.payload.sent == {"firstName": "Nora", "careOf": ""}  # an update of a found contact still clears


@pytest.mark.parametrize(
    ("lookup", "key"),
    [
        ({"mobilePhone": "+46701234567"}, "mobilePhone"),
        ({"socialSecurityNumber": "198001011234"}, "socialSecurityNumber"),
    ],
)
def test_the_lookups_key_and_value_become_the_new_contacts(lookup, key):
    parsed = parse(command({"contactType": "Prospect"}, lookup=lookup))
    assert parsed.creation.body[key] == lookup[key] and parsed.creation.body["contactType"] == "Prospect"


def test_the_key_given_again_in_attributes_with_the_same_value_is_fine():
    parsed = parse(command({"contactType": "Contact"}, attributes={"email": "NEW@example.com", "city": "Lund"}))
    assert parsed.creation.body["email"] == "new@example.com"


def test_promote_creates_a_member_with_the_type_said_out_loud():
    for create in ({}, {"contactType": "Member"}, {"contactType": "member"}):
        parsed = parse({"lookup": NORA, "createIfMissing": create}, Operation.PROMOTE)
        assert parsed.creation.body == {"email": "new@example.com", "contactType": "Member"}


def test_an_update_that_may_create_needs_nothing_but_its_key():
    """#29 point 6 reversed the earlier rule (NoData): a create with the key alone is a valid create."""
    parsed = parse(command({"contactType": "Contact"}, attributes={"city": ""}))
    assert parsed.payload.sent == {} and parsed.creation.body == {"email": "new@example.com", "contactType": "Contact"}


def test_an_update_that_may_not_create_still_needs_something_to_send():
    with pytest.raises(NoData):
        parse({"lookup": NORA, "attributes": {"city": ""}})


@pytest.mark.parametrize(
    ("data", "operation", "names"),
    [
        (command({}), Operation.UPDATE, "createIfMissing.contactType"),
        (command({"contactType": "Member"}), Operation.UPDATE, "createIfMissing.contactType"),
        (command({"contactType": "MEMBER"}), Operation.UPDATE, "createIfMissing.contactType"),
        (command({"contactType": "Contact"}), Operation.PROMOTE, "createIfMissing.contactType"),
        (command({"contactType": "two words"}), Operation.UPDATE, "createIfMissing.contactType"),
        (command({"contactType": 7}), Operation.UPDATE, "createIfMissing.contactType"),
        (command({"contactType": "Contact", "store": "600"}), Operation.UPDATE, "unknown fields ['store']"),
        (command({"contactType": "Contact", "source": ""}), Operation.UPDATE, "createIfMissing.source"),
        (command({"contactType": "Contact", "source": 5}), Operation.UPDATE, "createIfMissing.source"),
        (command({"contactType": "Contact", "source": "Göteborg"}), Operation.UPDATE, "createIfMissing.source"),
        (command({"contactType": "Contact", "storeExternalId": "6\n0"}), Operation.UPDATE, "storeExternalId"),
        (command({"contactType": "Contact", "createAsUnapproved": "true"}), Operation.UPDATE, "createAsUnapproved"),
        (command("Contact"), Operation.UPDATE, "'createIfMissing' must be an object"),
        (command({"contactType": "Contact"}, lookup={"customKey": "M1"}), Operation.UPDATE, "not by customKey"),
        (command({"contactType": "Contact"}, lookup={**NORA, "contactType": "Contact"}), Operation.UPDATE,
         "without 'contactType'"),
        (command({"contactType": "Contact"}, attributes={"email": "other@example.com"}), Operation.UPDATE,
         "attributes.email"),
        ({"contactId": ID, "attributes": {"city": "Lund"}, "createIfMissing": {"contactType": "Contact"}},
         Operation.UPDATE, "not a 'contactId'"),
        ({"contactId": ID, "contactTypeId": "Contact", "createIfMissing": {"contactType": "Contact"}},
         Operation.CHANGE_TYPE, "'createIfMissing' does not belong to the contact-type command"),
    ],
)  # fmt: skip
def test_every_misuse_is_invalid_request_naming_the_problem(data, operation, names):
    with pytest.raises(InvalidRequest) as raised:
        parse(data, operation)
    assert names in raised.value.message


def test_the_object_alone_is_checked_for_a_deployment_setting():
    assert parse_create_if_missing({"contactType": "Contact", "source": "ECOM"}, creates_member=False).options == {
        "source": "ECOM"
    }
    with pytest.raises(InvalidRequest, match="contactType"):
        parse_create_if_missing({"source": "ECOM"}, creates_member=False)
