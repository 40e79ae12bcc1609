"""Backfill rows into update commands (contract: Backfill): one parser, one payload, no personal data in reasons."""

from __future__ import annotations

import json

import pytest
from engage_contact.backfill.batch import commands_of, header_of, numbered_rows
from engage_contact.backfill.mapping import PRESETS, SHOPIFY_EXPORT_COLUMNS, load_mapping, parse_mapping
from engage_contact.backfill.rows import InvalidRow, backfill_row, idempotency_key, row_command
from engage_contact.domain.attributes import AttributeCatalogue
from engage_contact.domain.contacts import message_group
from engage_contact.errors import InvalidRequest

CATALOGUE = AttributeCatalogue(frozenset({"favoriteStore"}))
SHOPIFY_HEADER = list(SHOPIFY_EXPORT_COLUMNS)


def shopify_row(**values):
    row = dict.fromkeys(SHOPIFY_HEADER, "")
    row.update({"Customer ID": "7001", "First Name": "Anna", "Last Name": "Andersson", "Email": "anna@example.com",
                "Accepts Email Marketing": "yes", "Default Address Address1": "Storgatan 1",
                "Default Address City": "Lund", "Default Address Country Code": "SE", "Default Address Zip": "22350",
                "Phone": "+46 70 123 45 67", "Accepts SMS Marketing": "no", "Total Spent": "120.00"})  # fmt: skip
    row.update(values)
    return row


def command(row, mapping="shopify", number=7):
    return row_command(parse_mapping(mapping, CATALOGUE), row, "bf-1", number, CATALOGUE)


def invalid(row, mapping="shopify", number=7):
    with pytest.raises(InvalidRow) as caught:
        command(row, mapping, number)
    assert caught.value.row == number
    return caught.value.reason


def test_a_shopify_row_becomes_an_update_command_by_email():
    made = command(shopify_row())
    assert made.command == {
        "lookup": {"email": "anna@example.com"},
        "attributes": {"firstName": "Anna", "lastName": "Andersson", "street": "Storgatan 1", "city": "Lund",
                       "zipCode": "22350", "countryCode": "SE", "mobilePhone": "+46701234567",
                       "preferences": {"acceptsEmail": True, "acceptsSms": False}},
        "idempotencyKey": "backfill:bf-1:7",
        "sendOnlyChanged": True,  # a row sends Engage only what changed since the last confirmed values
    }  # fmt: skip


def test_the_idempotency_key_is_the_backfills_id_and_the_row_number():
    assert command(shopify_row(), number=42).deduplication_id == "backfill:bf-1:42" == idempotency_key("bf-1", 42)
    assert backfill_row("backfill:bf-1:42") == ("bf-1", 42)
    assert backfill_row("shop-42-evt-9") is None and backfill_row(None) is None


def test_the_message_group_is_the_customers_key_so_two_rows_for_one_customer_keep_file_order():
    first, second = command(shopify_row(), number=1), command(shopify_row(Email="ANNA@example.com"), number=2)
    assert first.group == second.group == message_group({"lookup": {"email": "anna@example.com"}})
    assert "anna" not in first.group


def test_empty_cells_are_left_out_never_sent_as_empty_values():
    made = command(shopify_row(**{"Last Name": "", "Default Address City": "   ", "Phone": ""}))
    assert "lastName" not in made.command["attributes"] and "city" not in made.command["attributes"]
    assert "mobilePhone" not in made.command["attributes"]


def test_create_if_missing_is_carried_and_checked_by_the_same_parser():
    mapping = {"preset": "shopify", "createIfMissing": {"contactType": "Contact", "source": "ECOM"}}
    assert command(shopify_row(), mapping).command["createIfMissing"] == {"contactType": "Contact", "source": "ECOM"}
    # the command's own rule, applied to the mapping before any row (not to every row after it)
    with pytest.raises(InvalidRequest, match="contactType"):
        parse_mapping(load_mapping(json.dumps({"preset": "shopify", "createIfMissing": {"source": "ECOM"}})), CATALOGUE)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"Email": ""}, "the key column 'Email' is empty"),
        ({"Email": "anna-at-example.com"}, "InvalidRequest: 'lookup.email' does not look like an email address"),
        ({"Default Address Country Code": "XX"}, "column 'Default Address Country Code' is not a two-letter country"),
        ({"Default Address Country Code": "Sweden"}, "column 'Default Address Country Code' is not a two-letter"),
        ({"Phone": "070-123 45 67"}, "column 'Phone' is not an international phone number"),
        ({"Accepts Email Marketing": "maybe"}, "column 'Accepts Email Marketing' is not yes or no"),
        ({"First Name": "Ann\udce4"}, "column 'First Name' is not UTF-8 text"),
    ],
)
def test_an_invalid_row_is_reported_by_number_and_reason_never_by_its_values(values, reason):
    row = shopify_row(**values)
    found = invalid(row)
    assert found.startswith(reason)
    for value in values.values():
        if value:
            assert value not in found


def test_a_batch_counts_commands_and_invalid_rows_in_file_order():
    rows = [shopify_row(), shopify_row(Email=""), shopify_row(Email="b@example.com")]
    outcome = commands_of(parse_mapping("shopify", CATALOGUE), numbered_rows({"rows": rows, "firstRow": 11}),
                          "bf-1", CATALOGUE)  # fmt: skip
    assert [c.row for c in outcome.commands] == [11, 13]
    assert [i.report() for i in outcome.invalid] == [{"row": 12, "reason": "the key column 'Email' is empty"}]


