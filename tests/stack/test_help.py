"""Every `python -m local.*` command prints its usage on --help and does nothing else."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from ..conftest import ROOT


def modules() -> dict[str, str]:
    """Each module of local/ that `python -m` can name, with its source (a package by its __main__)."""
    found = {}
    for path in sorted((ROOT / "local").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] != "__init__":
            found[".".join(parts[:-1] if parts[-1] == "__main__" else parts)] = path.read_text()
    return found


def commands() -> list[str]:
    """Each module of local/ that runs as a command (`python -m local.X`)."""
    return [m for m, text in modules().items() if 'if __name__ == "__main__"' in text and "not_a_command(" not in text]


def libraries() -> list[str]:
    """Each module of local/ that other code uses: `python -m` of it says so."""
    return [m for m in modules() if m not in commands()]


def test_every_command_is_found():
    assert {"local.stack", "local.soak", "local.send", "local.backfill", "local.bench",
            "local.engage_sandbox"} <= set(commands())  # fmt: skip


def test_the_modules_that_are_not_commands_are_found():
    assert {"local.workflow", "local.signing", "local.template", "local.engage_sandbox.state"} <= set(libraries())


@pytest.mark.parametrize("module", libraries())
def test_a_module_that_is_not_a_command_says_what_it_is_and_what_to_run_instead(module, tmp_path):
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    said = done.stderr[done.stderr.index(f"python -m {module}: ") :]  # after a warning of runpy's, if any
    first, instead = said.splitlines()[:2]
    what = ast.get_docstring(ast.parse(modules()[module])).split("\n", 1)[0]  # what the module says it is
    assert first == f"python -m {module}: not a command. {what}", said
    assert instead.startswith("Instead: ") and ("make " in instead or "python -m local." in instead), said
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", commands())
def test_help_prints_the_usage_and_starts_nothing(module, tmp_path):
    env = {**os.environ, "LOCAL_STACK_FILE": str(tmp_path / "stack.json"), "SOAK_COMMANDS": "5"}
    results = ROOT / ".bench" / "results.json"
    before = results.stat().st_mtime_ns if results.exists() else None
    # a command that ran its job instead would still be running when this gives up
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m {module}"), done.stdout[:200]
    assert done.stderr == ""
    assert not (tmp_path / "stack.json").exists()
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran
    assert (results.stat().st_mtime_ns if results.exists() else None) == before
