"""The Makefile as a newcomer meets it: `make help` names every target and says what it does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from ..conftest import ROOT


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    (phony,) = re.findall(r"^\.PHONY:(.*)$", text, flags=re.MULTILINE)
    return set(phony.split())


def test_make_help_lists_every_target_with_its_line():
    shown = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    listed = {}
    for line in shown.splitlines():
        name, _, what = line.strip().partition(" ")
        listed[name] = what.strip()
    targets = makefile_targets()
    assert {"run", "test", "unit", "lint", "format", "validate", "sandbox", "clean", "help"} <= targets
    assert set(listed) == targets, shown
    assert all(listed.values()), shown


def test_a_bare_make_shows_the_help_and_builds_nothing():
    shown = subprocess.run(["make", "--no-print-directory", "-n"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    assert "pip install" not in shown and "awk" in shown


def test_a_python_older_than_3_11_stops_make_deps_with_the_hint_before_any_venv(tmp_path):
    real = sys.executable
    old = tmp_path / "python3.10"  # answers as 3.10 would: the check reads sys.version_info
    old.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec {real} -c "import sys; '
                   f"sys.version_info = (3, 10, 14, 'final', 0)\n$2\"; fi\nexec {real} \"$@\"\n")  # fmt: skip
    old.chmod(0o755)
    result = subprocess.run(["make", "--no-print-directory", "deps", f"PYTHON={old}", f"VENV={tmp_path / 'v'}",
                             f"SAM_VENV={tmp_path / 's'}"], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert result.returncode != 0
    assert "is Python 3.10; this project needs 3.11 or newer" in result.stderr
    assert not (tmp_path / "v").exists() and "pip" not in result.stderr


def test_make_build_without_python3_13_stops_with_the_hint_before_sam_runs():
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # no pyenv, no python3.13 on it
    if shutil.which("python3.13", path=env["PATH"]):
        pytest.skip("python3.13 is on the system PATH here")
    result = subprocess.run(["make", "--no-print-directory", "build"], cwd=ROOT, env=env, capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode != 0
    assert "no python3.13 found: install it" in result.stderr
    assert "sam build (python3.13" not in result.stdout and "Build Failed" not in result.stdout + result.stderr
