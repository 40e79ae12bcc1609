"""template.yaml lints clean, builds, and the built artifact works on its own as Lambda would run it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from local.engage_sandbox import DEMO_CONTACTS
from local.lambda_python import find_lambda_python

from ..conftest import DIGEST_KEY, FUNCTIONS, ROOT, SANDBOX_KEY

pytestmark = pytest.mark.slow
REGION = "eu-north-1"
ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": REGION}
# The Lambda Python runtime brings boto3 and its own dependencies; nothing else.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "dateutil", "six.py")


def tool(name):
    found = shutil.which(name) or str(ROOT / ".venv-sam" / "bin" / name)
    if not os.path.exists(found):
        pytest.fail(f"{name} is not installed: run `make deps`")
    return found


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, ...) as plain values."""


CfnLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_scalar(node)
        if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
    ),
)


def logical_id(value):
    """The resource a !Ref or !GetAtt names."""
    return (value[0] if isinstance(value, list) else value).split(".")[0]


@pytest.fixture(scope="module")
def template():
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


def test_cfn_lint_finds_nothing():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--regions", REGION, "--", "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes():
    result = subprocess.run(
        [tool("sam"), "validate", "--lint", "--region", REGION], cwd=ROOT, capture_output=True, text=True, env=ENV
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_queues_are_fifo_without_content_based_deduplication_and_redrive_to_fifo_dlqs(template):
    resources = template["Resources"]
    queues = {k: v for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    assert len(queues) == 10  # update, promote, change type, erase, backfill: each with its dead-letter queue
    for name, queue in queues.items():
        if name.startswith("Backfill"):  # standard: chunks of rows, made safe by their records (docs/design.md)
            assert "FifoQueue" not in queue["Properties"], name
        else:
            assert queue["Properties"]["FifoQueue"] is True, name
            assert queue["Properties"]["ContentBasedDeduplication"] is False, name
        if not name.endswith("DeadLetterQueue"):
            redrive = queue["Properties"]["RedrivePolicy"]
            assert logical_id(redrive["deadLetterTargetArn"]) == name.removesuffix("Queue") + "DeadLetterQueue"
            # one number, written once: the functions dead-letter the last receive themselves, with its reason
            assert (
                redrive["maxReceiveCount"]
                == (template["Globals"]["Function"]["Environment"]["Variables"]["SQS_MAX_RECEIVE_COUNT"])
            )
            # visibility comfortably above the function's timeout, so a batch is never handed out twice
            function = next(
                f
                for f in template["Resources"].values()
                if f["Type"] == "AWS::Serverless::Function"
                and "Queue" in f["Properties"].get("Events", {})
                and logical_id(f["Properties"]["Events"]["Queue"]["Properties"]["Queue"]) == name
            )
            timeout = function["Properties"].get("Timeout", template["Globals"]["Function"]["Timeout"])
            assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_the_outage_tolerance_gives_the_receive_counts_within_retention_and_idempotency(template):
    from engage_contact.aws.idempotency import EXPIRES_AFTER_SECONDS
    from engage_contact.triggers.backoff import backoff_for, max_receive_count_for, waited_before

    parameter = template["Parameters"]["OutageToleranceHours"]
    rows = template["Mappings"]["QueueOutageTolerance"]
    assert set(rows) == {str(h) for h in parameter["AllowedValues"]} and str(parameter["Default"]) in rows
    assert template["Globals"]["Function"]["Environment"]["Variables"]["SQS_MAX_RECEIVE_COUNT"] == [
        "QueueOutageTolerance", "OutageToleranceHours", "MaxReceiveCount"]  # fmt: skip
    for hours, row in rows.items():
        count = row["MaxReceiveCount"]
        assert count == max_receive_count_for(float(hours)), hours
        assert waited_before(count) >= float(hours) * 3600  # the outage is covered ...
        life = waited_before(count) + backoff_for(count)  # ... and a message's whole life in its queue
        assert life < EXPIRES_AFTER_SECONDS, hours
        for name, queue in template["Resources"].items():
            if queue["Type"] == "AWS::SQS::Queue":
                assert queue["Properties"]["MessageRetentionPeriod"] > life, name


def test_each_function_reports_batch_item_failures_with_bounded_concurrency(template):
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    operations = {k: v for k, v in functions.items() if "Queue" in v["Properties"].get("Events", {})}
    assert {f["Properties"]["CodeUri"].strip("/").split("/")[-1] for f in operations.values()} == {
        *FUNCTIONS,
        "erase_contact",
        "backfill_writer",
    }
    assert set(functions) - set(operations) == set(INTAKE_QUEUES)  # the intake: no queue of its own
    for function in operations.values():
        sqs = function["Properties"]["Events"]["Queue"]["Properties"]
        assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert "MaximumConcurrency" in sqs["ScalingConfig"]
        env = function["Properties"]["Environment"]["Variables"]
        assert logical_id(env["DEAD_LETTER_QUEUE_URL"]).endswith("DeadLetterQueue")


# The intake functions only send, and only to the queues of the functions that apply what they queue.
INTAKE_QUEUES = {"IntakeWebhooksFunction": ("UpdateContactQueue", "PromoteContactQueue", "EraseContactQueue"),
                 "IntakeBackfillFunction": ("BackfillQueue",)}  # fmt: skip


def test_policies_grant_each_function_only_its_own_queues(template):
    for name, function in template["Resources"].items():
        if function["Type"] != "AWS::Serverless::Function":
            continue
        stem = "Backfill" if name == "BackfillWriterFunction" else name.removesuffix("Function")
        statements = function["Properties"]["Policies"][0]["Statement"]
        for statement in statements:
            statement = statement[1] if isinstance(statement, list) else statement  # !If [condition, it, NoValue]
            assert "*" not in json.dumps(statement["Action"]), statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("sqs:") for a in actions):
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                if name in INTAKE_QUEUES:
                    assert actions == ["sqs:SendMessage"], (name, statement)
                allowed = INTAKE_QUEUES.get(name, (stem,))
                assert all(logical_id(r).startswith(allowed) for r in resources), (name, statement)


UNUSED_POWERTOOLS = re.search(r"^UNUSED = (.+)$", (ROOT / "layers" / "engage_common" / "Makefile").read_text(),
                              re.MULTILINE).group(1)  # fmt: skip


# --- sam build, and the built artifact on its own -------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    lambda_python = find_lambda_python()
    if lambda_python is None:
        if os.environ.get("CI"):
            pytest.fail("python3.13 (the Lambda runtime's version) is needed for sam build")
        pytest.skip("python3.13 is not installed here; sam build needs it")
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    env = {**ENV, "PATH": f"{Path(lambda_python).parent}{os.pathsep}{ENV['PATH']}"}
    result = subprocess.run(
        [tool("sam"), "build", "--build-dir", str(build_dir)], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir, lambda_python


@pytest.fixture(scope="module")
def runtime_sdk(tmp_path_factory):
    """A folder with only what the Lambda runtime itself provides (boto3 and its dependencies)."""
    import boto3

    site = Path(boto3.__file__).parent.parent
    folder = tmp_path_factory.mktemp("runtime-sdk")
    for name in RUNTIME_PROVIDED:
        (folder / name).symlink_to(site / name)
    return folder


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


INVOKE = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2], sys.argv[3]]  # function, layer, runtime SDK: Lambda's order
    import app
    class Context:
        def get_remaining_time_in_millis(self):
            return 30000
    result = app.lambda_handler(json.loads(sys.argv[4]), Context())
    import requests, engage_contact
    boto3 = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "s3transfer"))
    batch = sorted(m for m in sys.modules if m.startswith("aws_lambda_powertools.utilities.batch"))
    print(json.dumps({"result": result, "requests": requests.__file__, "layer": engage_contact.__file__,
                      "boto3": boto3, "batch": batch}))
