"""`python -m local.backfill` against `make run`'s stack: rows into the sandbox, then the reconciliation line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import pytest
import requests

from ..conftest import ROOT
from .test_local_stack import start_stack

pytestmark = pytest.mark.slow
CREATE = json.dumps({"preset": "shopify", "createIfMissing": {"contactType": "Contact"}})


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    started = start_stack(tmp_path_factory.mktemp("backfill-stack"))
    # the functions log a line or two a row: read them, or the stack blocks once the pipe is full
    threading.Thread(target=lambda: [None for _ in started["process"].stdout], daemon=True).start()
    yield started
    if started["process"].poll() is None:
        started["process"].kill()


def backfill(stack, *args, timeout=600):
    env = {k: v for k, v in stack["env"].items() if k not in ("API_PORT", "SANDBOX_PORT", "MOTO_PORT")}
    return subprocess.run([sys.executable, "-m", "local.backfill", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def sandbox_log(stack, route):
    return requests.get(f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/requests?route={route}", timeout=5).json()


def created_emails(stack):
    """The email of every contact Engage made through the API (single or bulk creates), one entry a contact."""
    contacts = requests.get(f"http://127.0.0.1:{stack['SANDBOX_PORT']}/_sandbox/contacts", timeout=5).json()
    return [c["email"].lower() for c in contacts if c.get("_createdVia") and c.get("email")]


def writes(stack):
    return sum(len(sandbox_log(stack, route)) for route in ("update", "create", "bulkCreate", "bulkUpdate"))


def test_a_generated_shopify_export_is_reconciled_with_nothing_lost(stack, tmp_path):
    path = tmp_path / "customers.csv"
    assert backfill(stack, "--generate", 200, path).returncode == 0
    result = backfill(stack, path, "--mapping", CREATE, "--id", "stack-200")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "backfill: 200 rows, 10 invalid, 190 applied, 0 dead-lettered, 0 lost"
    assert "row 20: column 'Default Address Country Code' is not a two-letter country code" in result.stdout
    assert "row 40: the key column 'Email' is empty" in result.stdout
    created = created_emails(stack)  # by a single create or a bulk one
    # rows 50 and 150 are the customers of rows 49 and 149 again (created once, then updated in file order);
    # rows 100 and 200 would be too, but are invalid
    assert len(created) == len(set(created)) == 190 - 2
    assert "lars" not in result.stdout.lower() and "@example.com" not in result.stdout  # no personal data
    said = result.stderr.splitlines()  # not a terminal: plain lines, the queued count's last one first
    assert said.index("backfill: read 200 of 200 rows") < said.index("backfill: settled 200 of 200 rows")


def test_the_same_backfill_again_applies_no_row_twice(stack, tmp_path):
    path = tmp_path / "again.csv"
    backfill(stack, "--generate", 30, path)
    text = path.read_text().replace("@example.com", "@again.example.com")
    path.write_text(text)
    first = backfill(stack, path, "--mapping", CREATE, "--id", "stack-again")
    before = writes(stack)
    second = backfill(stack, path, "--mapping", CREATE, "--id", "stack-again")
    assert first.returncode == second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    assert writes(stack) == before


def test_rows_of_unknown_customers_without_create_are_dead_lettered_and_reconciled(stack, tmp_path):
    path = tmp_path / "unknown.jsonl"
    lines = [json.dumps({"Email": "nobody.here@example.com", "First Name": "Nobody"}), "not json",
             json.dumps({"Email": "anna@example.com", "First Name": "Anna"})]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    mapping = json.dumps({"lookup": {"email": "Email"}, "columns": {"First Name": "firstName"}})
    result = backfill(stack, path, "--mapping", mapping, "--id", "stack-dead")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "backfill: 3 rows, 1 invalid, 1 applied, 1 dead-lettered, 0 lost"
    assert "row 2: the line is not a JSON object" in result.stdout and "local.send redrive" in result.stdout


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "the file is empty"),
        (b"\xff\xfeE\x00m\x00", "not CSV or JSON Lines text"),
        (b'[{"Email": "a@example.com"}]', "a JSON array, not JSON Lines"),
        (b"Email,First Name\na@example.com,A\n", "the header lacks the column(s) the mapping names: ['Last Name'"),
    ],
)
def test_a_file_that_cannot_be_backfilled_is_refused_before_any_row_is_sent(stack, tmp_path, content, says):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    before = len(sandbox_log(stack, "lookup"))
    result = backfill(stack, path, "--mapping", "shopify")
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert len(sandbox_log(stack, "lookup")) == before


def test_bad_rows_are_named_by_number_and_reason(stack, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"\xef\xbb\xbfEmail,First Name\n"  # a byte order mark: accepted
                     b"one@example.com,One,extra\n"  # too many fields
                     b"two@example.com\n"  # too few
                     b"three@example.com,Thr\xe9e\n"  # Latin-1, not UTF-8
                     b",Four\n")  # fmt: skip
    mapping = json.dumps({"lookup": {"email": "Email"}, "columns": {"First Name": "firstName"},
                          "createIfMissing": {"contactType": "Contact"}})  # fmt: skip
    result = backfill(stack, path, "--mapping", mapping, "--id", "stack-rows")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "row 1: the row has 3 fields, the header 2",
        "row 2: the row has 1 fields, the header 2",
        "row 3: column 'First Name' is not UTF-8 text",
        "row 4: the key column 'Email' is empty",
    ]
    assert lines[-1] == "backfill: 4 rows, 4 invalid, 0 applied, 0 dead-lettered, 0 lost"


def test_a_mapping_with_two_columns_for_one_attribute_is_refused(stack, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("Email,Phone,Mobile\na@example.com,+46701234567,+46701234568\n")
    mapping = {"lookup": {"email": "Email"}, "columns": {"Phone": "mobilePhone", "Mobile": "mobilePhone"}}
    result = backfill(stack, path, "--mapping", json.dumps(mapping))
    assert result.returncode == 2
    assert re.search(r"'Phone' and 'Mobile' are both mapped to 'mobilePhone'", result.stderr)


def test_stdin_is_backfilled_only_under_an_id_of_its_own(tmp_path):
    """A file's default id comes from its bytes; stdin's would differ each run and apply its rows again."""
    path = tmp_path / "stdin.csv"
    generated = subprocess.run([sys.executable, "-m", "local.backfill", "--generate", "20", str(path)], cwd=ROOT,
                               capture_output=True, text=True)  # fmt: skip
    assert generated.returncode == 0 and f"wrote 20 rows to {path}" in generated.stderr
    refused = subprocess.run([sys.executable, "-m", "local.backfill", "-", "--mapping", "shopify"], cwd=ROOT,
                             input=path.read_text(), capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "give --id" in refused.stderr
    dry = subprocess.run([sys.executable, "-m", "local.backfill", "-", "--mapping", "shopify", "--dry-run"],
                         cwd=ROOT, input=path.read_text(), capture_output=True, text=True)  # fmt: skip
    assert dry.returncode == 0 and "20 rows" in dry.stdout


def test_progress_into_a_file_is_plain_lines_and_a_dry_run_has_no_applied_count(tmp_path):
    path = tmp_path / "plain.csv"
    subprocess.run([sys.executable, "-m", "local.backfill", "--generate", "250", str(path)], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    dry = subprocess.run([sys.executable, "-m", "local.backfill", str(path), "--mapping", "shopify", "--dry-run"],
                         cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "\r" not in dry.stderr and "\x1b" not in dry.stderr  # stderr is not a terminal here
    assert "backfill: read 250 of 250 rows" in dry.stderr.splitlines()
    assert "settled" not in dry.stderr
