"""`make bench`: what users pay for, measured side by side in one run.

Prints a table and writes .bench/results.json (`--results` elsewhere), the functions' own log
lines going to functions.log beside it. `--quick` (what CI runs) uses fewer repetitions;
`--only STEP,...` runs some steps. The figures are for the report, never asserted in tests.
Everything runs on 127.0.0.1: the sandbox, moto's server, the functions.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .engage_sandbox import EngageSandbox, sustained_rate
from .engage_sandbox.rates import busiest_second
from .engage_sandbox.state import Fault
from .lambda_runtime import LocalContext, sqs_event
from .template import LAYER, ROOT

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

REGION = "eu-north-1"
KEY = "bench-api-key"
RESULTS = ROOT / ".bench" / "results.json"
TARGETS = {
    "cold_start_ratio": ("≤ 1.3", lambda v: v <= 1.3),
    "cold_start_keyed_vs_client_ratio": ("≤ 1.3", lambda v: v <= 1.3),
    "warm_update_ratio": ("≤ 1.05", lambda v: v <= 1.05),
    "batch10_vs_single_ratio": ("≤ 2", lambda v: v <= 2),
    "batch100_speedup": ("≥ 5", lambda v: v >= 5),
    "secret_reads_per_1000": ("1", lambda v: v == 1),
    "layer_unzipped_mb": ("≤ 10", lambda v: v <= 10),
    "rate_peak_ratio": ("≤ 1.11", lambda v: v <= 1.11),
    "rate_sustained_ratio": ("≥ 0.9", lambda v: v >= 0.9),
    "rate_store_writes_per_request": ("≤ 0.2", lambda v: v <= 0.2),
    "rate_outage_peak_ratio": ("≤ 1.11", lambda v: v <= 1.11),
    "rate_outage_failures": ("0", lambda v: v == 0),
    "webhook_engage_calls_per_event": ("≤ 0.25", lambda v: v <= 0.25),
}
BUDGET = 45  # ENGAGE_REQUESTS_PER_SECOND's default
RATE_LATENCY_MS = 100

BASELINE_SCRIPT = """
import time
started = time.perf_counter()
import boto3, requests
print(time.perf_counter() - started)
"""
# What any boto3 program pays before its first call: the libraries and one client.
BASELINE_CLIENT_SCRIPT = """
import time
started = time.perf_counter()
import boto3, requests
boto3.client("dynamodb")
print(time.perf_counter() - started)
"""
# Powertools' API Gateway resolver, on top of what our handler imports anyway (Logger, Metrics).
RESOLVER_SCRIPT = """
import time
import aws_lambda_powertools.logging, aws_lambda_powertools.metrics
started = time.perf_counter()
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
APIGatewayRestResolver()
print(time.perf_counter() - started)
"""
# The first secret read in a container that already built its DynamoDB client (every keyed command does).
SECRET_SCRIPT = """
import sys, time
import boto3, requests
session = boto3.session.Session()
session.client("dynamodb")
started = time.perf_counter()
{read}
print(time.perf_counter() - started)
"""
SECRET_OURS = """
from engage_contact.aws.secrets_manager import SecretsManager
SecretsManager().get_secret_string(sys.argv[1])
"""
SECRET_POWERTOOLS = """
from aws_lambda_powertools.utilities import parameters
parameters.SecretsProvider(boto3_client=session.client("secretsmanager")).get(sys.argv[1], max_age=300)
"""
# The webhook intake: import, then one signed Shopify delivery verified, checked against the newest, queued.
INTAKE_COLD_SCRIPT = """
import time
started = time.perf_counter()
import json, sys
import app
class Context:
    aws_request_id = "cold"
    def get_remaining_time_in_millis(self):
        return 30000
answer = app.lambda_handler(json.loads(sys.argv[1]), Context())
assert answer["statusCode"] == 200, answer
print(time.perf_counter() - started)
"""
COLD_SCRIPT = """
import time
started = time.perf_counter()
import json, sys
import app
calls = []  # (start, end) of each Engage request
def observe(name, value):
    if name == "latency":
        now = time.monotonic()
        calls.append((now - value, now))
# the transport reports each request's latency (it was handed the client's hook when built): both get it
client = app.lambda_handler.container.engage
client.observe = client.transport.observe = observe
class Context:
    aws_request_id = "cold"
    def get_remaining_time_in_millis(self):
        return 30000
app.lambda_handler(json.loads(sys.argv[1]), Context())
# Engage's own answers are not the start: the time at least one request was in flight is taken out (a batch's
# groups send at once: their latencies overlap, and adding them up would take out more than passed)
waited, until = 0.0, float("-inf")
for start, end in sorted(calls):
    waited += max(end - max(start, until), 0.0)
    until = max(until, end)
