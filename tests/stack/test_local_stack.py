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
from engage_contact.domain.contacts import message_group

from local.engage_sandbox import DEMO_CONTACTS

from ..conftest import ROOT

pytestmark = pytest.mark.slow
ANNA, BERTIL = DEMO_CONTACTS[0]["id"], DEMO_CONTACTS[1]["id"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(tmp_path, command=(sys.executable, "-m", "local.stack"), extra_env=None, **popen):
    """A stack as `make run` starts it, on free ports, leaving its addresses in tmp_path (not the checkout)."""
    ports = {"API_PORT": free_port(), "SANDBOX_PORT": free_port(), "MOTO_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "LOCAL_STACK_FILE": str(tmp_path / "stack.json"),
           **(extra_env or {})}  # fmt: skip
    for name in ("ENGAGE_BASE_URL", "ENGAGE_API_KEY", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    process = subprocess.Popen(list(command), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, **popen)  # fmt: skip
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
    return {"process": process, "env": env, "banner": "".join(lines), "file": tmp_path / "stack.json", **ports}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    started = start_stack(tmp_path_factory.mktemp("stack"))
    yield started
    if started["process"].poll() is None:
        started["process"].kill()


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
    group = json.loads(result.stdout.split("\n", 1)[1])["group"]
    # the address stays out of SQS, and so does a plain hash of it: a keyed digest under the stack's digest key
    assert group.startswith("email:") and len(group) == len("email:") + 32
    assert group != "email:" + hashlib.sha256(b"bertil@example.com").hexdigest()[:32]
    assert wait_for(lambda: contact(stack, BERTIL)["contactType"] == "Member")


def test_several_pollers_apply_every_queued_command_each_contact_in_order(stack):
    from local.lambda_runtime import send_command

    assert "(2 batches at once, QueueMaxConcurrency)" in stack["banner"]  # the template's default
    client = sqs(stack)
    url = client.get_queue_url(QueueName="UpdateContactQueue.fifo")["QueueUrl"]
    contacts = [c["id"] for c in DEMO_CONTACTS]
    for n in range(12):  # interleaved: more than one batch of 10, several groups in each
        for contact_id in contacts:
            command = {"contactId": contact_id, "attributes": {"city": f"Order-{n}"}}
            send_command(client, url, command, message_group(command))

    def applied():
        log = requests.get(f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/requests?route=update", timeout=5).json()
        cities = {c: [] for c in contacts}
        for entry in log:
            city = json.loads(entry["body"] or "{}").get("city", "")
            if entry["contactId"] in cities and city.startswith("Order-"):
                cities[entry["contactId"]].append(int(city.removeprefix("Order-")))
        return cities

    assert wait_for(lambda: all(len(c) >= 12 for c in applied().values()), seconds=60)
    assert applied() == {c: list(range(12)) for c in contacts}  # none lost, none twice, each in queue order
    assert all(contact(stack, c)["city"] == "Order-11" for c in contacts)


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


def send_from_another_shell(stack, *args):
    """local.send as a second shell runs it: none of the ports the stack was started with, only its file."""
    env = {k: v for k, v in stack["env"].items() if k not in ("API_PORT", "SANDBOX_PORT", "MOTO_PORT")}
    return subprocess.run([sys.executable, "-m", "local.send", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def sandbox_updates(stack, contact_id):
    log = requests.get(f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/requests?route=update", timeout=5).json()
    return [json.loads(r["body"]) for r in log if r["path"].endswith(contact_id) and r["status"] == 200]


def test_the_stack_leaves_its_addresses_for_local_send(stack):
    addresses = json.loads(stack["file"].read_text())
    assert addresses["api"] == f"http://127.0.0.1:{stack['API_PORT']}"
    assert addresses["moto"] == f"http://127.0.0.1:{stack['MOTO_PORT']}"
    assert addresses["pid"] == stack["process"].pid


def parent_of(pid):
    """The parent process of `pid`, from /proc (the stat line's fourth field, after the command in brackets)."""
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def running(pid):
    """Whether a process runs (a zombie, ended and not yet reaped by whoever adopted it, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return not os.path.exists("/proc/self/stat")  # gone meanwhile, or no /proc to ask


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads parents from /proc")
def test_moto_and_the_sandbox_run_in_processes_of_their_own_under_the_stack(stack):
    children = json.loads(stack["file"].read_text())["processes"]
    assert set(children) == {"moto", "engage"}
    for pid in children.values():
        assert pid != stack["process"].pid and parent_of(pid) == stack["process"].pid


def test_local_send_reaches_a_stack_on_other_ports_without_being_told_them(stack):
    result = send_from_another_shell(stack, "update", json.dumps({"contactId": ANNA, "attributes": {"city": "Ystad"}}))
    assert result.returncode == 0, result.stdout + result.stderr
    assert contact(stack, ANNA)["city"] == "Ystad"


def test_the_banner_shows_commands_that_work_as_shown(stack):
    banner = stack["banner"]
    for platform in ("shopify", "woocommerce"):
        assert f"local.send {platform} events/update_contact/{platform}.json" in banner
    assert "local.send dead-letters" in banner and "local.send redrive" in banner
    assert "local.send invoke update events/update_contact/direct.json" in banner
    assert "local.send workflow events/contact_workflow/create_then_promote.json" in banner
    assert f"curl -s http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/contacts" in banner


@pytest.mark.parametrize(("platform", "contact_id"), [("shopify", ANNA), ("woocommerce", BERTIL)])
def test_a_shipped_platform_event_is_signed_with_the_stacks_secret_and_applied(stack, platform, contact_id):
    event = json.loads((ROOT / "events" / "update_contact" / f"{platform}.json").read_text())
    as_shipped = requests.post(f"http://127.0.0.1:{stack['API_PORT']}/webhooks/{platform}", data=event["body"],
                               headers=event["headers"], timeout=10)  # fmt: skip
    assert as_shipped.status_code == 401  # signed with the README's example secret, not this run's
    before = len(sandbox_updates(stack, contact_id))
    result = send_from_another_shell(stack, platform, f"events/update_contact/{platform}.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("200") and '"queued": true' in result.stdout
    customer = json.loads(event["body"])
    city = (customer.get("default_address") or customer.get("billing"))["city"]
    assert wait_for(lambda: len(sandbox_updates(stack, contact_id)) > before)
    assert sandbox_updates(stack, contact_id)[-1]["city"] == city


def test_a_platform_customer_file_of_ones_own_is_signed_and_applied(stack, tmp_path):
    event = json.loads((ROOT / "events" / "update_contact" / "shopify.json").read_text())
    customer = json.loads(event["body"])
    customer["default_address"]["city"] = "Kiruna"
    customer["updated_at"] = "2099-01-01T00:00:00+00:00"  # newer than the shipped event's, or it is refused as stale
    path = tmp_path / "customer.json"
    path.write_text(json.dumps(customer))
    result = send_from_another_shell(stack, "shopify", str(path), "--topic", "customers/update")
    assert result.returncode == 0, result.stdout + result.stderr
    assert wait_for(lambda: contact(stack, ANNA)["city"] == "Kiruna")


def test_a_reader_that_goes_away_does_not_turn_a_sent_command_into_an_error(stack):
    """`local.send ... | true`: the command is sent and applied; no BrokenPipeError, the command's status."""
    env = {k: v for k, v in stack["env"].items() if k not in ("API_PORT", "SANDBOX_PORT", "MOTO_PORT")}
    command = json.dumps({"contactId": BERTIL, "attributes": {"city": "Piteå"}})
    process = subprocess.Popen([sys.executable, "-m", "local.send", "update", command], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    process.stdout.close()  # the reader is gone before anything is printed
    _, err = process.communicate(timeout=60)
    assert "BrokenPipeError" not in err and "Traceback" not in err
    assert process.returncode == 0, err
    assert contact(stack, BERTIL)["city"] == "Piteå"


def test_local_send_says_which_stack_it_reached(stack):
    result = send_from_another_shell(stack, "dead-letters")
    assert result.returncode == 0, result.stderr
    assert f"stack at http://127.0.0.1:{stack['API_PORT']} (API)" in result.stderr
    assert f"from {stack['file']}" in result.stderr


def test_queueing_prints_what_sqs_answered(stack):
    command = {"contactId": BERTIL, "attributes": {"firstNam": "B"}}
    result = send_from_another_shell(stack, "update", json.dumps(command), "--queue")
    assert result.returncode == 0, result.stdout + result.stderr
    first, answer = result.stdout.split("\n", 1)
    answer = json.loads(answer)
    assert first == "queued on UpdateContactQueue.fifo"
    assert answer["sequenceNumber"].isdigit() and answer["group"] == BERTIL
    # the message SQS named is the one the function dead-letters: its id becomes the dead letter's deduplication id
    client = sqs(stack)
    url = client.get_queue_url(QueueName="UpdateContactDeadLetterQueue.fifo")["QueueUrl"]

    def dead_lettered_ids():
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                          AttributeNames=["All"]).get("Messages", [])  # fmt: skip
        return {m["Attributes"]["MessageDeduplicationId"] for m in messages}

    assert wait_for(lambda: answer["messageId"] in dead_lettered_ids())


def test_dead_letters_are_listed_with_their_reasons_and_no_personal_data(stack):
    command = {"lookup": {"email": "cecilia@example.com"}, "attributes": {"firstNam": "Cecilia-Hemlig"}}
    queued = json.loads(
        send_from_another_shell(stack, "update", json.dumps(command), "--queue").stdout.split("\n", 1)[1]
    )
    listing = []
    group = queued["group"]  # local.send's, keyed with the stack's digest key as its functions key theirs
    assert group.startswith("email:") and hashlib.sha256(b"cecilia@example.com").hexdigest()[:32] not in group

    def listed():
        listing[:] = [send_from_another_shell(stack, "dead-letters", "update")]
        return f"group={group}" in listing[0].stdout

    assert wait_for(listed), listing[0].stdout + listing[0].stderr
    line = next(x for x in listing[0].stdout.splitlines() if f"group={group}" in x)
    assert "InvalidRequest: unknown attribute 'firstNam'" in line
    assert "Cecilia-Hemlig" not in listing[0].stdout and "cecilia@example.com" not in listing[0].stdout
    with_bodies = send_from_another_shell(stack, "dead-letters", "update", "--bodies")
    assert "Cecilia-Hemlig" in with_bodies.stdout
    # listing does not consume: the message is still there for the next one
    assert f"group={group}" in send_from_another_shell(stack, "dead-letters").stdout


def test_a_redrive_sends_dead_letters_back_once_the_cause_is_fixed(stack):
    missing = "0a1b2c3d-0000-4000-8000-00000000d1e5"
    command = {"contactId": missing, "attributes": {"city": "Luleå"}}
    result = send_from_another_shell(stack, "update", json.dumps(command), "--queue")
    assert result.returncode == 0, result.stderr

    def listed(reason):
        return reason in send_from_another_shell(stack, "dead-letters", "update").stdout

    assert wait_for(lambda: listed(f"group={missing}  ContactNotFound"))
    seed = {"id": missing, "contactType": "Contact", "attributes": {"city": "Boden"}}  # the cause, fixed
    requests.post(f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/contacts", json=seed, timeout=5)
    moved = send_from_another_shell(stack, "redrive", "update")
    assert moved.returncode == 0, moved.stderr
    assert "UpdateContactDeadLetterQueue.fifo -> UpdateContactQueue.fifo" in moved.stdout
    assert wait_for(lambda: contact(stack, missing)["city"] == "Luleå")
    assert not listed(f"group={missing}")


def test_a_taken_port_is_named(stack):
    env = {**stack["env"], "API_PORT": str(stack["API_PORT"]), "SANDBOX_PORT": str(free_port()),
           "MOTO_PORT": str(free_port())}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert f"port {stack['API_PORT']}" in result.stderr and "API_PORT" in result.stderr


def test_an_address_file_left_by_a_stack_that_died_is_named(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / "stack.json"
    left.write_text(
        json.dumps({"pid": int(finished.stdout), "api": "http://127.0.0.1:9", "moto": "http://127.0.0.1:9"})
    )
    env = {**os.environ, "LOCAL_STACK_FILE": str(left)}
    result = subprocess.run([sys.executable, "-m", "local.send", "dead-letters"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert f"{left} names a stack (pid {finished.stdout.strip()}) that is no longer running" in result.stderr


def make_is_built():
    """`make run` would only start the stack (not build the virtual environment first)."""
    return subprocess.run(["make", "-q", ".venv/.installed"], cwd=ROOT, capture_output=True).returncode == 0


STOPS = {
    "TERM to the stack": ((sys.executable, "-m", "local.stack"), {}, lambda p: p.send_signal(signal.SIGTERM)),
    # `make run &` in a script starts the stack with SIGINT ignored; `kill -INT` must still stop it
    "INT to a stack started with SIGINT ignored": (
        (sys.executable, "-m", "local.stack"),
        {"preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)},
        lambda p: p.send_signal(signal.SIGINT),
    ),
    # make passes TERM on to the recipe; INT it expects the terminal to send the whole group (Ctrl-C)
    "TERM to make": (("make", "--no-print-directory", "run"), {}, lambda p: p.send_signal(signal.SIGTERM)),
    "INT to make's process group": (
        ("make", "--no-print-directory", "run"),
        {"start_new_session": True},
        lambda p: os.killpg(p.pid, signal.SIGINT),
    ),
}


@pytest.mark.parametrize("how", STOPS)
def test_a_signal_stops_the_whole_stack_and_frees_its_ports(tmp_path, how):
    command, popen, stop = STOPS[how]
    if command[0] == "make" and not make_is_built():
        pytest.skip("make run would build the virtual environment first")
    started = start_stack(tmp_path, command, **popen)
    try:
        addresses = json.loads(started["file"].read_text())
        stack_pid, children = addresses["pid"], addresses["processes"].values()
        stop(started["process"])
        try:
            out, _ = started["process"].communicate(timeout=60)
        except subprocess.TimeoutExpired as late:  # say what the stack said, and which of its processes live on
            left = {name: pid for name, pid in [("stack", stack_pid), *addresses["processes"].items()] if running(pid)}
            said = late.output.decode(errors="replace") if isinstance(late.output, bytes) else late.output or ""
            pytest.fail(f"not stopped within 60 s; still running: {left}; it said:\n{said}")
    finally:
        if started["process"].poll() is None:  # the stop failed: leave nothing running behind the test
            if popen.get("start_new_session"):
                os.killpg(started["process"].pid, signal.SIGKILL)
            else:
                started["process"].kill()
    assert "stopped" in out
    with pytest.raises(ProcessLookupError):
        os.kill(stack_pid, 0)
    assert children and not any(running(pid) for pid in children)  # moto's and the sandbox's processes too
    assert not started["file"].exists()
    for name in ("API_PORT", "SANDBOX_PORT", "MOTO_PORT"):
        with socket.socket() as probe:  # binds as the servers do: fails only while something listens
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", started[name]))


def test_moto_and_the_sandbox_stop_by_themselves_when_the_stack_is_killed(tmp_path):
    started = start_stack(tmp_path)
    children = json.loads(started["file"].read_text())["processes"].values()
    started["process"].kill()  # no chance to stop anything in order
    started["process"].wait(timeout=30)
    assert wait_for(lambda: not any(running(pid) for pid in children), seconds=60)
    for name in ("SANDBOX_PORT", "MOTO_PORT"):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", started[name]))


def test_a_second_stack_leaves_the_first_ones_addresses_until_it_stops(tmp_path):
    """local.send keeps reaching the stack it found first; the second takes the file over when the first stops."""
    first = start_stack(tmp_path)
    try:
        second = start_stack(tmp_path)  # the same addresses file, other ports
        try:
            assert json.loads(first["file"].read_text())["pid"] == first["process"].pid
            assert f"API_PORT={second['API_PORT']}" in second["banner"]  # told how to reach it meanwhile
            # and its "Try it" lines reach it, not the first
            tried = [line for line in second["banner"].splitlines() if "-m local.send" in line]
            assert tried and all(f"API_PORT={second['API_PORT']} MOTO_PORT={second['MOTO_PORT']} " in line
                                 for line in tried)  # fmt: skip
            first["process"].send_signal(signal.SIGINT)
            first["process"].wait(timeout=60)
            assert wait_for(lambda: first["file"].exists() and json.loads(first["file"].read_text())["pid"]
                     == second["process"].pid)  # fmt: skip
        finally:
            second["process"].send_signal(signal.SIGINT)
            second["process"].wait(timeout=60)
        assert not first["file"].exists()
    finally:
        if first["process"].poll() is None:
            first["process"].kill()


SHOPIFY_TOPICS_TODAY = ["customers/create", "customers/update", "customers/enable", "customers/disable",
                        "customers/email_marketing_consent_update", "customers/marketing_consent_update"]  # fmt: skip


@pytest.mark.parametrize("topic", SHOPIFY_TOPICS_TODAY)
def test_local_send_sends_each_shopify_topic_of_today(stack, tmp_path, topic):
    n = SHOPIFY_TOPICS_TODAY.index(topic)
    at = f"2099-02-0{n + 1}T10:00:00+00:00"  # newer than anything sent before: never refused as older
    if topic.endswith("email_marketing_consent_update"):
        body = {"customer_id": 2, "email_address": "bertil@example.com",
                "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                            "consent_updated_at": at}}  # fmt: skip
    elif topic.endswith("marketing_consent_update"):
        body = {"id": 1, "phone": "+46701234567",
                "sms_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                          "consent_updated_at": at, "consent_collected_from": "SHOPIFY"}}  # fmt: skip
    else:
        event = json.loads((ROOT / "events" / "update_contact" / "shopify-2025-10-customer.json").read_text())
        body = {**json.loads(event["body"]), "updated_at": at, "note": topic}
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    result = send_from_another_shell(stack, "shopify", str(path), "--topic", topic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("200") and '"queued": true' in result.stdout
    if topic.endswith("email_marketing_consent_update"):
        assert wait_for(lambda: contact(stack, BERTIL)["preferences"]["acceptsEmail"] is True)


def test_a_direct_invocation_of_the_shipped_event_updates_the_sandbox(stack):
    event = json.loads((ROOT / "events" / "update_contact" / "direct.json").read_text())
    result = send_from_another_shell(stack, "invoke", "update", "events/update_contact/direct.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["contactId"] == event["contactId"]
    changed = contact(stack, event["contactId"])
    assert {k: changed[k] for k in event["attributes"]} == event["attributes"] and changed["careOf"] == ""


def test_an_invalid_direct_invocation_prints_the_error_and_fails(stack):
    result = send_from_another_shell(stack, "invoke", "promote", '{"attributes": {}}')
    assert result.returncode == 1
    assert result.stdout.startswith("InvalidRequest: ")


def test_the_stack_answers_lambdas_invoke_api(stack):
    import boto3

    lambda_client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{stack['API_PORT']}",
                                 region_name="eu-north-1", aws_access_key_id="local",
                                 aws_secret_access_key="local")  # fmt: skip
    answer = lambda_client.invoke(FunctionName="ChangeContactTypeFunction", Payload=b"{}")
    assert answer["FunctionError"] == "Unhandled"
    assert json.loads(answer["Payload"].read())["errorType"] == "InvalidRequest"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName="no_such_function", Payload=b"{}")


def test_a_workflow_input_runs_through_the_contact_workflow_against_the_stack(stack):
    result = send_from_another_shell(stack, "workflow", "events/contact_workflow/create_then_promote.json")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines[:3]] == ["ApplyDefaults", "MergeDefaults", "UpdateContact"]
    assert "SUCCEEDED" in lines
    output = json.loads(result.stdout[result.stdout.index("\n{") :])
    created = contact(stack, output["promoted"]["contactId"])
    assert created["email"] == "new.member@example.com" and created["firstName"] == "Nora"
    assert created["contactType"] == "Member" and created["memberNumber"] == "M2001"


def test_a_workflow_input_the_function_refuses_ends_failed_with_its_error(stack):
    result = send_from_another_shell(stack, "workflow", '{"update": {"attributes": {"city": "Lund"}}}')
    assert result.returncode == 1
    assert "FAILED" in result.stdout.splitlines() and "TaskFailed: InvalidRequest" in result.stdout


def test_an_eventbridge_example_goes_to_the_webhook_intake_as_eventbridge_delivers_it(stack):
    """The shipped EventBridge envelope is not posted as a customer body: the intake gets the event itself."""
    result = send_from_another_shell(stack, "shopify", "events/update_contact/shopify-2025-10-eventbridge.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("200") and '"queued": true' in result.stdout, result.stdout
    assert wait_for(lambda: contact(stack, ANNA)["preferences"]["acceptsEmail"] is False)


# Last in this module: it ends the module's stack, which every test above shares.
def test_ctrl_c_stops_everything_cleanly(stack):
    process = stack["process"]
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "stopped" in out
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/contacts", timeout=2)
    assert not stack["file"].exists()
