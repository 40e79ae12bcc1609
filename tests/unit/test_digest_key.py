"""Every digest of personal data is keyed (docs/security-and-privacy.md, "Digests"): a list of candidate addresses
cannot be hashed and matched against a message group, a table key or an audit subject."""

from __future__ import annotations

import hashlib

import pytest
from engage_contact.aws.secrets import digest_key_from_secret
from engage_contact.domain import digest_key as digests
from engage_contact.domain.contacts import message_group, source_customer_group
from engage_contact.errors import ConfigurationError, DependencyUnavailable
from engage_contact.privacy.records import email_digest, erasure_mark


def test_a_message_group_is_no_plain_hash_of_the_address():
    group = message_group({"lookup": {"email": "anna@example.com"}})
    plain = hashlib.sha256(b"anna@example.com").hexdigest()
    assert group.startswith("email:") and plain[:32] not in group
    assert email_digest("anna@example.com") != plain


def test_another_key_makes_other_digests_and_the_same_key_the_same():
    command = {"lookup": {"mobilePhone": "+46701234567"}}
    first = (message_group(command), source_customer_group("shopify:shop:1"), erasure_mark("email:x"))
    assert first == (message_group(command), source_customer_group("shopify:shop:1"), erasure_mark("email:x"))
    digests.install(lambda: b"another deployment's key, 32 characters or more")
    other = (message_group(command), source_customer_group("shopify:shop:1"), erasure_mark("email:x"))
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_each_use_has_digests_of_its_own():
    assert digests.keyed("email", "anna@example.com") != digests.keyed("customer", "anna@example.com")
    assert digests.subkey("sent digests") != digests.subkey("audit subjects")


def test_without_a_key_a_digest_names_the_variable(monkeypatch):
    monkeypatch.setattr(digests, "_source", None)
    with pytest.raises(ConfigurationError, match="DIGEST_KEY_SECRET_ARN"):
        message_group({"lookup": {"email": "anna@example.com"}})


@pytest.mark.parametrize("value", ["", "   ", "short-key", "x" * 31])
def test_a_digest_key_shorter_than_32_characters_is_refused_without_quoting_it(value):
    with pytest.raises(DependencyUnavailable, match="fewer than 32 characters") as refused:
        digest_key_from_secret(value)
    assert value.strip() == "" or value not in str(refused.value)


def test_the_digest_key_is_the_secret_as_it_is_trimmed():
    assert digest_key_from_secret(" " + "k" * 64 + "\n") == b"k" * 64
