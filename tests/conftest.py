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
    sandbox_server.state.configure({"rateLimit": 200, "retryAfter": None,
                                    "customAttributes": ["favoriteStore", "shoeSize"],
                                    "memberRequired": ["email"], "apiKeys": [SANDBOX_KEY]})
    yield sandbox_server
    sandbox_server.state.reset(demo=True)


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session
