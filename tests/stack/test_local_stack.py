"""`make run`'s stack as a separate process: signed requests and queue messages end in the sandbox and DLQs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import boto3
import pytest
import requests

from local.engage_sandbox import DEMO_CONTACTS

from ..conftest import ROOT

pytestmark = pytest.mark.slow
ANNA, BERTIL = DEMO_CONTACTS[0]["id"], DEMO_CONTACTS[1]["id"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack():
    ports = {"API_PORT": free_port(), "SANDBOX_PORT": free_port(), "MOTO_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    for name in ("ENGAGE_BASE_URL", "ENGAGE_API_KEY", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip() == "ready":
            break
    if not lines or lines[-1].strip() != "ready":
        process.kill()
        pytest.fail("the stack did not start:\n" + "".join(lines))
    yield {"process": process, "env": env, "banner": "".join(lines), **ports}
    if process.poll() is None:
        process.kill()


def send(stack, *args):
    return subprocess.run([sys.executable, "-m", "local.send", *args], cwd=ROOT, env=stack["env"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def contact(stack, contact_id):
    return requests.get(f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/contacts/{contact_id}", timeout=5).json()


def wait_for(check, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def sqs(stack):
    return boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{stack['MOTO_PORT']}", region_name="eu-north-1",
                        aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip


def test_the_banner_says_what_runs_and_how_to_use_it(stack):
    banner = stack["banner"]
    assert f"http://127.0.0.1:{stack['API_PORT']}/contacts/update" in banner
    assert "local.send update" in banner and "UpdateContactQueue.fifo" in banner


def test_a_signed_request_through_the_api_updates_the_sandbox(stack):
    result = send(stack, "update", json.dumps({"contactId": ANNA, "attributes": {"city": "Visby", "street": ""}}))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("200") and '"droppedEmpty": [\n    "street"' in result.stdout
    assert contact(stack, ANNA)["city"] == "Visby"


def test_an_unsigned_request_is_refused(stack):
    response = requests.post(
        f"http://127.0.0.1:{stack['API_PORT']}/contacts/update",
        json={"contactId": ANNA, "attributes": {"city": "Evil"}},
        timeout=10,
    )
    assert response.status_code == 401 and response.json()["error"] == "Unauthorized"
    assert contact(stack, ANNA)["city"] != "Evil"


def test_an_unknown_route_is_answered_as_api_gateway_does(stack):
    response = requests.post(f"http://127.0.0.1:{stack['API_PORT']}/contacts/delete", json={}, timeout=10)
    assert response.status_code == 403


def test_a_queued_command_is_applied_by_the_poller(stack):
    result = send(stack, "promote", json.dumps({"lookup": {"email": "bertil@example.com"}}), "--queue")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.split("\n", 1)[1])["group"] == (
        "email:" + hashlib.sha256(b"bertil@example.com").hexdigest()[:32]  # the address stays out of SQS
    )
    assert wait_for(lambda: contact(stack, BERTIL)["contactType"] == "Member")


def test_a_queued_command_that_cannot_succeed_lands_in_the_dead_letter_queue(stack):
    result = send(stack, "update", json.dumps({"contactId": ANNA, "attributes": {"firstNam": "A"}}), "--queue")
    assert result.returncode == 0, result.stderr
    client = sqs(stack)
    url = client.get_queue_url(QueueName="UpdateContactDeadLetterQueue.fifo")["QueueUrl"]
    found = []
    assert wait_for(
        lambda: (
            found.extend(
                client.receive_message(QueueUrl=url, MessageAttributeNames=["All"], VisibilityTimeout=0).get(
                    "Messages", []
                )
            )
            or found
        )
    )
    assert found[0]["MessageAttributes"]["errorType"]["StringValue"] == "InvalidRequest"


def test_a_taken_port_is_named(stack):
    env = {**stack["env"], "API_PORT": str(stack["API_PORT"]), "SANDBOX_PORT": str(free_port()),
           "MOTO_PORT": str(free_port())}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert f"port {stack['API_PORT']}" in result.stderr and "API_PORT" in result.stderr


def test_ctrl_c_stops_everything_cleanly(stack):
    process = stack["process"]
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "stopped" in out
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/contacts", timeout=2)
