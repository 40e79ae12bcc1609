"""`python -m local.backfill FILE --mapping MAPPING`: bring a file of existing customers into Engage, locally.

    FILE            a CSV file with a header row, or JSON Lines (one object a line); `-` reads stdin
                    (with --id, or --dry-run: a stream's id cannot come from its bytes)
    --mapping M     a JSON file, inline JSON, or a preset's name (shopify, woocommerce); a preset may be
                    extended: '{"preset": "shopify", "createIfMissing": {"contactType": "Contact"}}'
    --id ID         the backfill's id (default: the file's name and a digest of its bytes and the mapping,
                    so the same file run again applies no row twice: the rows' idempotency keys are
                    backfill:ID:ROW)
    --wait S        seconds without progress before the rest is reported lost (default 120)
    --dry-run       read the file and build every command, send nothing (no stack needed)
    --generate N FILE   write a Shopify customer export of N rows (about 5 % of them bad) to try it on

Against the stack `make run` started (found as local.send finds it): each row becomes an update command
through the layer's own code (engage_contact.backfill, the same as the deployed state machine's), put in
chunks of 100 on the backfill's own queue; the stack's backfill writer creates new customers through
Engage's bulk endpoint (the rest one by one) and counts each row in the backfill's counters (the
idempotency table, in moto), which this command reads until every row is accounted for:

    backfill: N rows, V invalid, A applied, D dead-lettered, L lost

The exit status is 0 only when V + A + D = N and L = 0. Rows are numbered from 1, the first row after
the header; an invalid row is named by its number and reason, never by its values.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .template import LAYER

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

# the layer is on the path only now (E402 is not selected here)
from engage_contact.backfill.batch import Backfill
from engage_contact.backfill.mapping import PRESETS, SHOPIFY_EXPORT_COLUMNS, RowMapping, load_mapping, parse_mapping
from engage_contact.backfill.rows import InvalidRow
from engage_contact.domain.attributes import AttributeCatalogue
from engage_contact.errors import InvalidRequest

BATCH_ROWS = 100  # as the state machine's ItemBatcher hands them to the update function
# Rows queued and not yet applied at most: enough for two whole bulk requests (4,000 rows each) in flight, and
# no more (the rows that go one by one drain at the rate budget anyway).
MAX_AHEAD = 8000
SHOWN_INVALID = 20
SNIFF_BYTES = 4096
CUSTOM_ATTRIBUTES = "favoriteStore,shoeSize"  # the local stack's (local.stack), unless ENGAGE_CUSTOM_ATTRIBUTES


class BadInput(Exception):
    """A file or mapping that cannot be backfilled at all: said before any row is sent."""


# --- reading the file, streaming -------------------------------------------------------------------------
def utf8_lines(stream: BinaryIO) -> Iterator[str]:
    """The file's lines as text; bytes that are not UTF-8 kept as surrogates (their row is then invalid, named)."""
    first = True
    for raw in stream:
        line = raw.decode("utf-8", "surrogateescape")
        if first:
            line = line.removeprefix("\ufeff")  # a byte order mark (Excel writes one) is accepted
            first = False
        yield line


def file_format(path: str, head: bytes) -> str:
    """csv or jsonl, by the name, else by the first bytes; anything else refused."""
    if b"\x00" in head:
        raise BadInput("the file is not CSV or JSON Lines text (it holds NUL bytes: binary, or UTF-16?)")
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if not text:
        raise BadInput("the file is empty: a backfill needs a CSV header row or JSON Lines")
    if path.endswith((".jsonl", ".ndjson")) or (not path.endswith(".csv") and text.startswith("{")):
        return "jsonl"
    if text.startswith("["):
        raise BadInput("the file is a JSON array, not JSON Lines (one JSON object a line)")
    return "csv"


@dataclass
class Source:
    format: str
    header: list[str] | None  # CSV only
    rows: Iterator[tuple[int, Any]]  # (row number, the row's values or its InvalidRow)


