"""The handler with fakes handed to its composition root: no network, no moto, no environment."""

from __future__ import annotations

import json

import pytest
from engage_contact.container import Container
from engage_contact.domain.attributes import AttributeCatalogue
from engage_contact.domain.command import Operation
from engage_contact.engage.client import Promotion
from engage_contact.errors import ContactNotFound
from engage_contact.handler import ContactFunction
from engage_contact.settings import Settings

ANNA = "430d3329-7eef-45c0-37f9-ae9300a0dace"


class FakeEngage:
    """Stands in for the Engage client: records each call and answers as a tenant with one contact would."""

    def __init__(self, member=False):
        self.calls = []
        self.member = member

    def find_contact_id(self, lookup, deadline):
        self.calls.append(("lookup", lookup.key, lookup.value))
        if lookup.value != "anna@example.com":
            raise ContactNotFound("no such contact")
        return ANNA

    def update_contact(self, contact_id, payload, deadline):
        self.calls.append(("update", contact_id, payload))
        return {"id": contact_id, **payload}

    def promote_to_member(self, contact_id, payload, deadline):
        self.calls.append(("promote", contact_id, payload))
        return Promotion({"id": contact_id, "contactType": "Member"}, already_member=self.member)

    def change_contact_type(self, contact_id, contact_type_id, deadline):
        self.calls.append(("contactType", contact_id, contact_type_id))


def function(operation, engage):
    settings = Settings(
        engage_base_url="https://tenant.voyado.com",
        api_key_secret_arn="arn:aws:secretsmanager:eu-north-1:123456789012:secret:key-AbCdEf",
        catalogue=AttributeCatalogue(frozenset({"shoeSize"})),
        webhook_signing=False,
    )
    return ContactFunction(operation, Container(settings, engage=engage))


def api_event(body):
    return {"httpMethod": "POST", "resource": "/contacts/update", "path": "/contacts/update",
            "requestContext": {"requestId": "r1"}, "headers": {}, "body": json.dumps(body)}  # fmt: skip


def test_a_direct_update_sends_only_the_sparse_payload():
    engage = FakeEngage()
    result = function(Operation.UPDATE, engage)(
        {"contactId": ANNA, "attributes": {"city": " Lund ", "careOf": ""}}, None
    )
    assert engage.calls == [("update", ANNA, {"city": "Lund"})]
    assert result["sent"] == {"city": "Lund"} and result["droppedEmpty"] == ["careOf"]


def test_a_lookup_is_resolved_before_the_update():
    engage = FakeEngage()
    function(Operation.UPDATE, engage)({"lookup": {"email": "anna@example.com"}, "attributes": {"shoeSize": 38}}, None)
    assert engage.calls == [("lookup", "email", "anna@example.com"), ("update", ANNA, {"shoeSize": 38})]


def test_an_already_member_promote_writes_its_attributes_by_an_update():
    engage = FakeEngage(member=True)
    result = function(Operation.PROMOTE, engage)({"contactId": ANNA, "attributes": {"memberNumber": "M1"}}, None)
    assert [c[0] for c in engage.calls] == ["promote", "update"] and result["alreadyMember"] is True


def test_a_bad_command_reaches_no_engage_call_and_keeps_its_error_name():
    engage = FakeEngage()
    with pytest.raises(Exception) as raised:
        function(Operation.UPDATE, engage)({"contactId": ANNA, "attributes": {"firstNam": "A"}}, None)
    assert type(raised.value).__name__ == "InvalidRequest" and engage.calls == []


def test_the_api_answers_the_contract_error_body():
    engage = FakeEngage()
    response = function(Operation.UPDATE, engage)(api_event({"lookup": {"email": "x@example.com"}}), None)
    assert response["statusCode"] == 400  # nothing to send: NoData, before any lookup
    body = json.loads(response["body"])
    assert body["error"] == "NoData" and engage.calls == []


def test_the_api_maps_an_engage_error_to_its_status():
    response = function(Operation.UPDATE, FakeEngage())(
        api_event({"lookup": {"email": "x@example.com"}, "attributes": {"city": "Lund"}}), None
    )
    assert response["statusCode"] == 404 and json.loads(response["body"])["error"] == "ContactNotFound"
