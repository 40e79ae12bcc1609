"""The benchmark keeps working: CI runs it in quick mode. Its figures are reported, never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.slow
KEYS = ("cold_start_ratio", "warm_update_ratio", "batch10_vs_single_ratio", "batch100_speedup",
        "secret_reads_per_1000", "layer_unzipped_mb")  # fmt: skip


def test_quick_bench_prints_its_table_and_writes_every_figure():
    env = {**os.environ, "PATH": f"{ROOT / '.venv-sam' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run([sys.executable, "-m", "local.bench", "--quick"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| figure | value | target |" in result.stdout
    results = json.loads((ROOT / ".bench" / "results.json").read_text())
    for key in KEYS:
        assert isinstance(results[key], int | float), key
    assert results["batch100_order_kept"] is True