def open_rows(stream: BinaryIO, name: str) -> Source:
    head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(stream, "peek") else b""
    kind = file_format(name, head)
    lines = utf8_lines(stream)
    if kind == "jsonl":
        return Source("jsonl", None, jsonl_rows(lines))
    records = csv.reader(lines)
    header = next(records, None)
    if not header or not any(h.strip() for h in header):
        raise BadInput("the file is empty: a CSV backfill needs a header row")
    header = [h.strip() for h in header]
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise BadInput(f"the header names a column twice: {twice}")
    return Source("csv", header, csv_rows(records, header))


def csv_rows(records: Iterator[list[str]], header: list[str]) -> Iterator[tuple[int, Any]]:
    for number, record in enumerate(records, start=1):
        if len(record) != len(header):
            if not record:  # a blank line
                yield number, InvalidRow(number, "the row is empty")
            else:
                yield number, InvalidRow(number, f"the row has {len(record)} fields, the header {len(header)}")
            continue
        yield number, dict(zip(header, record, strict=True))


def jsonl_rows(lines: Iterator[str]) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            yield number, InvalidRow(number, "the line is empty")
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            yield number, InvalidRow(number, "the line is not a JSON object")
        else:
            yield number, value


def survey(path: Path) -> tuple[int, str]:
    """A first pass: the number of rows (for the progress bar) and a digest of the file's bytes (the default id)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
        stream.seek(0)
        source = open_rows(stream, path.name)
        count = sum(1 for _ in source.rows)
    return count, digest.hexdigest()[:12]


def default_id(path: Path, digest: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem)[:40].strip("-") or "file"
    return f"{stem}-{digest}"


# --- the mapping ---------------------------------------------------------------------------------------------
def read_mapping(given: str, catalogue: AttributeCatalogue) -> RowMapping:
    """A preset's name, a JSON file, or inline JSON; checked whole before any row is read."""
    text = given
    if given not in PRESETS and not given.lstrip().startswith("{"):
        path = Path(given)
        if not path.is_file():
            raise BadInput(f"--mapping {given!r} is no preset ({', '.join(PRESETS)}), no JSON and no file")
        text = path.read_text(encoding="utf-8")
    try:
        return parse_mapping(load_mapping(text), catalogue)
    except InvalidRequest as exc:
        raise BadInput(str(exc)) from None


def catalogue_from_env() -> AttributeCatalogue:
    names = os.environ.get("ENGAGE_CUSTOM_ATTRIBUTES", CUSTOM_ATTRIBUTES)
    return AttributeCatalogue(frozenset(n.strip() for n in names.split(",") if n.strip()))


# --- queueing and reconciling --------------------------------------------------------------------------------
@dataclass
class Tally:
    rows: int = 0
    invalid: int = 0
    queued: int = 0
    invalid_rows: list[dict[str, Any]] | None = None

    def add(self, result: dict[str, Any]) -> None:
        self.rows += result["rows"]
        self.invalid += result["invalid"]
        self.queued += result["queued"]
        if self.invalid_rows is None:
            self.invalid_rows = []
        self.invalid_rows.extend(result["invalidRows"][: max(SHOWN_INVALID - len(self.invalid_rows), 0)])


def batches(rows: Iterator[tuple[int, Any]], size: int = BATCH_ROWS) -> Iterator[list[tuple[int, Any]]]:
    batch: list[tuple[int, Any]] = []
    for item in rows:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Progress:
    """A count toward a total on stderr: a bar on a terminal; elsewhere (a file, a pipe, CI) a plain line now
    and then and one at the end, without carriage returns or escape codes."""

    EVERY_SECONDS = 10.0

    def __init__(self, desc: str, total: int | None, position: int = 0, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.desc, self.total, self.n = desc.strip(), total, 0
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="row", desc=desc, file=self.stream, position=position)
        self.said_at, self.said = time.monotonic(), ""  # the last line printed

    def update(self, count: int) -> None:
        self.n += count
        self.refresh()

    def refresh(self) -> None:
        if self.bar is not None:
            self.bar.total, self.bar.n = self.total, self.n
            self.bar.refresh()
        elif time.monotonic() - self.said_at >= self.EVERY_SECONDS:
            self._say()

    def _say(self) -> None:
        line = f"backfill: {self.desc} {self.n}" + (f" of {self.total} rows" if self.total is not None else " rows")
        if line != self.said:
            print(line, file=self.stream, flush=True)
        self.said_at, self.said = time.monotonic(), line

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._say()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def queue_all(backfill: Backfill, backfill_id: str, mapping: RowMapping, source: Source, bars: Any) -> Tally:
    """Every row through the layer's Backfill.queue, a batch at a time (as the state machine's Map does)."""
    queued_bar, applied_bar, counters = bars
    tally = Tally()
    for batch in batches(source.rows):
        rows = [{"index": n - 1, "value": v} if not isinstance(v, InvalidRow) else v for n, v in batch]
        tally.add(backfill.queue({"id": backfill_id, "mapping": mapping.source, "rows": rows}))
        queued_bar.update(len(batch))
        if counters is not None:
            keep_close(counters, backfill_id, tally, applied_bar)
    return tally


