"""#30: a queued command reaches Engage without turning back: `python -m local.trace_path` measures the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ..conftest import ROOT


def test_a_queued_command_enters_each_module_at_most_twice_on_its_way_to_engage(tmp_path):
    done = subprocess.run([sys.executable, "-m", "local.trace_path", "--json"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # the functions log one JSON line each to stdout; the figures are the indented object printed last
    figures = json.loads(done.stdout[done.stdout.rindex("\n{\n") + 1 :])
    path = figures["to_engage_call"]
    assert path["entered_by_call_more_than_twice"] == {}, path["entries_by_call"]
    assert path["path"][-1] == "engage/client.py" and "operations.py" in path["path"]
    assert figures["engage_routes"][-1] == "update"  # the traced command reached Engage
