"""The sparse payload (docs/contract.md §3): one rule a test, plus properties."""

from __future__ import annotations

import pytest
from engage_contact.domain.attributes import AttributeCatalogue
from engage_contact.domain.sparse_payload import build_sparse_payload
from engage_contact.errors import InvalidRequest, NoData
from hypothesis import given, settings
from hypothesis import strategies as st

CATALOGUE = AttributeCatalogue(frozenset({"favoriteStore", "shoeSize"}))


def build(attributes, clear=(), **kwargs):
    return build_sparse_payload(attributes, clear, CATALOGUE, **kwargs)


def test_null_and_empty_and_blank_strings_are_left_out():
    payload = build({"lastName": "Examplesson", "street": None, "careOf": "", "city": "   "})
    assert payload.sent == {"lastName": "Examplesson"}
    assert sorted(payload.dropped_empty) == ["careOf", "city", "street"]


def test_strings_are_trimmed():
    assert build({"firstName": "  Anna \n"}).sent == {"firstName": "Anna"}


def test_false_is_kept_not_dropped():
    assert build({"preferences": {"acceptsSms": False}}).sent == {"preferences": {"acceptsSms": False}}


def test_zero_is_kept_not_dropped():
    assert build({"shoeSize": 0}).sent == {"shoeSize": 0}


def test_objects_empty_after_cleaning_are_left_out_with_dotted_paths():
    payload = build({"firstName": "Anna", "preferences": {"acceptsSms": None, "acceptsEmail": None}})
    assert payload.sent == {"firstName": "Anna"}
    assert payload.dropped_empty == ["preferences.acceptsSms", "preferences.acceptsEmail", "preferences"]


def test_nested_empties_are_dropped_at_any_depth():
    payload = build({"favoriteStore": {"a": {"b": [None, "", {"c": " "}]}, "d": 1}})
    assert payload.sent == {"favoriteStore": {"d": 1}}
    assert "favoriteStore.a.b.2.c" in payload.dropped_empty and "favoriteStore.a" in payload.dropped_empty


def test_clear_is_the_only_way_to_send_an_empty_value():
    payload = build({"lastName": "B"}, clear=["careOf"])
    assert payload.sent == {"lastName": "B", "careOf": ""}


def test_clear_alone_is_something_to_send():
    assert build({}, clear=["careOf"]).sent == {"careOf": ""}


def test_clear_and_a_value_for_the_same_name_is_an_error():
    with pytest.raises(InvalidRequest, match="careOf"):
        build({"careOf": "Berg"}, clear=["careOf"])


def test_clear_with_an_empty_value_for_the_same_name_is_fine():
    assert build({"careOf": ""}, clear=["careOf"]).sent == {"careOf": ""}


def test_misspelled_name_is_refused_with_the_closest_known_name():
    with pytest.raises(InvalidRequest, match="did you mean 'firstName'"):
        build({"firstNam": "Anna"})


def test_wrong_case_name_is_refused_with_the_right_case():
    with pytest.raises(InvalidRequest, match="did you mean 'lastName'"):
        build({"lastname": "B"})


def test_misspelled_preference_is_refused_with_a_suggestion():
    with pytest.raises(InvalidRequest, match=r"preferences\.acceptEmail'; did you mean 'acceptsEmail'"):
        build({"preferences": {"acceptEmail": True}})


def test_misspelled_name_in_clear_is_refused():
    with pytest.raises(InvalidRequest, match="did you mean 'careOf'"):
        build({}, clear=["careof"])


def test_unknown_name_with_an_empty_value_is_still_refused():
    with pytest.raises(InvalidRequest, match="firstNam"):
        build({"firstNam": "", "lastName": "B"})


@pytest.mark.parametrize("name", ["contactType", "id", "contactId", "age", "rfm", "nps.score", "retail.total"])
def test_never_writable_names_are_refused(name):
    with pytest.raises(InvalidRequest, match="never writable"):
        build({name: "x"})


def test_custom_attributes_are_writable_only_when_configured():
    assert build({"favoriteStore": "Lund"}).sent == {"favoriteStore": "Lund"}
    with pytest.raises(InvalidRequest, match="favoriteStore"):
        build_sparse_payload({"favoriteStore": "Lund"}, (), AttributeCatalogue())


def test_every_problem_is_named_at_once():
    with pytest.raises(InvalidRequest) as raised:
        build({"firstNam": "A", "contactType": "Member", "email": "nope"})
    assert len(raised.value.details["problems"]) == 3