""")


@pytest.mark.parametrize(
    ("function", "command", "check"),
    [
        (
            "update_contact",
            {"contactId": DEMO_CONTACTS[0]["id"], "attributes": {"city": "Visby"}},
            lambda c: c["city"] == "Visby",
        ),
        ("promote_contact", {"contactId": DEMO_CONTACTS[1]["id"]}, lambda c: c["contactType"] == "Member"),
        (
            "change_contact_type",
            {"contactId": DEMO_CONTACTS[2]["id"], "contactTypeId": "Contact"},
            lambda c: c["contactType"] == "Contact",
        ),
    ],
)
def test_built_function_runs_with_only_its_layer(built, runtime_sdk, moto_server, sandbox, function, command, check):
    import boto3

    build_dir, lambda_python = built

    def moto(service):
        return boto3.client(service, region_name=REGION, endpoint_url=moto_server, aws_access_key_id="testing",
                            aws_secret_access_key="testing")  # fmt: skip

    arn = moto("secretsmanager").create_secret(Name=f"engage-key-{function}", SecretString=SANDBOX_KEY)["ARN"]
    digest_key = moto("secretsmanager").create_secret(Name=f"digest-key-{function}", SecretString=DIGEST_KEY)["ARN"]
    table = f"budget-{function}"
    moto("dynamodb").create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    function_dir = build_dir / (function.title().replace("_", "") + "Function")
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ENGAGE_BASE_URL": sandbox.url,
        "ENGAGE_API_KEY_SECRET_ARN": arn,
        "DIGEST_KEY_SECRET_ARN": digest_key,
        "WEBHOOK_SIGNING": "off",
        "IDEMPOTENCY_TABLE": table,  # the rate budget's turns are leased from it, without a boto3 client
    }
    result = subprocess.run(
        [
            lambda_python,
            "-S",
            "-c",
            INVOKE,
            str(function_dir),
            str(build_dir / "EngageLayer" / "python"),
            str(runtime_sdk),
            json.dumps(command),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert str(build_dir) in answer["requests"] and str(build_dir) in answer["layer"]
    assert check(sandbox.state.get_contact(command["contactId"]))
    assert answer["result"]["contactId"] == command["contactId"]
    # a plain command's cold start builds no boto3 client: the Engage key and the budget's lease go without one,
    # and it loads no SQS batch utility
    assert answer["boto3"] == [] and answer["batch"] == []
    lease = moto("dynamodb").get_item(TableName=table, Key={"id": {"S": "rate-budget"}})
    assert "Item" in lease  # the shared budget was consulted


def test_the_built_layer_ships_compiled_for_the_runtime(built):
    """Lambda mounts the layer read-only: a module without its .pyc there is compiled at every cold start."""
    build_dir, _ = built
    site = build_dir / "EngageLayer" / "python"
    unused = re.compile(UNUSED_POWERTOOLS)
    sources = [p for p in site.rglob("*.py") if "bin" not in p.relative_to(site).parts]
    assert any(p.parts[-2:] == ("engage_contact", "handler.py") for p in sources)
    assert any("aws_lambda_powertools" in p.parts for p in sources)
    uncompiled = []
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        # PEP 552 flags: 0b01, hash-based and never checked against its source (the layer cannot change)
        if not compiled.exists() or int.from_bytes(compiled.read_bytes()[4:8], "little") != 0b01:
            uncompiled.append(str(source.relative_to(site)))
    assert [s for s in uncompiled if not unused.search(s)] == []
    assert uncompiled  # what no function imports is left out, or the layer passes its 10 MB


def test_no_function_imports_what_the_layer_leaves_uncompiled():
    """The Powertools parts the layer build leaves uncompiled are imported nowhere in the code that ships."""
    shipped = [
        *(ROOT / "layers" / "engage_common" / "engage_contact").rglob("*.py"),
        *(ROOT / "functions").rglob("*.py"),
    ]
    imported = {
        m.replace(".", "/") + "/" for p in shipped for m in re.findall(r"aws_lambda_powertools[\w.]*", p.read_text())
    }
    assert [m for m in imported if re.search(UNUSED_POWERTOOLS, m)] == []


def test_each_function_reserves_its_concurrency_and_a_queue_consumer_keeps_room_for_the_api(template):
    """Reserved per function (a slow Engage cannot take the account's whole concurrency); an operation function's
    default reservation holds its queue's most batches (QueueMaxConcurrency) and API requests besides."""
    parameters = template["Parameters"]
    most_batches = max(parameters["QueueMaxConcurrency"]["AllowedValues"])
    reserved = 0
    for name, function in template["Resources"].items():
        if function["Type"] != "AWS::Serverless::Function":
            continue
        if name == "BackfillWriterFunction":  # paced, not spread: as many containers as its poller may run, no more
            queue = function["Properties"]["Events"]["Queue"]["Properties"]
            reserved_here = function["Properties"]["ReservedConcurrentExecutions"]
            assert reserved_here == queue["ScalingConfig"]["MaximumConcurrency"] == 2  # Lambda's smallest: no throttle
            variables = function["Properties"]["Environment"]["Variables"]
            assert variables["BACKFILL_WRITER_CONTAINERS"] == str(reserved_here)
            continue
        condition, parameter, _ = function["Properties"]["ReservedConcurrentExecutions"]  # !If [reserves, n, none]
        assert parameter == f"{name.removesuffix('Function')}Concurrency" and condition.startswith("Reserves")
        default = parameters[parameter]["Default"]
        if "Queue" in function["Properties"].get("Events", {}):
            assert default > most_batches, (name, default)
        reserved += default
    assert reserved <= 1000 - 100  # the default account limit less the 100 AWS keeps unreserved


def test_every_api_route_sets_the_integration_timeout_and_throttling_answers_503(template):
    for function in template["Resources"].values():
        for event in function.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "Api":
                assert event["Properties"]["TimeoutInMillis"] == 29000
    failure = template["Resources"]["ContactsApi"]["Properties"]["GatewayResponses"]["INTEGRATION_FAILURE"]
    assert failure["StatusCode"] == 503 and "Retry-After" in failure["ResponseParameters"]["Headers"]