def keep_close(counters: Any, backfill_id: str, tally: Tally, bar: Any, patience: float = 60) -> None:
    """Wait while more than MAX_AHEAD queued rows wait to be applied (not longer than `patience` without progress)."""
    last, since = -1, time.monotonic()
    while (done := settled(counters.read(backfill_id), bar, tally)) < tally.queued - MAX_AHEAD:
        if done != last:
            last, since = done, time.monotonic()
        elif time.monotonic() - since > patience:
            return  # the rest is queued anyway; the wait for the applied rows says what is lost
        time.sleep(0.5)


def settled(counts: dict[str, int], bar: Any, tally: Tally) -> int:
    """Rows applied or dead-lettered so far (shown on the settled bar with the invalid ones)."""
    done = counts["applied"] + counts["deadLettered"]
    bar.n = done + tally.invalid
    bar.refresh()
    return done


def await_settled(counters: Any, backfill_id: str, tally: Tally, wait: float, bar: Any) -> dict[str, int]:
    """Read the backfill's counters until applied + dead-lettered + invalid = rows, or no progress for `wait` s."""
    last, last_change = -1, time.monotonic()
    while True:
        counts = counters.read(backfill_id)
        done = settled(counts, bar, tally) + tally.invalid
        if done >= tally.rows:
            return counts
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > wait:
            return counts
        time.sleep(0.5)


def reconciliation(tally: Tally, counts: dict[str, int]) -> tuple[str, bool]:
    applied, dead = counts["applied"], counts["deadLettered"]
    lost = max(tally.rows - tally.invalid - applied - dead, 0)
    line = f"backfill: {tally.rows} rows, {tally.invalid} invalid, {applied} applied, {dead} dead-lettered, {lost} lost"
    return line, lost == 0 and tally.invalid + applied + dead == tally.rows