print(time.perf_counter() - started - waited)
"""


def shipped_layer(folder: Path) -> Path:
    """The layer's package as `sam build` ships it (layers/engage_common/Makefile): compiled ahead, never checked.

    Lambda mounts the layer read-only, so a cold start there compiles nothing of ours; timing the source
    folder instead would add compiling (the dependencies here are compiled by pip, as in the layer).
    """
    import compileall
    import py_compile

    target = folder / "layer"
    if not target.exists():
        shutil.copytree(
            LAYER / "engage_contact", target / "engage_contact", ignore=shutil.ignore_patterns("__pycache__")
        )
        compileall.compile_dir(target, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return target


class Bench:
    api_key = KEY  # the sandbox's key, for the pieces in other modules (they import nothing from here)

    def __init__(self, quick: bool) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        from . import moto_fixes

        # As everywhere this project runs moto: without the fixes, two containers' leases of the rate budget
        # (`SET tat = tat + :span`) at the same moment could both read the same `tat` and take the same turns,
        # which DynamoDB never does (a write to an item is applied whole): the peak went over its bound then.
        moto_fixes.apply()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.quick = quick
        self.sandbox = EngageSandbox(api_keys=(KEY,), rate_limit=100_000).start()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        self.moto_url = "http://{}:{}".format(*self.moto.get_host_and_port())
        self.saved_env = dict(os.environ)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
            }
        )
        import boto3

        self.secret_arn = boto3.client("secretsmanager").create_secret(Name="bench-key", SecretString=KEY)["ARN"]
        self.digest_key_arn = boto3.client("secretsmanager").create_secret(
            Name="bench-digest-key", SecretString=uuid.uuid4().hex + uuid.uuid4().hex
        )["ARN"]
        from .signing import new_secret

        self.webhook_secret = new_secret()
        self.webhook_secret_arn = boto3.client("secretsmanager").create_secret(
            Name="bench-webhook", SecretString=self.webhook_secret
        )["ARN"]
        boto3.client("dynamodb").create_table(
            TableName="bench-idempotency",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        self.contacts = [self.sandbox.state.add_contact({"contactType": "Contact"}) for _ in range(20)]
        self.scratch = tempfile.TemporaryDirectory(prefix="bench-")

    def close(self) -> None:
        self.scratch.cleanup()
        self.sandbox.stop()
        self.moto.stop()
        os.environ.clear()
        os.environ.update(self.saved_env)

    # --- helpers -----------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        """A function's environment as the template gives it, pointed at the sandbox and moto."""
        return {
            "ENGAGE_BASE_URL": self.sandbox.url,
            "ENGAGE_API_KEY_SECRET_ARN": self.secret_arn,
            "DIGEST_KEY_SECRET_ARN": self.digest_key_arn,
            "WEBHOOK_SIGNING": "off",
            "IDEMPOTENCY_TABLE": "bench-idempotency",
            "ENGAGE_TIMEOUT_SECONDS": "5",
            "POWERTOOLS_METRICS_DISABLED": "false",
            **extra,
        }

    def load(self, function: str = "update_contact", **extra: str) -> Any:
        """A fresh container of a function (the update function unless named)."""
        from .stack import LocalFunction
        from .template import read_stack

        return LocalFunction(read_stack().function_named(function), self.env(**extra)).handler

    def latency(self, ms: int) -> None:
        self.sandbox.state.clear_faults()
        if ms:
            self.sandbox.state.add_faults([Fault.from_json({"kind": "latency", "route": "update", "ms": ms})])

    def bare_post(self, session: Any, contact: str, payload: dict) -> float:
        headers = {
            "apikey": KEY,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "bench/1",
        }
        started = time.perf_counter()
        session.post(
            f"{self.sandbox.url}/api/v2/contacts/{contact}", data=json.dumps(payload), headers=headers, timeout=10
        ).raise_for_status()
        return time.perf_counter() - started

    def sqs_event(self, commands: list[dict]) -> dict:
        messages = [
            {
                "MessageId": f"bench-{n}-{time.monotonic_ns()}",
                "ReceiptHandle": f"rh-{n}",
                "Body": json.dumps(c),
                "Attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": c["contactId"]},
            }
            for n, c in enumerate(commands)
        ]
        return sqs_event(messages, f"arn:aws:sqs:{REGION}:123456789012:UpdateContactQueue.fifo", REGION)

    # --- the figures ---------------------------------------------------------------------------------
    def cold_start(self) -> dict[str, float]:
        runs = 3 if self.quick else 9
        # The budget at its highest: a batch's ten requests are then not spread over 0.2 s by the pacing (at 45/s),
        # which the rate figures measure; the lease itself (one UpdateItem) is still paid.
        shipped = shipped_layer(Path(self.scratch.name))
        env = {
            **os.environ,
            **self.env(ENGAGE_REQUESTS_PER_SECOND="200"),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "update_contact"), str(shipped)]),
        }
        command = {"contactId": self.contacts[0], "attributes": {"city": "Cold"}}

        def run(script: str, *args: str) -> float:
            out = subprocess.run(
                [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, check=True
            ).stdout
            return float(out.strip().splitlines()[-1])

        signed_env = {**env, "WEBHOOK_SIGNING": "required", "WEBHOOK_SECRET_ARN": self.webhook_secret_arn}

        def run_signed(event: dict) -> float:
            out = subprocess.run(
                [sys.executable, "-c", COLD_SCRIPT, json.dumps(event)],
                env=signed_env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return float(out.strip().splitlines()[-1])

        import boto3

        # a batch whose one bad record is dead-lettered at once, with its reason (an SQS send on a cold path)
        dead_letters = boto3.client("sqs").create_queue(
            QueueName="bench-dead-letters.fifo", Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        dead_letter_env = {**env, "DEAD_LETTER_QUEUE_URL": dead_letters}

        def run_dead_letter(event: dict) -> float:
            out = subprocess.run(
                [sys.executable, "-c", COLD_SCRIPT, json.dumps(event)],
                env=dead_letter_env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return float(out.strip().splitlines()[-1])

        base, client, cold, keyed, api, batch, dead = [], [], [], [], [], [], []
        for n in range(runs):  # interleaved, so all see the same machine
            base.append(run(BASELINE_SCRIPT))
            client.append(run(BASELINE_CLIENT_SCRIPT))
            cold.append(run(COLD_SCRIPT, json.dumps(command)))
            # a first command with an idempotency key also builds the DynamoDB client of the idempotency store
            keyed.append(run(COLD_SCRIPT, json.dumps({**command, "idempotencyKey": f"cold-{time.time_ns()}-{n}"})))
            api.append(run_signed(self.signed_api_event(command)))
            batch.append(
                run(
                    COLD_SCRIPT,
                    json.dumps(
                        self.sqs_event(
                            [{"contactId": c, "attributes": {"city": f"Cold {n}"}} for c in self.contacts[:10]]
                        )
                    ),
                )
            )
            commands = [{"contactId": c, "attributes": {"city": f"Dead {n}"}} for c in self.contacts[:9]]
            dead.append(
                run_dead_letter(
                    self.sqs_event([*commands, {"contactId": self.contacts[9], "attributes": {"noSuchField": "x"}}])
                )
            )
        held = boto3.client("sqs").get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["All"])["Attributes"]
        if int(held["ApproximateNumberOfMessages"]) != runs:  # the figure would be of another path
            raise RuntimeError(f"the dead-letter runs dead-lettered {held['ApproximateNumberOfMessages']}, not {runs}")
        baseline, with_client = statistics.median(base), statistics.median(client)
        worse = max(statistics.median(api), statistics.median(batch))
        return {
            "cold_start_s": statistics.median(cold),
            "baseline_import_s": baseline,
            "cold_start_ratio": statistics.median(cold) / baseline,
            "cold_start_keyed_s": statistics.median(keyed),
            "cold_start_keyed_ratio": statistics.median(keyed) / baseline,
            "cold_start_signed_api_s": statistics.median(api),
            "cold_start_sqs_batch10_s": statistics.median(batch),
            "cold_start_sqs_dead_letter_s": statistics.median(dead),
            "baseline_client_s": with_client,
            "cold_start_keyed_vs_client_ratio": worse / with_client,
        }

    def intake_cold_start(self) -> dict[str, float]:
        """The webhook intake's cold start: import, and a first signed Shopify delivery verified and queued."""
        import boto3

        from .bench_webhooks import SECRET, customer, headers
        from .lambda_runtime import api_event

        runs = 3 if self.quick else 9
        shops = json.dumps({"shopify": {"bench.myshopify.com": {"secret": SECRET}}})  # the deliveries' shop
        shops_arn = boto3.client("secretsmanager").create_secret(Name="bench-intake", SecretString=shops)["ARN"]
        queue = boto3.client("sqs").create_queue(QueueName="bench-intake.fifo", Attributes={"FifoQueue": "true"})[
            "QueueUrl"
        ]
        shipped = shipped_layer(Path(self.scratch.name))
        env = {
            **os.environ,
            **self.env(SHOPS_SECRET_ARN=shops_arn, UPDATE_QUEUE_URL=queue),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "intake_webhooks"), str(shipped)]),
        }
        cold = []
        for n in range(runs):
            raw = json.dumps({**customer(n), "updated_at": f"2026-11-27T10:00:{n:02d}+01:00"}).encode()
            event = api_event("POST", "/webhooks/shopify", raw.decode(), headers(raw))
            out = subprocess.run(
                [sys.executable, "-c", INTAKE_COLD_SCRIPT, json.dumps(event)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            cold.append(float(out.strip().splitlines()[-1]))
        return {"cold_start_webhook_intake_s": statistics.median(cold)}

    def signed_api_event(self, command: dict) -> dict:
        from .lambda_runtime import api_event
        from .signing import signed_headers

        body = json.dumps(command)
        headers = {"Content-Type": "application/json", **signed_headers(self.webhook_secret, body)}
        return api_event("POST", "/contacts/update", body, headers)

    def warm_update(self) -> dict[str, float]:
        import requests

        # a command without a key: no idempotency record; no table: the budget's lease (a moto round trip) left out
        handler = self.load(ENGAGE_REQUESTS_PER_SECOND="200", IDEMPOTENCY_TABLE="")
        self.latency(10)
        contact = self.contacts[1]
        payload = {"city": "Warm", "street": "Street 1"}
        runs = 20 if self.quick else 100
        handler({"contactId": contact, "attributes": payload}, LocalContext())  # warm: key read, pool open
        session = requests.Session()
        self.bare_post(session, contact, payload)
        through, bare = [], []
        for _ in range(runs):
            started = time.perf_counter()
            handler({"contactId": contact, "attributes": payload}, LocalContext())
            through.append(time.perf_counter() - started)
            bare.append(self.bare_post(session, contact, payload))
        return {
            "warm_update_ms": statistics.median(through) * 1000,
            "bare_post_ms": statistics.median(bare) * 1000,
            "warm_update_ratio": statistics.median(through) / statistics.median(bare),
        }

    def batches(self) -> dict[str, Any]:
        import requests

        # The idempotency store is left out of the main figures: moto's DynamoDB is neither as fast nor as
        # concurrent as DynamoDB, and would measure moto. The row "with idempotency" keeps it in.
        handler = self.load(ENGAGE_REQUESTS_PER_SECOND="200", IDEMPOTENCY_TABLE="")
        with_idempotency = self.load(ENGAGE_REQUESTS_PER_SECOND="200")
        default_paced = self.load(IDEMPOTENCY_TABLE="")
        self.latency(50)
        session = requests.Session()
        single = [self.bare_post(session, self.contacts[0], {"city": "One"}) for _ in range(3 if self.quick else 10)]
        handler(self.sqs_event([{"contactId": self.contacts[0], "attributes": {"city": "warm"}}]), LocalContext())
        default_paced(self.sqs_event([{"contactId": self.contacts[0], "attributes": {"city": "warm"}}]), LocalContext())

        def run(h: Any, commands: list[dict]) -> float:
            started = time.perf_counter()
            result = h(self.sqs_event(commands), LocalContext())
            assert result == {"batchItemFailures": []}, result
            return time.perf_counter() - started

        ten = [{"contactId": c, "attributes": {"city": f"b10-{i}"}} for i, c in enumerate(self.contacts[:10])]
        batch10 = statistics.median(run(handler, ten) for _ in range(3 if self.quick else 7))
        run(with_idempotency, ten[:1])
        batch10_idempotent = statistics.median(run(with_idempotency, ten) for _ in range(3 if self.quick else 7))
        hundred: list[dict[str, Any]] = [
            {"contactId": self.contacts[i % 20], "attributes": {"city": f"b100-{i}"}} for i in range(100)
        ]
        self.sandbox.state.requests.clear()
        batch100 = run(handler, hundred)
        log = self.sandbox.state.request_log("update")
        order_kept = all(
            [json.loads(r["body"])["city"] for r in log if r["contactId"] == c]
            == [h["attributes"]["city"] for h in hundred if h["contactId"] == c]
            for c in self.contacts
        )
        batch100_paced = run(default_paced, hundred)
        sequential_runs = 20 if self.quick else 100
        sequential = sum(
            self.bare_post(session, self.contacts[i % 20], {"city": f"s-{i}"}) for i in range(sequential_runs)
        ) * (100 / sequential_runs)
        return {
            "single_request_ms": statistics.median(single) * 1000,
            "batch10_ms": batch10 * 1000,
            "batch10_vs_single_ratio": batch10 / statistics.median(single),
            "batch10_with_idempotency_ms": batch10_idempotent * 1000,
            "batch100_s": batch100,
            "sequential100_s": sequential,
            "batch100_speedup": sequential / batch100,
            "batch100_order_kept": order_kept,
            "batch100_default_pacing_s": batch100_paced,
            "batch100_speedup_default_pacing": sequential / batch100_paced,
        }

    def secret_reads(self) -> dict[str, float]:
        handler = self.load(ENGAGE_REQUESTS_PER_SECOND="200", IDEMPOTENCY_TABLE="")
        self.latency(0)
        client = handler.container.secrets.client
        read, reads = client.get_secret_string, []

        def counted(secret_id: str) -> str:  # counted outside the client
            reads.append(secret_id)
            return read(secret_id)

        client.get_secret_string = counted
        contact = self.contacts[2]
        for n in range(1000):
            handler({"contactId": contact, "attributes": {"city": f"s{n % 3}"}}, LocalContext())
        return {"secret_reads_per_1000": len(reads)}

    def rate_budget(self) -> dict[str, Any]:
        """A backlog through seven containers sharing the one budget; then again with the store down a while."""
        seconds = 8.0 if self.quick else 30.0
        full = RateRun(self, seconds).run()
        outage = RateRun(self, seconds, outage=(seconds / 3, 2 * seconds / 3)).run()
        return {
            "rate_budget": BUDGET,
            "rate_latency_ms": RATE_LATENCY_MS,
            "rate_seconds": seconds,
            "rate_containers": full["containers"],
            "rate_requests": full["requests"],
            "rate_peak": full["peak"],
            "rate_peak_ratio": full["peak"] / BUDGET,
            "rate_sustained": full["sustained"],
            "rate_sustained_ratio": full["sustained"] / BUDGET,
            "rate_store_writes": full["writes"],
            "rate_store_writes_per_request": full["writes"] / full["requests"],
            "rate_api_answers": full["api"],
            "rate_failures": full["failures"],
            "rate_peak_at_s": full["peak_at_s"],
            "rate_outage_peak": outage["peak"],
            "rate_outage_peak_ratio": outage["peak"] / BUDGET,
            "rate_outage_peak_at_s": outage["peak_at_s"],  # where the busiest second starts, from the run's start
            "rate_outage_sustained": outage["sustained"],
            "rate_outage_failures": outage["failures"],
            "rate_outage_api_answers": outage["api"],
        }

    def library_costs(self) -> dict[str, float]:
        """What Powertools' own versions of two hand-written parts would add to a cold start on a keyed path."""
        runs = 3 if self.quick else 7
        env = {**os.environ, **self.env(), "PYTHONPATH": str(LAYER)}

        def run(script: str) -> float:
            out = subprocess.run(
                [sys.executable, "-c", script, self.secret_arn], env=env, capture_output=True, text=True, check=True
            ).stdout
            return float(out.strip().splitlines()[-1])

        costs: dict[str, list[float]] = {"resolver": [], "ours": [], "powertools": []}
        for _ in range(runs):
            costs["resolver"].append(run(RESOLVER_SCRIPT))
            costs["ours"].append(run(SECRET_SCRIPT.format(read=SECRET_OURS)))
            costs["powertools"].append(run(SECRET_SCRIPT.format(read=SECRET_POWERTOOLS)))
        median = {k: statistics.median(v) * 1000 for k, v in costs.items()}
        return {
            "api_resolver_import_ms": median["resolver"],
            "secret_read_ours_keyed_ms": median["ours"],
            "secret_read_powertools_keyed_ms": median["powertools"],
        }

    def webhooks(self) -> dict[str, Any]:
        from .bench_webhooks import run

        return run(self)

    def layer_size(self) -> dict[str, Any]:
        from .lambda_python import find_lambda_python

        python = find_lambda_python()
        sam = shutil.which("sam") or str(ROOT / ".venv-sam" / "bin" / "sam")
        if python is None or not os.path.exists(sam):
            return {"layer_unzipped_mb": None, "layer_note": "needs python3.13 and the SAM CLI (make deps)"}
        with tempfile.TemporaryDirectory() as folder:
            env = {
                **os.environ,
                "SAM_CLI_TELEMETRY": "0",
                "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}",
            }
            env.pop("AWS_ENDPOINT_URL", None)
            subprocess.run(
                [sam, "build", "EngageLayer", "--build-dir", folder], cwd=ROOT, env=env, check=True, capture_output=True
            )
            layer = Path(folder) / "EngageLayer"
            size = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file())
        return {"layer_unzipped_mb": size / 1_000_000}


class RateRun:
    """Three functions x two containers work through SQS batches while a seventh answers API requests.

    Each container is loaded as Lambda loads it (its own handler, Engage client, budget and DynamoDB
    client); Engage (the sandbox) answers after RATE_LATENCY_MS. Requests are counted where Engage sees
    them, store writes by a botocore hook on each container's DynamoDB client. With `outage` (seconds
    from the start), the budget's item cannot be reached in that span (the same hook refuses the call).
    """

    def __init__(self, bench: Bench, seconds: float, outage: tuple[float, float] | None = None) -> None:
        self.bench, self.seconds, self.outage = bench, seconds, outage
        self.writes = self.failures = 0
        self.api: dict[str, int] = {}
        self.started = 0.0
        self.lock = threading.Lock()

    def load(self, name: str) -> Any:
        from .stack import LocalFunction
        from .template import read_stack, resolve

        stack = read_stack()
        spec = stack.function_named(name)
        at_once = resolve(
            spec.environment["ENGAGE_CONTAINERS_AT_ONCE"],
            {"QueueMaxConcurrency": str(stack.parameters["QueueMaxConcurrency"]["Default"])},
            stack.mappings,
        )
        env = self.bench.env(
            ENGAGE_REQUESTS_PER_SECOND=str(BUDGET),
            ENGAGE_CONTAINERS_AT_ONCE=at_once,
            POWERTOOLS_SERVICE_NAME=name,
            POWERTOOLS_METRICS_DISABLED="true",
        )
        handler = LocalFunction(spec, env).handler
        store = handler.container.engage.budget.client()  # the budget's own light DynamoDB client
        update_item = store.update_item

        def counted(**params: Any) -> Any:  # counted from outside
            self.store_write(params)
            return update_item(**params)

        store.update_item = counted
        return handler

    def store_write(self, params: dict, **_: Any) -> None:
        if params.get("Key", {}).get("id", {}).get("S") != "rate-budget":
            return
        elapsed = time.monotonic() - self.started
        if self.outage and self.outage[0] <= elapsed < self.outage[1]:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="dynamodb (the bench's outage)")
        with self.lock:
            self.writes += 1

    def commands(self, name: str, contacts: list[str], n: int) -> list[dict]:
        batch = [contacts[(n * 10 + i) % len(contacts)] for i in range(10)]
        if name == "update_contact":
            return [{"contactId": c, "attributes": {"city": f"r{n}-{i}"}} for i, c in enumerate(batch)]
        if name == "promote_contact":  # a backlog of promotions: each contact promoted once
            fresh = [self.bench.sandbox.state.add_contact({"contactType": "Contact"}) for _ in range(10)]
            return [{"contactId": c, "attributes": {"email": f"{c[:8]}@example.com"}} for c in fresh]
        return [{"contactId": c, "contactTypeId": ("Prospect", "Contact")[n % 2]} for c in batch]

    def work(self, handler: Any, name: str, contacts: list[str], end: float) -> None:
        n = 0
        while time.monotonic() < end:
            event = self.bench.sqs_event(self.commands(name, contacts, n))
            failed = handler(event, LocalContext(name, 30)).get("batchItemFailures", [])
            with self.lock:
                self.failures += len(failed)
            n += 1

    def ask(self, handler: Any, contact: str, end: float) -> None:
        from .lambda_runtime import api_event

        n = 0
        while time.monotonic() < end:
            body = json.dumps({"contactId": contact, "attributes": {"city": f"api-{n}"}})
            answer = handler(
                api_event("POST", "/contacts/update", body, {"Content-Type": "application/json"}),
                LocalContext("update_contact", 30),
            )
            status = str(answer["statusCode"])
            with self.lock:
                self.api[status] = self.api.get(status, 0) + 1
                self.failures += status not in ("200", "503")  # a 503 asks the caller to come back: no failure
            n += 1
            time.sleep(0.5)

    def run(self) -> dict[str, Any]:
        state = self.bench.sandbox.state
        state.clear_faults()
        state.configure({"latencyMs": RATE_LATENCY_MS})
        names = ("update_contact", "promote_contact", "change_contact_type")
        workers = [(name, self.load(name)) for name in names for _ in range(2)]
        api = self.load("update_contact")
        contacts = {name: [state.add_contact({"contactType": "Contact"}) for _ in range(40)] for name in names}
        for name, handler in [*workers, ("update_contact", api)]:  # warm, as containers of a backlog are
            handler(self.bench.sqs_event(self.commands(name, contacts[name], 0)[:1]), LocalContext(name, 30))
        time.sleep(1.5)  # the warm-up's turns are behind us
        state.requests.clear()
        # One process plays seven containers and Engage: a garbage collection would stall them all at once and
        # bunch their requests, which separate Lambda containers never do. The run is short; collect after it.
        gc.collect()
        gc.disable()
        switch = sys.getswitchinterval()
        sys.setswitchinterval(0.001)  # and a thread whose turn has come gets the interpreter soon, as its own CPU would
        self.started = time.monotonic()
        end = self.started + self.seconds
        threads = [threading.Thread(target=self.work, args=(h, name, contacts[name], end)) for name, h in workers]
        threads.append(threading.Thread(target=self.ask, args=(api, contacts["update_contact"][0], end)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        gc.enable()
        sys.setswitchinterval(switch)
        state.configure({"latencyMs": 0})
        log = [r for r in state.request_log() if r["monotonic"] >= self.started]
        steady = [r for r in log if r["monotonic"] < end]
        peak, at = busiest_second(log)
        return {
            "containers": len(workers) + 1,
            "requests": len(steady),
            "peak": peak,
            "peak_at_s": round(at - self.started, 2) if at is not None else None,
            "sustained": sustained_rate(steady, start=self.started + 2, end=end),
            "writes": self.writes,
            "failures": self.failures,
            "api": dict(self.api),
        }


def shown(value: Any, met: Any) -> str:
    """A figure as the table shows it, never rounded across its target (0.2034 against ≤ 0.2 is not `0.20 ✗`)."""
    if value is None:
        return "n/a"
    if not isinstance(value, float):
        return f"{value} {'✓' if met(value) else '✗'}"
    text = f"{value:.2f}"
    if met(float(text)) != met(value):
        text = f"{value:.4f}"
    return f"{text} {'✓' if met(value) else '✗'}"


def table(results: dict[str, Any]) -> str:
    """The figures measured (with --only, the rows whose steps ran)."""
    rows = [
        (
            "cold start vs importing boto3+requests",
            "cold_start_ratio",
            lambda r: f"{r['cold_start_s'] * 1000:.0f} ms vs {r['baseline_import_s'] * 1000:.0f} ms",
        ),
        (
            "cold start, worse of a first signed API request and a first SQS batch of 10 (both keyed), "
            "vs importing boto3+requests and building one boto3 client",
            "cold_start_keyed_vs_client_ratio",
            lambda r: (
                f"API {r['cold_start_signed_api_s'] * 1000:.0f} ms, "
                f"batch {r['cold_start_sqs_batch10_s'] * 1000:.0f} ms vs {r['baseline_client_s'] * 1000:.0f} ms"
            ),
        ),
        (
            "warm update vs bare requests.post (10 ms)",
            "warm_update_ratio",
            lambda r: f"{r['warm_update_ms']:.1f} ms vs {r['bare_post_ms']:.1f} ms",
        ),
        (
            "SQS batch of 10 contacts vs one request (50 ms)",
            "batch10_vs_single_ratio",
            lambda r: f"{r['batch10_ms']:.0f} ms vs {r['single_request_ms']:.0f} ms",
        ),
        (
            "SQS batch of 100, 20 contacts vs 100 sequential",
            "batch100_speedup",
            lambda r: (
                f"{r['batch100_s']:.2f} s vs {r['sequential100_s']:.2f} s, order kept: "
                f"{'yes' if r['batch100_order_kept'] else 'NO'}"
            ),
        ),
        ("Secrets Manager reads per 1000 invocations", "secret_reads_per_1000", lambda r: ""),
        ("layer size, unzipped (MB)", "layer_unzipped_mb", lambda r: r.get("layer_note", "")),
        (
            "rate: most requests in any second / budget",
            "rate_peak_ratio",
            lambda r: (
                f"{r['rate_peak']} in a second, budget {r['rate_budget']}/s, {r['rate_containers']} "
                f"containers, {r['rate_latency_ms']} ms latency, {r['rate_seconds']:.0f} s"
            ),
        ),
        ("rate: sustained / budget", "rate_sustained_ratio", lambda r: f"{r['rate_sustained']:.1f}/s"),
        (
            "rate: store writes per Engage request",
            "rate_store_writes_per_request",
            lambda r: f"{r['rate_store_writes']} writes, {r['rate_requests']} requests",
        ),
        (
            "rate, store down a third of the run: peak / budget",
            "rate_outage_peak_ratio",
            lambda r: f"{r['rate_outage_peak']} in a second, {r['rate_outage_sustained']:.1f}/s sustained",
        ),
        (
            "rate, store down: commands failed",
            "rate_outage_failures",
            lambda r: f"API answers {r['rate_outage_api_answers']}",
        ),
        (
            "Engage calls per Shopify customers/update delivery, {webhook_deliveries:,} over {webhook_customers} "
            "customers, 5 % changing something Engage holds",
            "webhook_engage_calls_per_event",
            lambda r: (
                f"{r.get('webhook_engage_updates_per_event', 0):.2f} of them updates; "
                f"{r.get('webhook_contact_changes_per_event', 0):.3f} changes after a first delivery; "
                f"{r.get('webhook_engage_calls_everything_per_event', 0):.2f} sending everything; floor (a first "
                f"lookup and update per customer) {r.get('webhook_engage_calls_floor_per_event', 0):.2f}; "
                f"same end state: {'yes' if r.get('webhook_final_state_identical') else 'NO'}"
            ),
        ),
    ]
    extras = [
        lambda r: (
            f"| (a first command with an idempotency key) cold start vs importing boto3+requests | "
            f"{r['cold_start_keyed_ratio']:.2f} | — | {r['cold_start_keyed_s'] * 1000:.0f} ms |"
        ),
        lambda r: (
            f"| (SQS batch of 10, one record dead-lettered at once) cold start vs importing boto3+requests "
            f"and building one boto3 client | {r['cold_start_sqs_dead_letter_s'] / r['baseline_client_s']:.2f} "
            f"| — | {r['cold_start_sqs_dead_letter_s'] * 1000:.0f} ms |"
        ),
        lambda r: (
            f"| (webhook intake) cold start: a first signed Shopify delivery verified and queued | "
            f"{r['cold_start_webhook_intake_s'] * 1000:.0f} ms | — | no Engage client; "
            f"importing boto3+requests {r['baseline_import_s'] * 1000:.0f} ms |"
        ),
        lambda r: (
            f"| (Powertools' APIGatewayRestResolver) added to an API cold start | "
            f"{r['api_resolver_import_ms']:.0f} ms | — | our routing: three static routes |"
        ),
        lambda r: (
            f"| (first secret read, DynamoDB client already built) ours vs Powertools' get_secret | "
            f"{r['secret_read_ours_keyed_ms']:.0f} ms vs {r['secret_read_powertools_keyed_ms']:.0f} ms"
            f" | — | against moto's server |"
        ),
        lambda r: (
            f"| (idempotency records in moto's DynamoDB) batch of 10 vs one request | "
            f"{r['batch10_with_idempotency_ms'] / r['single_request_ms']:.2f} | — | "
            f"{r['batch10_with_idempotency_ms']:.0f} ms |"
        ),
        lambda r: (
            f"| (this container's fallback share of the budget, 45/s) batch of 100 speed-up | "
            f"{r['batch100_speedup_default_pacing']:.2f} | by design ≤ rate | "
            f"{r['batch100_default_pacing_s']:.2f} s |"
        ),
    ]
    lines = ["| figure | value | target | measured |", "| --- | --- | --- | --- |"]
    for label, key, detail in rows:
        if key not in results:
            continue  # its step did not run (--only)
        target, met = TARGETS[key]
        label = label.format_map(collections.defaultdict(str, results)) if "{" in label else label
        lines.append(f"| {label} | {shown(results[key], met)} | {target} | {detail(results)} |")
    for line in extras:
        try:
            lines.append(line(results))
        except KeyError:
            continue
    return "\n".join(lines)


STEPS = (
    "cold_start",
    "intake_cold_start",
    "warm_update",
    "batches",
    "secret_reads",
    "library_costs",
    "rate_budget",
    "webhooks",
    "layer_size",
)


@contextlib.contextmanager
def logs_into(path: Path) -> Iterator[None]:
    """The functions' log lines and metrics (theirs and their subprocesses', on stdout) go to a file: the
    table is then the one thing this command prints."""
    sys.stdout.flush()
    saved = os.dup(1)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI)")
    parser.add_argument("--docs", action="store_true", help="also put the table in docs/performance.md")
    parser.add_argument("--only", help=f"comma-separated steps to run (default: all of {', '.join(STEPS)})")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="where the figures are written as JSON "
        "(default .bench/results.json; the functions' logs go beside it, functions.log)",
    )
    args = parser.parse_args(argv)
    steps = args.only.split(",") if args.only else list(STEPS)
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"no step {', '.join(unknown)}: the steps are {', '.join(STEPS)}")
    if args.docs and args.only:
        parser.error("--docs needs every step: leave --only out")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    log = args.results.with_name("functions.log")
    log.write_bytes(b"")
    results: dict[str, Any] = {"quick": args.quick, "python": sys.version.split()[0]}
    with logs_into(log):
        bench = Bench(args.quick)
        try:
            for step in steps:
                started = time.monotonic()
                results.update(getattr(bench, step)())
                print(f"bench: {step} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        finally:
            bench.close()
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {args.results}; the functions' log lines are in {log}")
    if args.docs:
        page = ROOT / "docs" / "performance.md"
        text = page.read_text()
        start, end = text.index("<!-- bench:start -->"), text.index("<!-- bench:end -->")
        block = (
            f"<!-- bench:start -->\n{table(results)}\n\n(`make bench`, {time.strftime('%Y-%m-%d')}, "
            f"Python {results['python']}, 2 cores)\n"
        )
        page.write_text(text[:start] + block + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
