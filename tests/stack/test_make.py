"""The Makefile as a newcomer meets it: `make help` names every target and says what it does."""

from __future__ import annotations

import re
import subprocess

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