def run(args: argparse.Namespace) -> int:
    catalogue = catalogue_from_env()
    mapping = read_mapping(args.mapping, catalogue)  # before the file is read
    path = None if args.file == "-" else Path(args.file)
    if path is not None and not path.is_file():
        raise BadInput(f"no file {args.file}")
    total, digest = survey(path) if path is not None else (None, "stdin")  # stdin sends only with --id
    # the mapping is part of the default id: the same file under another mapping is another backfill, not one
    # whose counters a second run would add to
    digest = hashlib.sha256((digest + json.dumps(mapping.source, sort_keys=True)).encode()).hexdigest()[:12]
    backfill_id = args.id or default_id(path or Path("stdin"), digest)
    with path.open("rb") if path is not None else sys.stdin.buffer as stream:
        # BufferedReader wraps any binary stream at run time (typeshed asks for a raw one): it adds peek
        source = open_rows(stream if hasattr(stream, "peek") else io.BufferedReader(stream), args.file)  # type: ignore[type-var]
        missing = mapping.missing_columns(source.header) if source.header is not None else []
        if missing:
            raise BadInput(f"the header lacks the column(s) the mapping names: {missing} (nothing was sent)")
        if args.dry_run:
            from engage_contact.domain import digest_key

            key = os.urandom(32)  # the commands' message groups are built and never sent: any key serves
            digest_key.install(lambda: key)
            backfill, counters = Backfill(catalogue, lambda commands: None, lambda: None), None
        else:
            backfill, counters = stack_backfill(catalogue)
        print(f"backfill {backfill_id}: {source.format}, mapping: lookup by {mapping.lookup_key}", file=sys.stderr)
        # "read": rows read (each valid one queued, each invalid one refused); "settled": applied, dead-lettered or
        # invalid, so it ends at the file's row count whatever became of each row (the last line says which)
        with Progress("read   ", total) as queued_bar:
            # a dry run applies nothing: no settled bar for it
            applied_bar = Progress("settled", total, position=1) if counters is not None else None
            try:
                tally = queue_all(backfill, backfill_id, mapping, source, (queued_bar, applied_bar, counters))
                queued_bar.close()  # its last line now: every row is queued before the applied count ends
                if applied_bar is not None:
                    applied_bar.total = tally.rows
                    counts = await_settled(counters, backfill_id, tally, args.wait, applied_bar)
            finally:
                if applied_bar is not None:
                    applied_bar.close()
    for invalid in tally.invalid_rows or []:
        print(f"row {invalid['row']}: {invalid['reason']}")
    if tally.invalid > SHOWN_INVALID:
        print(f"... and {tally.invalid - SHOWN_INVALID} more invalid rows")
    if counters is None:
        print(f"backfill (dry run): {tally.rows} rows, {tally.invalid} invalid, {tally.queued} commands built")
        return 0
    line, reconciled = reconciliation(tally, counts)
    if counts["redriven"]:
        print(f"{counts['redriven']} dead-lettered row(s) were sent back (redriven) and applied since")
    if counts["deadLettered"]:
        print("dead letters: .venv/bin/python -m local.send dead-letters update; once fixed: local.send redrive update")
    print(line)
    return 0 if reconciled else 1


def stack_backfill(catalogue: AttributeCatalogue) -> tuple[Backfill, Any]:
    """The layer's Backfill pointed at the running stack: its backfill queue and its idempotency table (moto)."""
    from engage_contact.aws.backfill_counters import BackfillCounters
    from engage_contact.aws.queues import Queues
    from engage_contact.backfill.bulk_writer import chunk_body
    from engage_contact.backfill.rows import first_row

    from .send import find_stack, use_digest_key
    from .stack import TABLE
    from .template import read_stack

    stack = find_stack()
    use_digest_key(stack)  # the rows' message groups, keyed as the stack's functions key theirs
    sqs, dynamodb = stack.client("sqs"), stack.client("dynamodb")
    spec = read_stack()
    # as deployed: each batch one chunk on the backfill's own queue, which the backfill writer drains (bulk first)
    url = sqs.get_queue_url(QueueName=spec.queue_of(spec.function_named("backfill_writer")).name)["QueueUrl"]
    queues, counters = Queues(lambda: sqs), BackfillCounters(TABLE, dynamodb)

    def send(commands: list[Any]) -> None:
        if commands:
            backfill_id, row = first_row(commands)
            queues.send_body(url, chunk_body(backfill_id, row, [(c.row, c.command) for c in commands]))

    return Backfill(catalogue, send, lambda: counters), counters


# --- a file to try it on ---------------------------------------------------------------------------------------
FIRST = ["Anna", "Bertil", "Cecilia", "David", "Eva", "Filip", "Greta", "Hugo", "Ida", "Johan", "Karin", "Lars"]
LAST = ["Andersson", "Berg", "Carlsson", "Dahl", "Ek", "Forsberg", "Gustafsson", "Holm", "Lind", "Nilsson"]
CITIES = [
    ("Lund", "SE", "22350"),
    ("Malmö", "SE", "21120"),
    ("Oslo", "NO", "0150"),
    ("Köpenhamn", "DK", "1050"),
    ("Helsinki", "FI", "00100"),
    ("Göteborg", "SE", "41101"),
]
BAD_EVERY = 20  # one row in 20 (5 %) is bad: a bad email, an unknown country, or an empty key