def test_nothing_left_is_nodata():
    with pytest.raises(NoData) as raised:
        build({"street": "", "city": None})
    assert sorted(raised.value.details["droppedEmpty"]) == ["city", "street"]


def test_promote_may_send_nothing():
    assert build({"street": ""}, require_data=False).sent == {}


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"email": "anna-at-example"}, "email"),
        ({"mobilePhone": "0701234567"}, "mobilePhone"),
        ({"mobilePhone": "+46 70 123"}, "mobilePhone"),
        ({"birthDay": "1990-02-30"}, "birthDay"),
        ({"birthDay": "30/01/1990"}, "birthDay"),
        ({"preferences": {"acceptsSms": "yes"}}, "acceptsSms"),
        ({"preferences": "all"}, "preferences"),
        ({"firstName": {"nested": "x"}}, "firstName"),
        ({"consents": {"id": "x"}}, "consents"),
    ],
)
def test_values_engage_would_refuse_are_refused_here(attributes, message):
    with pytest.raises(InvalidRequest, match=message):
        build(attributes)


def test_preferences_cannot_be_cleared_as_a_whole():
    with pytest.raises(InvalidRequest, match="preferences"):
        build({}, clear=["preferences"])


def test_nesting_bomb_is_refused():
    value = "x"
    for _ in range(50):
        value = {"a": value}
    with pytest.raises(InvalidRequest, match="nested"):
        build({"favoriteStore": value})


# --- properties ---------------------------------------------------------------------------

KNOWN = sorted(CATALOGUE.known - {"preferences", "consents", "email", "mobilePhone", "birthDay"})
# visible text (hidden characters are refused: test_strict_input.py); white space at the ends is an empty part
text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp")), max_size=5)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), text, st.sampled_from(["", " ", "\t\n"]))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=10,
)


def _has_empty(value):
    if value is None or value == "" or value == {} or value == []:
        return True
    if isinstance(value, str):
        return value != value.strip()
    if isinstance(value, dict):
        return any(_has_empty(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_empty(v) for v in value)
    return False


def _count(value, kind):
    if isinstance(value, dict):
        return sum(_count(v, kind) for v in value.values())
    if isinstance(value, list):
        return sum(_count(v, kind) for v in value)
    return int(type(value) is kind and not value)


@settings(max_examples=300, deadline=None)
@given(
    attributes=st.dictionaries(
        st.sampled_from(["favoriteStore", "shoeSize", "firstName", "city"]), json_value, max_size=4
    ),
    clear=st.lists(st.sampled_from(["careOf", "street", "zipCode"]), max_size=3, unique=True),
    prefs=st.dictionaries(
        st.sampled_from(["acceptsEmail", "acceptsSms", "acceptsPostal"]),
        st.one_of(st.none(), st.booleans()),
        max_size=3,
    ),
)
def test_no_empty_value_ever_comes_out_unless_cleared(attributes, clear, prefs):
    attributes = {
        **{k: v for k, v in attributes.items() if k in ("favoriteStore", "shoeSize") or not isinstance(v, dict | list)},
        "preferences": prefs,
    }
    try:
        payload = build(attributes, clear)
    except NoData:
        assert not clear
        return
    for name, value in payload.sent.items():
        if name in clear:
            assert value == ""
        else:
            assert not _has_empty(value), (name, value)
    assert set(payload.sent) <= CATALOGUE.known
    # false and 0 survive: as many come out as went in
    for kind in (bool, int):
        assert _count(payload.sent, kind) == _count({k: attributes[k] for k in payload.sent if k in attributes}, kind)


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=12), value=st.text(min_size=1, max_size=5))
def test_only_known_names_ever_come_out(name, value):
    try:
        payload = build({name: value})
    except (InvalidRequest, NoData):
        return
    assert set(payload.sent) <= CATALOGUE.known


@pytest.mark.parametrize("name", ["email", "mobilePhone", "socialSecurityNumber", "externalId", "memberNumber"])
def test_an_identifier_may_not_be_cleared(name):
    with pytest.raises(InvalidRequest, match=f"'{name}' is an identifier"):
        build_sparse_payload({}, [name])


def test_an_identifier_may_be_changed():
    assert build_sparse_payload({"email": "new@example.com"}).sent == {"email": "new@example.com"}
