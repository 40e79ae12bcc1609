"""A backfill's mapping: which column is which Engage attribute, and which column is the lookup key.

Checked whole before the first row is read, with the name rules of every command: an unknown
attribute is refused with the closest known name, two columns for one attribute are refused.

    {"lookup": {"email": "Email"},
     "columns": {"First Name": "firstName", "Phone": {"attribute": "mobilePhone", "transform": "internationalPhone"}},
     "createIfMissing": {"contactType": "Contact"}}

or a preset by name (`shopify`, `woocommerce`), or `{"preset": "shopify", "createIfMissing": {...}}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..domain.attributes import PREFERENCE_FIELDS, AttributeCatalogue, unknown_name
from ..domain.creation import CREATE_LOOKUP_KEYS, parse_create_if_missing
from ..ecommerce.platforms import TRANSFORMS, country_code
from ..errors import InvalidRequest

# ISO 3166-1 alpha-2: a two-letter code that names no country is an invalid row, not a silent drop.
_COUNTRY_TABLE = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY "
    "BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM "
    "FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT "
    "JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN "
    "MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT "
    "PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL "
    "TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
)
COUNTRY_CODES = frozenset(_COUNTRY_TABLE.split(" "))


def yes_no(value: Any) -> bool | None:
    """A spreadsheet's yes/no (Shopify's "Accepts Email Marketing"): true or false; anything else is nothing."""
    if not isinstance(value, str):
        return value if isinstance(value, bool) else None
    return {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}.get(value.strip().lower())


def known_country(value: Any) -> str | None:
    code = country_code(value)
    return code if code in COUNTRY_CODES else None


ROW_TRANSFORMS: dict[str, Callable[[Any], Any]] = {**TRANSFORMS, "yesNo": yes_no, "countryCode": known_country}
# what a cell that a transform cannot read was expected to be (the reason of its invalid row)
EXPECTED = {
    "internationalPhone": "an international phone number (+46701234567)",
    "countryCode": "a two-letter country code (ISO 3166-1)",
    "consent": "a consent state (subscribed, not_subscribed, unsubscribed)",
    "yesNo": "yes or no",
}
MAPPING_FIELDS = frozenset({"lookup", "columns", "createIfMissing", "preset"})
# The header of Shopify's customer CSV export (Customers > Export), as the preset reads it and a test file holds it.
SHOPIFY_EXPORT_COLUMNS = (
    "Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing", "Default Address Company",
    "Default Address Address1", "Default Address Address2", "Default Address City", "Default Address Province Code",
    "Default Address Country Code", "Default Address Zip", "Default Address Phone", "Phone", "Accepts SMS Marketing",
    "Total Spent", "Total Orders", "Note", "Tax Exempt", "Tags",
)  # fmt: skip
PRESETS: dict[str, dict[str, Any]] = {
    # Shopify admin > Customers > Export (CSV for Excel, Numbers, or other spreadsheet programs)
    "shopify": {
        "lookup": {"email": "Email"},
        "columns": {
            "First Name": "firstName",
            "Last Name": "lastName",
            "Default Address Address1": "street",
            "Default Address City": "city",
            "Default Address Zip": "zipCode",
            "Default Address Country Code": {"attribute": "countryCode", "transform": "countryCode"},
            "Phone": {"attribute": "mobilePhone", "transform": "internationalPhone"},
            "Accepts Email Marketing": {"attribute": "preferences.acceptsEmail", "transform": "yesNo"},
            "Accepts SMS Marketing": {"attribute": "preferences.acceptsSms", "transform": "yesNo"},
        },
    },
    # WooCommerce > Customers > Download (the customer CSV export)
    "woocommerce": {
        "lookup": {"email": "Email"},
        "columns": {
            "First Name": "firstName",
            "Last Name": "lastName",
            "Billing Address 1": "street",
            "Billing City": "city",
            "Billing Postcode": "zipCode",
            "Billing Country": {"attribute": "countryCode", "transform": "countryCode"},
            "Billing Phone": {"attribute": "mobilePhone", "transform": "internationalPhone"},
        },
    },
}
COLUMN_MAX = 200
BACKFILL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Column:
    name: str  # the column's name in the header (a key of a JSON Lines object)
    attribute: str  # Engage's name; `preferences.acceptsEmail` for a preference
    transform: str = "text"


@dataclass(frozen=True)
class RowMapping:
    lookup_key: str  # email, mobilePhone or socialSecurityNumber
    key_column: Column
    columns: tuple[Column, ...]
    create_if_missing: Mapping[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict, compare=False)  # as given, for the Step Functions input

    @property
    def column_names(self) -> list[str]:
        return [self.key_column.name, *(c.name for c in self.columns)]

    def missing_columns(self, header: Iterable[str]) -> list[str]:
        """The columns the mapping names that the header lacks (refused before any row is sent)."""
        present = set(header)
        return [name for name in dict.fromkeys(self.column_names) if name not in present]


def refuse(message: str, field_name: str = "mapping") -> InvalidRequest:
    return InvalidRequest(f"mapping: {message}", {"field": field_name})


def load_mapping(text: str) -> Any:
    """A mapping's JSON text or a preset's name; a JSON object naming one column twice is refused."""
    if text.strip() in PRESETS:
        return text.strip()

    def no_twice(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [k for k, _ in pairs]
        twice = sorted({k for k in names if names.count(k) > 1})
        if twice:
            raise refuse(f"{', '.join(repr(t) for t in twice)} given twice")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_twice)
    except json.JSONDecodeError as exc:  # where it breaks, never the text itself
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise refuse(f"not JSON ({where}) and not a preset ({', '.join(PRESETS)})") from None


def parse_mapping(data: Any, catalogue: AttributeCatalogue) -> RowMapping:
    """A mapping (JSON object, or a preset's name) checked whole; InvalidRequest says what is wrong."""
    data = _with_preset(data)
    unknown = sorted(set(data) - MAPPING_FIELDS)
    if unknown:
        raise refuse(f"unknown fields {unknown}; it takes {', '.join(sorted(MAPPING_FIELDS))}")
    lookup_key, key_column = _parse_lookup(data.get("lookup"))
    columns = data.get("columns", {})
    if not isinstance(columns, dict):
        raise refuse("'columns' must be an object: column name -> attribute", "columns")
    parsed = tuple(_parse_column(name, target, catalogue) for name, target in columns.items())
    _refuse_one_attribute_twice(parsed, lookup_key, key_column)
    create = data.get("createIfMissing")
    if create is not None:
        try:  # the command's own rule, before any row: a wrong one would make every row invalid
            parse_create_if_missing(create, creates_member=False)
        except InvalidRequest as exc:
            raise refuse(exc.message, "createIfMissing") from None
    return RowMapping(lookup_key, key_column, parsed, create, data)


def _with_preset(data: Any) -> dict[str, Any]:
    if isinstance(data, str):
        data = {"preset": data}
    if not isinstance(data, dict):
        raise refuse("must be a JSON object or a preset's name")
    if "preset" not in data:
        return data
    preset = data["preset"]
    if not isinstance(preset, str) or preset not in PRESETS:
        raise refuse(f"no preset {preset!r}; there are {', '.join(PRESETS)}", "preset")
    given = {k: v for k, v in data.items() if k != "preset"}
    columns = {**PRESETS[preset]["columns"], **given.pop("columns", {})}
    return {**PRESETS[preset], **given, "columns": columns}


def _parse_lookup(lookup: Any) -> tuple[str, Column]:
    keys = ", ".join(CREATE_LOOKUP_KEYS)
    if not isinstance(lookup, dict) or len(lookup) != 1 or next(iter(lookup)) not in CREATE_LOOKUP_KEYS:
        raise refuse(f"'lookup' must name one key column: {{KEY: COLUMN}}, KEY one of {keys}", "lookup")
    key, target = next(iter(lookup.items()))
    name, transform = _column_source(target, "lookup")
    return key, Column(name, key, _transform(transform, "lookup", "lookup"))


def _transform(transform: object, where: str, field_name: str) -> str:
    """A transform's name, one of ROW_TRANSFORMS (a JSON value that is no name is refused as well)."""
    if not isinstance(transform, str) or transform not in ROW_TRANSFORMS:
        raise refuse(f"{where}: no transform {transform!r}; there are {', '.join(sorted(ROW_TRANSFORMS))}", field_name)
    return transform


def _column_source(target: Any, where: str) -> tuple[str, object]:
    """(column name, transform) from "Column" or {"column": "Column", "transform": "..."}."""
    name: object
    transform: object
    if isinstance(target, str):
        name, transform = target, "text"
    elif isinstance(target, dict) and set(target) <= {"column", "transform"}:
        name, transform = target.get("column"), target.get("transform", "text")
    else:
        raise refuse(f'{where}: give a column name or {{"column": ..., "transform": ...}}', where)
    if not isinstance(name, str) or not name.strip() or len(name) > COLUMN_MAX:
        raise refuse(f"{where}: a column name must be a non-empty string", where)
    return name, transform


def _parse_column(name: str, target: Any, catalogue: AttributeCatalogue) -> Column:
    if len(name) > COLUMN_MAX or not name.strip():
        raise refuse("a column name must be a non-empty string of at most 200 characters", "columns")
    attribute: object
    transform: object
    if isinstance(target, str):
        attribute, transform = target, "text"
    elif isinstance(target, dict) and set(target) <= {"attribute", "transform"}:
        attribute, transform = target.get("attribute"), target.get("transform", "text")
    else:
        raise refuse(f'column {name!r}: give an attribute or {{"attribute": ..., "transform": ...}}', "columns")
    if not isinstance(attribute, str) or not attribute:
        raise refuse(f"column {name!r}: the attribute must be a name", "columns")
    transform = _transform(transform, f"column {name!r}", "columns")
    problem = _attribute_problem(attribute, catalogue)
    if problem:
        raise refuse(f"column {name!r}: {problem}", "columns")
    return Column(name, attribute, transform)


def _attribute_problem(attribute: str, catalogue: AttributeCatalogue) -> str | None:
    if attribute.startswith("preferences."):
        child = attribute.split(".", 1)[1]
        return None if child in PREFERENCE_FIELDS else unknown_name(child, PREFERENCE_FIELDS, "preferences.")
    if attribute == "preferences":
        return "map each preference on its own: preferences.acceptsEmail, preferences.acceptsSms, ..."
    return catalogue.problem_with_name(attribute)


def _refuse_one_attribute_twice(columns: tuple[Column, ...], lookup_key: str, key_column: Column) -> None:
    seen: dict[str, str] = {}
    for column in columns:
        if column.attribute in seen:
            raise refuse(
                f"columns {seen[column.attribute]!r} and {column.name!r} are both mapped to "
                f"{column.attribute!r}: one column an attribute",
                "columns",
            )
        seen[column.attribute] = column.name
    other = seen.get(lookup_key)
    if other is not None and other != key_column.name:
        raise refuse(
            f"column {other!r} is mapped to {lookup_key!r}, the lookup key, which column {key_column.name!r} holds",
            "columns",
        )
