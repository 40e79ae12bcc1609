"""Every `python -m local.*` command prints its usage on --help and does nothing else."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ..conftest import ROOT


def commands() -> list[str]:
    """Each module of local/ that runs as a command (`python -m local.X`)."""
    found = []
    for path in sorted((ROOT / "local").rglob("*.py")):
        if 'if __name__ == "__main__"' in path.read_text():
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__main__" else parts))
    return found


def test_every_command_is_found():
    assert {"local.stack", "local.soak", "local.send", "local.backfill", "local.bench",
            "local.engage_sandbox"} <= set(commands())  # fmt: skip


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
