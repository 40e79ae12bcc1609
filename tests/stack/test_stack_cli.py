"""The local stack's command line without a running stack: ports, what reaches the functions, the banner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from local import send, stack
from local.template import read_stack

from ..conftest import ROOT
from .test_local_stack import free_port


def test_two_services_on_one_port_are_named_before_anything_starts(tmp_path):
    port = str(free_port())
    env = {**os.environ, "API_PORT": port, "SANDBOX_PORT": port, "MOTO_PORT": str(free_port()),
           "LOCAL_STACK_FILE": str(tmp_path / "stack.json")}  # fmt: skip
    env.pop("ENGAGE_BASE_URL", None)
    result = subprocess.run([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert f"API_PORT and SANDBOX_PORT are both {port}: give each service its own port" in result.stderr
    assert "OSError" not in result.stderr and not (tmp_path / "stack.json").exists()


def test_template_parameters_set_by_name_reach_the_functions_and_their_variables_do_not():
    spec = read_stack()
    shell = {"EngageCustomAttributes": "favoriteStore", "ENGAGE_CUSTOM_ATTRIBUTES": "shoeSize", "PATH": "/usr/bin"}
    assert stack.parameter_overrides(spec, shell) == {"EngageCustomAttributes": "favoriteStore"}
    (note,) = stack.ignored_variables(spec, shell)
    assert note == (
        "ENGAGE_CUSTOM_ATTRIBUTES in the environment is not passed to the functions: set the "
        "template parameter EngageCustomAttributes instead (EngageCustomAttributes=... make run)"
    )
    assert stack.ignored_variables(spec, {"PROMOTE_QUEUE_URL": "x"}) == [
        "PROMOTE_QUEUE_URL in the environment is not passed to the functions: the template sets it"]  # fmt: skip
    assert stack.ignored_variables(spec, {"ENGAGE_BASE_URL": "https://t.staging.voyado.com"}) == []  # the stack's
    # a platform variable the shops document replaced: named, and where its setting goes now
    (retired,) = stack.ignored_variables(spec, {"SHOPIFY_PROMOTE_ON_ACCOUNT": "true"})
    assert retired.startswith("SHOPIFY_PROMOTE_ON_ACCOUNT in the environment is not passed") and "shops" in retired


def banner_of(engage_url, published):
    local = stack.LocalStack(3001, 8081, 5001)
    local.engage_url = engage_url
    local.queue_urls = {q: f"http://127.0.0.1:5001/123456789012/{q}.fifo" for q in local.spec.queues}
    local.platform_secrets = {"shopify": "local/shopify-webhook-secret"}
    if engage_url.startswith("http://127.0.0.1"):
        local.children["engage"] = object()  # the stack's own sandbox
    return local.banner(published=published)


def test_a_second_stacks_banner_gives_local_send_its_own_ports():
    banner = banner_of("http://127.0.0.1:8081", published=False)
    tried = [line for line in banner.splitlines() if "-m local.send" in line]
    assert tried and all("API_PORT=3001 MOTO_PORT=5001 .venv/bin/python -m local.send" in line for line in tried)
    assert "holds another stack's addresses" in banner and "no ports to repeat" not in banner


def test_with_a_real_engage_the_banner_suggests_no_sandbox_route():
    banner = banner_of("https://tenant.staging.voyado.com", published=True)
    assert "_sandbox" not in banner and "Engage at https://tenant.staging.voyado.com" in banner


def test_without_an_addresses_file_local_send_says_it_tries_the_default_ports(tmp_path, monkeypatch):
    for name in ("API_PORT", "MOTO_PORT"):
        monkeypatch.delenv(name, raising=False)
    found = send.find_stack(tmp_path / "stack.json")
    assert send.reached(found) == (
        "local.send: to the stack at http://127.0.0.1:3000 (API), http://127.0.0.1:5000 (AWS), from the default ports: "
        "no stack.json, so no `make run` of this checkout is running")  # fmt: skip
    monkeypatch.setenv("API_PORT", "3999")
    said = send.reached(send.find_stack(tmp_path / "stack.json"))
    assert said.endswith(
        "from API_PORT, and the default port for MOTO_PORT (no stack.json, no `make run` of this checkout)"
    )


def test_local_send_never_mixes_one_port_given_with_the_stack_of_the_file(tmp_path, monkeypatch):
    """API_PORT of a second stack with the first one's file: its API with the first one's secret would be 401."""
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"pid": os.getpid(), "api": "http://127.0.0.1:3000", "moto": "http://127.0.0.1:5000",
                                "webhookSecret": "local/webhook-secret", "platformSecrets": {}}))  # fmt: skip
    monkeypatch.delenv("MOTO_PORT", raising=False)
    monkeypatch.setenv("API_PORT", "3001")
    with pytest.raises(send.StackNotFound) as refused:
        send.find_stack(path)
    assert str(refused.value).startswith(f"API_PORT (http://127.0.0.1:3001) is not the stack in {path} "
                                         "(API http://127.0.0.1:3000, AWS http://127.0.0.1:5000), and MOTO_PORT is "
                                         "not set: set both")  # fmt: skip
    monkeypatch.setenv("MOTO_PORT", "5001")  # both: the other stack, wholly
    assert send.reached(send.find_stack(path)) == (
        "local.send: to the stack at http://127.0.0.1:3001 (API), http://127.0.0.1:5001 (AWS), from API_PORT and "
        f"MOTO_PORT (not the stack in {path})")  # fmt: skip
    monkeypatch.setenv("API_PORT", "3000")
    monkeypatch.delenv("MOTO_PORT")  # one port that agrees with the file: the file's stack
    assert send.reached(send.find_stack(path)).endswith(f"5000 (AWS), from {path}")


@pytest.mark.parametrize(
    ("given", "dead_letters"),
    [("erase", "EraseContactDeadLetterQueue.fifo"), ("erase_contact", "EraseContactDeadLetterQueue.fifo"),
     ("backfill", "BackfillDeadLetterQueue"), ("contact-type", "ChangeContactTypeDeadLetterQueue.fifo")],
)  # fmt: skip
def test_dead_letters_and_redrive_take_each_functions_short_name(given, dead_letters):
    (pair,) = send.queue_pairs(read_stack(), given)
    assert pair.dead_letter == dead_letters
