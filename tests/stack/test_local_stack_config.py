"""A stack configured by template parameters, one whose server dies, and one stopped while it starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from local.engage_sandbox import DEMO_CONTACTS

from ..conftest import ROOT
from .test_local_stack import free_port, send_from_another_shell, start_stack, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """`EngageCustomAttributes=favoriteStore SHOPIFY_PROMOTE_ON_ACCOUNT=true make run`: a parameter, and a platform
    variable the shops document replaced."""
    shell = {"EngageCustomAttributes": "favoriteStore", "SHOPIFY_PROMOTE_ON_ACCOUNT": "true"}
    started = start_stack(tmp_path_factory.mktemp("configured"), extra_env=shell)
    yield started
    if started["process"].poll() is None:
        started["process"].kill()


def sandbox_contacts(stack):
    return requests.get(f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/contacts", timeout=5).json()


def test_a_function_variable_from_the_shell_is_named_and_not_passed(configured):
    assert "SHOPIFY_PROMOTE_ON_ACCOUNT in the environment is not passed to the functions: it no longer configures " \
           "the platforms" in configured["banner"]  # fmt: skip
    assert "could not start" not in configured["banner"]  # every function started


def test_a_template_parameter_given_by_name_reaches_the_function(configured):
    command = {"contactId": DEMO_CONTACTS[0]["id"], "attributes": {"favoriteStore": "Lund"}}
    result = send_from_another_shell(configured, "update", json.dumps(command))
    assert result.returncode == 0 and '"favoriteStore": "Lund"' in result.stdout, result.stdout + result.stderr

    def written():
        return [c for c in sandbox_contacts(configured) if c.get("favoriteStore") == "Lund"]

    assert wait_for(written), "EngageCustomAttributes did not reach the update function"


def test_a_server_of_the_stack_that_dies_is_named_and_the_stack_stops(configured):
    """Runs last in this module: it ends the configured stack."""
    sandbox_pid = json.loads(configured["file"].read_text())["processes"]["engage"]
    os.kill(sandbox_pid, signal.SIGKILL)
    out, _ = configured["process"].communicate(timeout=60)
    assert configured["process"].returncode == 1
    assert f"engage-sandbox (pid {sandbox_pid}) exited" in out and "stopping the stack" in out
    assert "stopped" in out and not configured["file"].exists()


EARLY_STOPS = {
    # Ctrl-C at the terminal: the whole process group, the stack's children included
    "Ctrl-C to the process group": ({"start_new_session": True}, lambda p: os.killpg(p.pid, signal.SIGINT)),
    # `make run &` in a script: SIGINT inherited ignored, and `kill -INT` must still stop it
    "kill -INT to a stack started in the background": (
        {"preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)},
        lambda p: p.send_signal(signal.SIGINT),
    ),
}


@pytest.mark.parametrize("how", EARLY_STOPS)
def test_a_stop_while_the_stack_starts_stops_it_cleanly(tmp_path, how):
    popen, stop = EARLY_STOPS[how]
    env = {**os.environ, "API_PORT": str(free_port()), "SANDBOX_PORT": str(free_port()),
           "MOTO_PORT": str(free_port()), "LOCAL_STACK_FILE": str(tmp_path / "stack.json")}  # fmt: skip
    env.pop("ENGAGE_BASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, **popen)  # fmt: skip
    try:
        time.sleep(1.0)  # within the first seconds: moto and the sandbox are still starting
        stop(process)
        out, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert process.returncode == 0, out
    assert "ready" not in out.split() and "stopped" in out and not (tmp_path / "stack.json").exists()
