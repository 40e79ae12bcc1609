"""Shared fixtures: the Engage sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest
import requests

from local.engage_sandbox import EngageSandbox

SANDBOX_KEY = "sandbox-api-key"
# The tests' digest key (template's DigestKeySecret): installed for every test, and the value of the secret the
# functions read (`digest_key_secret`), so a digest a test makes is the one the function under test makes.
DIGEST_KEY = "tests-digest-key-0123456789abcdef0123456789abcdef"


LOOPBACK = {"127.0.0.1", "::1", "localhost"}
SHARED_SCOPES = {"module", "package", "class"}


def pytest_collection_modifyitems(config, items):
    """`make test` runs on every core (pytest-xdist, --dist loadgroup). Tests that share a fixture wider than
    one test but narrower than the session (a running stack, a SAM build) run on one worker, in their order,
    so that it is made once and a test that ends it (Ctrl-C to the stack) comes after the others; every other
    test goes to whichever worker is free. Session fixtures (the sandbox) are made once per worker."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    grouped = set()
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = any(d.scope in SHARED_SCOPES for name in info.names_closure
                     for d in info.name2fixturedefs.get(name, ()))  # fmt: skip
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
            pin_to_group(item, item.module.__name__)
            grouped.add(item)
    slow_first(items, grouped)


def slow_first(items, grouped):
    """The slow tests (processes, builds, soaks) and the groups of their modules are handed out first, the quick
    ones last: a worker then never starts a minute-long test while the other runs out of work. A module's group
    keeps its tests together and in their order (a test that ends the module's stack stays after the others)."""
    slow_modules = {item.module for item in items if item.get_closest_marker("slow")}

    def order(item):
        early = item in grouped or item.get_closest_marker("slow") is not None
        return item.module not in slow_modules, not early

    items.sort(key=order)  # stable: the collection's order within each rank


def pin_to_group(item, group):
    """xdist's scheduler reads a test's group from its node id (`...@group`), which xdist itself writes into
    `_nodeid`; pytest 9 keeps the node id in `_id` and never reads `_nodeid`, so no group ever reached the
    scheduler: each worker made every module's stack and SAM build of its own, again after every other module.
    The group goes where pytest reads the id."""
    if hasattr(item, "_id") and not item.nodeid.endswith(f"@{group}"):
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(f"{item.nodeid}@{group}")


@pytest.fixture(scope="session", autouse=True)
def only_loopback():
    """No test ever reaches past 127.0.0.1: a lookup of any other host fails at once, naming it."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK:
            raise OSError(f"tests reach only 127.0.0.1, not {name!r}")
        return real(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield


@pytest.fixture(scope="session", autouse=True)
def one_botocore_loader():
    """Every botocore session in a worker shares one data loader. Each test's `mock_aws` starts a fresh boto3
    session (as does each function container the tests start), and each fresh session parsed botocore's
    endpoints file and service models again: about 65 ms a session, a fifth of an integration test's time.
    The loader only reads botocore's own JSON files, which its sessions treat as read-only; within one
    session botocore shares them the same way."""
    import botocore.loaders
    import botocore.session

    made: dict[str | None, botocore.loaders.Loader] = {}
    real = botocore.session.create_loader

    def create_loader(search_path_string=None):
        if search_path_string not in made:
            made[search_path_string] = real(search_path_string)
        return made[search_path_string]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", create_loader)
        yield


@pytest.fixture(autouse=True)
def digest_key():
    """Every digest of personal data is keyed (engage_contact.domain.digest_key): by the tests' key, unless a
    function's container installs its own (read from `digest_key_secret`, the same value)."""
    from engage_contact.domain import digest_key as digests

    digests.install(lambda: DIGEST_KEY.encode())
    yield DIGEST_KEY.encode()
    digests.install(lambda: DIGEST_KEY.encode())


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
            "keyAttribute": "email",
            "latencyMs": 0,
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

    from local import moto_fixes

    moto_fixes.apply()  # moto's FIFO groups otherwise lose their order when visibilities expire together
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


@pytest.fixture
def digest_key_secret(aws):
    """The deployment's digest key in Secrets Manager (the template's DigestKeySecret), holding the tests' key."""
    import boto3

    return boto3.client("secretsmanager", region_name=REGION).create_secret(Name="digest-key", SecretString=DIGEST_KEY)[
        "ARN"
    ]