def test_step_functions_items_carry_their_own_index():
    row = {"Email": "a@example.com", "City": "Lund"}
    items = [{"index": 4, "value": row}, {"index": 5, "value": "not an object"}]
    assert list(numbered_rows({"rows": items})) == [(5, row), (6, "not an object")]
    mapping = parse_mapping({"lookup": {"email": "Email"}, "columns": {"City": "city"}}, CATALOGUE)
    outcome = commands_of(mapping, numbered_rows({"rows": items}), "bf-1", CATALOGUE)
    assert [c.deduplication_id for c in outcome.commands] == ["backfill:bf-1:5"]
    assert [i.report() for i in outcome.invalid] == [{"row": 6, "reason": "the row is not an object of column: value"}]


def test_a_row_with_nothing_but_its_key_is_invalid_as_no_data():
    assert invalid({"Email": "a@example.com"}, {"lookup": {"email": "Email"}, "columns": {"City": "city"}}).startswith(
        "NoData:"
    )


# --- the mapping, checked before the first row is read ------------------------------------------------
def refused(mapping):
    with pytest.raises(InvalidRequest) as caught:
        parse_mapping(mapping, CATALOGUE)
    return str(caught.value)


def test_an_unknown_attribute_is_refused_with_the_closest_name():
    assert "did you mean 'firstName'?" in refused({"lookup": {"email": "Email"}, "columns": {"Name": "firstNam"}})
    assert "did you mean 'acceptsSms'?" in refused(
        {"lookup": {"email": "Email"}, "columns": {"SMS": "preferences.acceptsSMs"}}
    )
    assert "never writable" in refused({"lookup": {"email": "Email"}, "columns": {"Type": "contactType"}})


def test_custom_attributes_of_the_tenant_may_be_mapped():
    mapping = parse_mapping({"lookup": {"email": "Email"}, "columns": {"Store": "favoriteStore"}}, CATALOGUE)
    assert command({"Email": "a@example.com", "Store": "Lund"}, mapping.source).command["attributes"] == {
        "favoriteStore": "Lund"
    }


def test_two_columns_mapped_to_one_attribute_are_refused():
    reason = refused({"lookup": {"email": "Email"}, "columns": {"Phone": "mobilePhone", "Mobile": "mobilePhone"}})
    assert "'Phone' and 'Mobile' are both mapped to 'mobilePhone'" in reason
    assert "lookup key" in refused({"lookup": {"email": "Email"}, "columns": {"E-mail": "email"}})


def test_one_column_given_twice_in_the_json_is_refused():
    with pytest.raises(InvalidRequest, match="'Phone' given twice"):
        load_mapping('{"lookup": {"email": "Email"}, "columns": {"Phone": "mobilePhone", "Phone": "city"}}')


def test_a_mapping_that_is_not_json_says_where_it_breaks():
    with pytest.raises(InvalidRequest, match=r"not JSON \(.* at line 1 column 21\) and not a preset"):
        load_mapping('{"preset": "shopify"')


@pytest.mark.parametrize(
    ("mapping", "says"),
    [
        ({"columns": {}}, "'lookup' must name one key column"),
        ({"lookup": {"customKey": "Id"}}, "KEY one of email, mobilePhone, socialSecurityNumber"),
        ({"lookup": {"email": "Email"}, "colums": {}}, "unknown fields ['colums']"),
        ({"lookup": {"email": "Email"}, "columns": {"P": {"attribute": "mobilePhone", "transform": "phone"}}},
         "no transform 'phone'"),
        ({"lookup": {"email": "Email"}, "columns": {"P": {"attribute": "mobilePhone", "transform": ["phone"]}}},
         "no transform ['phone']"),
        ({"lookup": {"email": {"column": "Email", "transform": {}}}}, "lookup: no transform {}"),
        ("magento", "no preset 'magento'"),
        ({"preset": ["shopify"]}, "no preset ['shopify']"),
    ],
)  # fmt: skip
def test_a_mapping_that_breaks_a_rule_says_which(mapping, says):
    assert says in refused(mapping)


def test_a_preset_can_be_given_by_name_or_extended():
    assert load_mapping("shopify") == "shopify"
    extended = parse_mapping(json.loads('{"preset": "woocommerce", "columns": {"Store": "favoriteStore"}}'), CATALOGUE)
    assert "Billing City" in extended.column_names and "Store" in extended.column_names


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_is_a_valid_mapping(preset):
    assert parse_mapping(preset, CATALOGUE).lookup_key == "email"


def test_a_header_is_checked_for_every_column_the_mapping_names_a_bom_accepted():
    mapping = parse_mapping("shopify", CATALOGUE)
    assert mapping.missing_columns(header_of("\ufeff" + ",".join(SHOPIFY_HEADER) + "\n")) == []
    assert mapping.missing_columns(header_of("Email,First Name\n"))[:2] == ["Last Name", "Default Address Address1"]


@pytest.mark.parametrize(
    ("create", "problem"),
    [({"contactType": "Member"}, "may not be Member"), ({"bogus": 1}, "unknown fields"), ("Contact", "an object")],
)
def test_a_mapping_with_a_wrong_create_if_missing_is_refused_before_any_row(create, problem):
    with pytest.raises(InvalidRequest, match=problem):
        parse_mapping(load_mapping(json.dumps({"preset": "shopify", "createIfMissing": create})), CATALOGUE)
