"""The benchmark keeps working: CI runs it in quick mode. Its figures are reported, never asserted here.

Its steps run as separate tests (each its own `local.bench --quick --only ...`), so that they can run side
by side; together they are the whole quick bench. The figures go to a temporary file: a test run never
touches .bench/results.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from local.bench import STEPS, TARGETS, shown

from ..conftest import ROOT

pytestmark = pytest.mark.slow
# each part of the quick bench, and the figures it must write
PARTS = {
    "cold_start,intake_cold_start": ("cold_start_ratio", "cold_start_keyed_vs_client_ratio",
                                     "cold_start_sqs_dead_letter_s", "cold_start_webhook_intake_s"),
    "warm_update,batches,secret_reads,library_costs": (
        "warm_update_ratio", "batch10_vs_single_ratio", "batch100_speedup", "secret_reads_per_1000",
        "api_resolver_import_ms"),
    "rate_budget": ("rate_peak_ratio", "rate_sustained_ratio", "rate_store_writes_per_request"),
    "webhooks": ("webhook_engage_calls_per_event",),
    "layer_size": ("layer_unzipped_mb",),
}  # fmt: skip


def test_the_parts_are_the_whole_bench():
    assert sorted(step for part in PARTS for step in part.split(",")) == sorted(STEPS)


@pytest.mark.parametrize("part", PARTS)
def test_quick_bench_prints_its_table_and_writes_every_figure(part, tmp_path):
    env = {**os.environ, "PATH": f"{ROOT / '.venv-sam' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("AWS_ENDPOINT_URL", None)
    kept = ROOT / ".bench" / "results.json"
    before = kept.stat().st_mtime_ns if kept.exists() else None
    written = tmp_path / "results.json"
    result = subprocess.run([sys.executable, "-m", "local.bench", "--quick", "--only", part, "--results",
                             str(written)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(written.read_text())
    for key in PARTS[part]:
        assert isinstance(results[key], int | float), key
    if "batches" in part:
        assert results["batch100_order_kept"] is True
    # the table is all it prints: the functions' log lines went to their own file
    table = result.stdout.split("\n\nwritten to ")[0].splitlines()
    assert table[0] == "| figure | value | target | measured |" and all(line.startswith("| ") for line in table)
    assert (tmp_path / "functions.log").exists()
    assert (kept.stat().st_mtime_ns if kept.exists() else None) == before


def test_a_figure_is_never_rounded_across_its_target():
    target, met = TARGETS["rate_store_writes_per_request"]
    assert target == "≤ 0.2"
    assert shown(0.2034, met) == "0.2034 ✗"
    assert shown(0.1998, met) == "0.20 ✓"  # rounded, but on the side it is
    assert shown(0.8996, TARGETS["rate_sustained_ratio"][1]) == "0.8996 ✗"
    assert shown(0.18, met) == "0.18 ✓"
    assert shown(None, met) == "n/a"