class SecretReadCounter:
    """Counts, from the outside, the reads the reader's Secrets Manager client makes from now on."""

    def __init__(self, reader):
        self.count = 0
        client = reader.client
        read = client.get_secret_string

        def counted(secret_id):
            self.count += 1
            return read(secret_id)

        client.get_secret_string = counted


# --- the functions, loaded as Lambda loads them ------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
FUNCTIONS = ("update_contact", "promote_contact", "change_contact_type")


def load_function(name: str, root=ROOT):
    """Import functions/<name>/app.py fresh (its container starts now) and return its module."""
    import importlib.util
    import sys

    path = root / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"{name}_app", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop(spec.name, None)
    spec.loader.exec_module(module)
    return module


class WebhooksThenUpdate:
    """The webhook intake and the update function as API Gateway, EventBridge and the update queue reach them:
    an API event (POST /webhooks/PLATFORM) or a Shopify EventBridge event goes to the intake, which queues;
    anything else (an SQS batch) to update."""

    def __init__(self, intake, update):
        self.intake, self.update = intake, update

    def __call__(self, event, context):
        from engage_contact.triggers.detect import is_api_event, is_shopify_eventbridge_event

        to_intake = is_api_event(event) or is_shopify_eventbridge_event(event)
        return (self.intake if to_intake else self.update)(event, context)


def load_webhooks_and_update(root=ROOT):
    """Both functions imported fresh in the current environment (the intake's variables are the update's plus
    the platforms'), as one handler: see `WebhooksThenUpdate`."""
    return WebhooksThenUpdate(load_function("intake_webhooks", root).lambda_handler,
                              load_function("update_contact", root).lambda_handler)  # fmt: skip


class Queues:
    """Each function's FIFO queue and dead-letter queue, in moto, without content-based deduplication."""

    def __init__(self, sqs):
        self.sqs = sqs
        self.urls = {}
        for name in FUNCTIONS:
            dlq = sqs.create_queue(QueueName=f"{name}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            import json

            url = sqs.create_queue(QueueName=f"{name}.fifo", Attributes={
                "FifoQueue": "true", "VisibilityTimeout": "60",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"}),
            })["QueueUrl"]  # fmt: skip
            self.urls[name] = url
            self.urls[f"{name}-dlq"] = dlq

    def messages(self, name, attributes=True):
        """Every visible message of a queue, left in place (received with visibility 0)."""
        return self.sqs.receive_message(
            QueueUrl=self.urls[name], MaxNumberOfMessages=10, VisibilityTimeout=0,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip

    def counts(self, name):
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.urls[name], AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def queues(aws):
    import boto3

    return Queues(boto3.client("sqs", region_name=REGION))


@pytest.fixture
def webhook_secret(aws):
    """The API's signing secret in Secrets Manager: (its ARN, its whsec_ value)."""
    import boto3

    from local.signing import new_secret

    value = new_secret()
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="webhook-secret", SecretString=value)[
        "ARN"
    ]
    return arn, value


@pytest.fixture
def idempotency_table(aws):
    import boto3

    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="idempotency",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    return "idempotency"


@pytest.fixture
def function_env(monkeypatch, sandbox, api_key_secret, digest_key_secret, queues, webhook_secret, idempotency_table):
    """The environment template.yaml gives a function, pointed at the sandbox and moto."""

    def env_for(name):
        values = {
            "ENGAGE_BASE_URL": sandbox.url,
            "ENGAGE_API_KEY_SECRET_ARN": api_key_secret,
            "DIGEST_KEY_SECRET_ARN": digest_key_secret,
            "ENGAGE_CUSTOM_ATTRIBUTES": "favoriteStore,shoeSize",
            "ENGAGE_TIMEOUT_SECONDS": "2",
            "DEAD_LETTER_QUEUE_URL": queues.urls[f"{name}-dlq"],
            "SQS_MAX_RECEIVE_COUNT": "5",
            "WEBHOOK_SECRET_ARN": webhook_secret[0],
            "WEBHOOK_SIGNING": "required",
            "IDEMPOTENCY_TABLE": idempotency_table,
            "POWERTOOLS_SERVICE_NAME": name,
        }
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        return values

    return env_for


@pytest.fixture
def functions(function_env):
    """The three functions' handlers, each imported in its own environment."""
    handlers = {}
    for name in FUNCTIONS:
        function_env(name)
        handlers[name] = load_function(name).lambda_handler
    return handlers


@pytest.fixture
def log_output():
    """Every line the functions' Powertools logger writes, formatted as in CloudWatch."""
    import io
    import logging

    from engage_contact.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    yield stream
    logger._logger.removeHandler(handler)