def generated_rows(count: int, seed: int = 18) -> Iterator[dict[str, str]]:
    """A Shopify customer export's rows; every 20th bad in one of three ways; some customers appear twice."""
    rng = random.Random(seed)
    first = last = ""
    for i in range(1, count + 1):
        repeat = i % 50 == 0  # now and then a second row (a new address) for the customer just before
        if not repeat:
            first, last = rng.choice(FIRST), rng.choice(LAST)
        city, country, zip_code = rng.choice(CITIES)
        customer = i - 1 if repeat else i
        row = {
            "Customer ID": str(6_000_000 + customer),
            "First Name": first,
            "Last Name": last,
            "Email": f"{first}.{last}.{customer}@example.com".lower(),
            "Accepts Email Marketing": rng.choice(["yes", "no"]),
            "Default Address Company": "",
            "Default Address Address1": f"{rng.choice(['Storgatan', 'Kungsgatan', 'Bygatan'])} {rng.randint(1, 99)}",
            "Default Address Address2": "",
            "Default Address City": city,
            "Default Address Province Code": "",
            "Default Address Country Code": country,
            "Default Address Zip": zip_code,
            "Default Address Phone": "",
            "Phone": f"+4670{rng.randint(1_000_000, 9_999_999)}" if rng.random() < 0.7 else "",
            "Accepts SMS Marketing": rng.choice(["yes", "no"]),
            "Total Spent": f"{rng.uniform(0, 5000):.2f}",
            "Total Orders": str(rng.randint(0, 40)),
            "Note": "",
            "Tax Exempt": "no",
            "Tags": rng.choice(["", "vip", "newsletter"]),
        }
        if i % BAD_EVERY == 0:
            flaw = (i // BAD_EVERY) % 3
            if flaw == 0:
                row["Email"] = row["Email"].replace("@", " at ")
            elif flaw == 1:
                row["Default Address Country Code"] = "XX"
            else:
                row["Email"] = ""
        yield row


def generate(count: int, target: str) -> None:
    stream = sys.stdout if target == "-" else open(target, "w", newline="", encoding="utf-8")  # noqa: SIM115
    try:
        writer = csv.DictWriter(stream, SHOPIFY_EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(generated_rows(count))
    finally:
        if stream is not sys.stdout:
            stream.close()


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.backfill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", help="CSV with a header row, or JSON Lines; - for stdin")
    parser.add_argument("--mapping", help="a JSON file, inline JSON, or a preset (shopify, woocommerce)")
    parser.add_argument("--id", help="the backfill's id (letters, digits, - and _; default from the file)")
    parser.add_argument("--wait", type=float, default=120, help="seconds without progress before rows are lost")
    parser.add_argument("--dry-run", action="store_true", help="build the commands, send nothing")
    parser.add_argument("--generate", nargs=2, metavar=("N", "FILE"), help="write a test Shopify export of N rows")
    args = parser.parse_args(argv)
    if args.generate is None and (args.file is None or args.mapping is None):
        parser.error("give FILE and --mapping (or --generate N FILE)")
    if args.id is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", args.id):
        parser.error("--id: 1-64 letters, digits, '-' or '_'")
    if args.file == "-" and args.id is None and not args.dry_run:
        # a file's id comes from its bytes; stdin's cannot be known before it is sent, and a new id each run
        # would apply its rows again
        parser.error("reading stdin (-): give --id ID, so that running the same backfill again applies no row twice")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.generate:
        generate(int(args.generate[0]), args.generate[1])
        if args.generate[1] != "-":
            print(f"local.backfill: wrote {int(args.generate[0])} rows to {args.generate[1]}", file=sys.stderr)
        return 0
    from botocore.exceptions import EndpointConnectionError

    from .send import StackNotFound

    try:
        return run(args)
    except (BadInput, StackNotFound) as exc:
        print(f"local.backfill: {exc}", file=sys.stderr)
        return 2
    except EndpointConnectionError:
        print("local.backfill: nothing answers where the stack should be: is `make run` running?", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nlocal.backfill: interrupted; the same command again goes on (no row is applied twice)", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
