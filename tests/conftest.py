"""Shared fixtures: the Engage sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest
import requests

from local.engage_sandbox import EngageSandbox

SANDBOX_KEY = "sandbox-api-key"


@pytest.fixture(scope="session")
def sandbox_server():
    with EngageSandbox(api_keys=(SANDBOX_KEY,)) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server):
    """The sandbox, reset to its demo contacts and default settings for each test."""
    sandbox_server.state.reset(demo=True)
    sandbox_server.state.configure(
        {
            "rateLimit": 200,
            "retryAfter": None,
            "customAttributes": ["favoriteStore", "shoeSize"],
            "memberRequired": ["email"],
            "apiKeys": [SANDBOX_KEY],
        }
    )
    yield sandbox_server
    sandbox_server.state.reset(demo=True)


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


# --- AWS through moto ----------------------------------------------------------------------

REGION = "eu-north-1"


@pytest.fixture
def aws(monkeypatch):
    """moto's in-process AWS, with credentials that can reach nothing real."""
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def api_key_secret(aws):
    import boto3

    client = boto3.client("secretsmanager", region_name=REGION)
    return client.create_secret(Name="engage-api-key", SecretString=SANDBOX_KEY)["ARN"]


class SecretReadCounter:
    """Counts GetSecretValue calls that really reach (moto's) Secrets Manager."""

    def __init__(self, reader):
        self.count = 0
        reader.provider.client.meta.events.register("before-call.secrets-manager.GetSecretValue", self._seen)

    def _seen(self, **_):
        self.count += 1
