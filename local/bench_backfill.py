"""`python -m local.bench_backfill`: a backfill through the local stack, bulk first, measured (docs/performance.md).

Starts the local stack (as `make run` does, on free ports), then:

1. NEW: `--rows` generated rows of customers Engage does not know, through `python -m local.backfill`
   (chunks on the backfill queue, the backfill writer, Engage's bulk endpoint): Engage requests per
   1,000 rows (the sandbox's own request log), wall time, and the rows lost (the reconciliation line).
2. MIX: `--mix-rows` rows, 80 % of them customers Engage holds already (seeded first), 20 % new: requests
   per row and rows/s through the bulk path, and the same file through TODAY'S PATH (each row's command on
   the update function's FIFO queue, as before the backfill queue existed).
3. LIVE: the time from a live command's arrival (put on the update queue, as a verified webhook is) to its
   Engage call, `--live-samples` of them, while a `--live-rows` new-customer backfill runs and with none;
   and the same during the MIX run through the bulk path (where the backfill uses its whole share).

The figures are printed (and written to .bench/backfill.json); nothing here asserts them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from .template import LAYER, ROOT

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

MAPPING = {
    "lookup": {"email": "Email"},
    "columns": {"First Name": "firstName", "City": "city"},
    "createIfMissing": {"contactType": "Contact"},
}
LIVE_CUSTOMERS = 200
RESULTS = ROOT / ".bench" / "backfill.json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalStack:
    """`python -m local.stack` in a process of its own, on free ports, its addresses in a file of its own."""

    def __init__(self, folder: Path) -> None:
        self.ports = {"API_PORT": free_port(), "SANDBOX_PORT": free_port(), "MOTO_PORT": free_port()}
        self.trace_path = str(folder / "trace.jsonl")  # where a live command's time goes (local/trace.py)
        self.env = {
            **os.environ,
            **{k: str(v) for k, v in self.ports.items()},
            "LOCAL_STACK_FILE": str(folder / "stack.json"),
            "LOCAL_TRACE_FILE": self.trace_path,
        }
        for name in ("ENGAGE_BASE_URL", "ENGAGE_API_KEY", "AWS_ENDPOINT_URL"):
            self.env.pop(name, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        stdout = self.process.stdout
        assert stdout is not None  # stdout=PIPE
        for line in stdout:
            if line.strip() == "ready":
                break
        else:
            raise SystemExit("the local stack did not start")
        threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()
        self.sandbox = f"http://127.0.0.1:{self.ports['SANDBOX_PORT']}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def requests_made(self) -> int:
        return requests.get(f"{self.sandbox}/_sandbox/stats", timeout=30).json()["requests"]

    def by_route(self) -> dict[str, int]:
        return requests.get(f"{self.sandbox}/_sandbox/stats", timeout=30).json()["byRoute"]

    def seed(self, emails: list[str]) -> None:
        for email in emails:
            requests.post(
                f"{self.sandbox}/_sandbox/contacts",
                json={"contactType": "Contact", "attributes": {"email": email, "firstName": "Old", "city": "Ystad"}},
                timeout=30,
            )

    def backfill(self, path: Path, backfill_id: str) -> tuple[float, str]:
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "local.backfill",
                str(path),
                "--mapping",
                json.dumps(MAPPING),
                "--id",
                backfill_id,
                "--wait",
                "300",
            ],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        lines = done.stdout.strip().splitlines()
        return time.monotonic() - started, lines[-1] if lines else done.stderr[-500:]


def write_rows(path: Path, emails: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Email", "First Name", "City"])
        writer.writerows([email, f"Name{n}", "Lund"] for n, email in enumerate(emails))


def lost_of(line: str) -> int | None:
    try:
        return int(line.rsplit(",", 1)[1].split()[0])
    except (IndexError, ValueError):
        return None


def new_customers(stack: LocalStack, folder: Path, rows: int) -> dict[str, Any]:
    path = folder / "new.csv"
    write_rows(path, [f"new{n}@bench.example.com" for n in range(rows)])
    before = stack.requests_made()
    seconds, line = stack.backfill(path, f"bench-new-{rows}")
    made = stack.requests_made() - before
    return {
        "rows": rows,
        "engageRequests": made,
        "requestsPer1000Rows": round(made * 1000 / rows, 3),
        "wallSeconds": round(seconds, 1),
        "rowsPerSecond": round(rows / seconds, 1),
        "lost": lost_of(line),
        "line": line,
    }


def mixed(stack: LocalStack, folder: Path, rows: int, tag: str, path_name: str) -> dict[str, Any]:
    emails = [f"{tag}{n}@mix.example.com" for n in range(rows)]
    stack.seed([e for n, e in enumerate(emails) if n % 5])  # 80 % known to Engage already
    path = folder / f"{tag}.csv"
    write_rows(path, emails)
    before = stack.requests_made()
    if path_name == "bulk":
        seconds, line = stack.backfill(path, f"bench-{tag}")
    else:
        seconds, line = todays_path(stack, path, f"bench-{tag}")
    made = stack.requests_made() - before
    return {
        "path": path_name,
        "rows": rows,
        "engageRequests": made,
        "requestsPerRow": round(made / rows, 3),
        "wallSeconds": round(seconds, 1),
        "rowsPerSecond": round(rows / seconds, 1),
        "lost": lost_of(line),
        "line": line,
    }


def todays_path(stack: LocalStack, path: Path, backfill_id: str) -> tuple[float, str]:
    """The rows' commands on the update function's FIFO queue, one a row (the path before the backfill queue)."""
    from engage_contact.aws.backfill_counters import BackfillCounters
    from engage_contact.aws.queues import Queues
    from engage_contact.backfill.batch import Backfill

    from . import backfill as local_backfill
    from .send import find_stack
    from .stack import TABLE
    from .template import read_stack

    os.environ["LOCAL_STACK_FILE"] = stack.env["LOCAL_STACK_FILE"]
    found = find_stack()
    sqs, dynamodb = found.client("sqs"), found.client("dynamodb")
    spec = read_stack()
    url = sqs.get_queue_url(QueueName=spec.queue_of(spec.function_named("update_contact")).name)["QueueUrl"]
    queues, counters = Queues(lambda: sqs), BackfillCounters(TABLE, dynamodb)
    catalogue = local_backfill.catalogue_from_env()
    mapping = local_backfill.read_mapping(json.dumps(MAPPING), catalogue)

    def send(commands: list[Any]) -> None:
        queues.send_commands(url, [(c.command, c.group, c.deduplication_id) for c in commands])

    class Bar:
        n = 0

        def update(self, _: int) -> None: ...

        def refresh(self) -> None: ...

    started = time.monotonic()
    backfill = Backfill(catalogue, send, lambda: counters)
    with path.open("rb") as stream:
        source = local_backfill.open_rows(stream, path.name)
        saved, local_backfill.MAX_AHEAD = local_backfill.MAX_AHEAD, 1000  # as it was for that path
        try:
            tally = local_backfill.queue_all(backfill, backfill_id, mapping, source, (Bar(), Bar(), counters))
        finally:
            local_backfill.MAX_AHEAD = saved
    counts = local_backfill.await_settled(counters, backfill_id, tally, 300, Bar())
    line, _ = local_backfill.reconciliation(tally, counts)
    return time.monotonic() - started, line


# --- live latency ------------------------------------------------------------------------------------------------
class LiveProbe:
    """Live commands on the update queue (as a verified webhook's), each timed to the moment Engage got it."""

    def __init__(self, stack: LocalStack, every: float = 0.5) -> None:
        from .send import find_stack
        from .template import read_stack

        os.environ["LOCAL_STACK_FILE"] = stack.env["LOCAL_STACK_FILE"]
        found = find_stack()
        self.stack = stack
        self.sqs = found.client("sqs")
        spec = read_stack()
        self.url = self.sqs.get_queue_url(QueueName=spec.queue_of(spec.function_named("update_contact")).name)[
            "QueueUrl"
        ]
        self.every = every
        self.sent: dict[str, float] = {}
        self.message_ids: dict[str, str] = {}
        # live customers of their own: each command its own message group, as webhooks for different customers
        # are (one group for all would queue the probe's own commands behind each other)
        self.contacts = [
            requests.post(
                f"{stack.sandbox}/_sandbox/contacts",
                json={"contactType": "Contact", "attributes": {"email": f"live.customer{n}@bench.example.com"}},
                timeout=30,
            ).json()["id"]
            for n in range(LIVE_CUSTOMERS)
        ]

    def send(self, n: int, tag: str) -> None:
        marker = f"{tag}-{n}-{time.time_ns()}"
        contact = self.contacts[n % len(self.contacts)]
        body = {"contactId": contact, "attributes": {"street": marker}}
        self.sent[marker] = time.time()
        sent = self.sqs.send_message(
            QueueUrl=self.url, MessageBody=json.dumps(body), MessageGroupId=contact, MessageDeduplicationId=marker
        )
        self.message_ids[marker] = sent["MessageId"]

    def run_while(self, busy: threading.Thread | None, samples: int, tag: str) -> list[float]:
        n = 0
        while n < samples or (busy is not None and busy.is_alive() and n < samples * 20):
            self.send(n, tag)
            n += 1
            time.sleep(self.every)
            if busy is not None and not busy.is_alive() and n >= samples:
                break
        time.sleep(3)
        return self.latencies(tag)

    def arrivals(self, tag: str) -> dict[str, float]:
        log = requests.get(f"{self.stack.sandbox}/_sandbox/requests?route=update", timeout=60).json()
        arrived: dict[str, float] = {}
        for entry in log:
            try:
                street = json.loads(entry["body"]).get("street", "")
            except ValueError:
                continue
            if street.startswith(f"{tag}-"):
                arrived.setdefault(street, entry["started"])
        return arrived

    def latencies(self, tag: str) -> list[float]:
        arrived = self.arrivals(tag)
        return [arrived[m] - s for m, s in self.sent.items() if m in arrived and m.startswith(f"{tag}-")]

    def breakdown(self, tag: str) -> dict[str, Any]:
        """Where each live command's time went (medians, ms): on the queue until a poller received it, in the
        function until it asked for a turn, waiting for the turn, and from the turn to Engage's receipt; and
        the backfill writer's own waits for turns and Engage's requests/s meanwhile."""
        from .trace import read

        events = read(self.stack.trace_path)
        received: dict[str, float] = {}
        for event in events:
            if event["kind"] == "received":
                for message_id in event["ids"]:
                    received.setdefault(message_id, event["t"])
        live_turns = sorted(
            (e for e in events if e["kind"] == "turn" and not e["background"]), key=lambda e: e["given"]
        )
        parts: dict[str, list[float]] = {"queueMs": [], "toTurnMs": [], "turnWaitMs": [], "turnToEngageMs": []}
        arrived = self.arrivals(tag)
        window = [min(self.sent[m] for m in arrived), max(arrived.values())] if arrived else [0.0, 0.0]
        for marker, at in arrived.items():
            got = received.get(self.message_ids.get(marker, ""))
            turn = next(
                (t for t in reversed(live_turns) if got is not None and got <= t["asked"] and t["given"] <= at), None
            )
            if got is None or turn is None:
                continue
            parts["queueMs"].append(got - self.sent[marker])
            parts["toTurnMs"].append(turn["asked"] - got)
            parts["turnWaitMs"].append(turn["given"] - turn["asked"])
            parts["turnToEngageMs"].append(at - turn["given"])
        writer = [
            e["given"] - e["asked"]
            for e in events
            if e["kind"] == "turn" and e["background"] and window[0] <= e["asked"] <= window[1]
        ]
        table = [e["ms"] for e in events if e["kind"] == "dynamodb" and window[0] <= e["asked"] <= window[1]]
        log = requests.get(f"{self.stack.sandbox}/_sandbox/requests", timeout=60).json()
        during = [e for e in log if window[0] <= e["started"] <= window[1]]
        seconds = max(window[1] - window[0], 1e-9)
        result = {name: round(statistics.median(v) * 1000, 1) if v else None for name, v in parts.items()}
        result.update(
            matched=len(parts["queueMs"]),
            writerTurnWaitMs=round(statistics.median(writer) * 1000, 1) if writer else None,
            writerTurns=len(writer),
            engageRequestsPerSecond=round(len(during) / seconds, 1),
            tableCallMedianMs=round(statistics.median(table), 1) if table else None,
            tableCallsPerSecond=round(len(table) / seconds, 1),
        )
        return result


def summary(latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"samples": 0}
    ordered = sorted(latencies)
    return {
        "samples": len(ordered),
        "medianMs": round(statistics.median(ordered) * 1000, 1),
        "p90Ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1),
        "maxMs": round(ordered[-1] * 1000, 1),
    }


def live(stack: LocalStack, folder: Path, rows: int, samples: int, run: int = 0) -> dict[str, Any]:
    probe = LiveProbe(stack)
    quiet = summary(probe.run_while(None, samples, f"quiet{run}"))
    quiet_parts = probe.breakdown(f"quiet{run}")
    path = folder / f"live{run}.csv"
    write_rows(path, [f"live{run}x{n}@bench.example.com" for n in range(rows)])
    outcome: dict[str, Any] = {}

    def run_backfill() -> None:
        outcome["seconds"], outcome["line"] = stack.backfill(path, f"bench-live-{run}")

    busy = threading.Thread(target=run_backfill)
    busy.start()
    time.sleep(1)
    during = summary(probe.run_while(busy, samples, f"busy{run}"))
    busy.join()
    ratio = (
        round(during["medianMs"] / quiet["medianMs"], 2) if quiet.get("medianMs") and during.get("medianMs") else None
    )
    return {
        "backfillRows": rows,
        "noBackfill": quiet,
        "duringBackfill": during,
        "medianRatio": ratio,
        "whereTheTimeGoes": {"noBackfill": quiet_parts, "duringBackfill": probe.breakdown(f"busy{run}")},
        "backfill": outcome.get("line"),
    }


def live_during_mix(stack: LocalStack, folder: Path, rows: int, samples: int, path: str = "bulk") -> dict[str, Any]:
    """Live latency while a backfill of mostly existing customers keeps its whole share of the budget busy."""
    probe = LiveProbe(stack)
    quiet = summary(probe.run_while(None, samples, "mixquiet"))
    quiet_parts = probe.breakdown("mixquiet")
    result: dict[str, Any] = {}
    busy = threading.Thread(target=lambda: result.update(mixed(stack, folder, rows, f"livemix{path}", path)))
    busy.start()
    time.sleep(5)
    during = summary(probe.run_while(busy, samples, "mixbusy"))
    busy.join()
    ratio = (
        round(during["medianMs"] / quiet["medianMs"], 2) if quiet.get("medianMs") and during.get("medianMs") else None
    )
    return {
        "noBackfill": quiet,
        "duringMixBackfill": during,
        "medianRatio": ratio,
        "mix": result,
        "whereTheTimeGoes": {"noBackfill": quiet_parts, "duringBackfill": probe.breakdown("mixbusy")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.bench_backfill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="new-customer rows (default 100,000)")
    parser.add_argument("--mix-rows", type=int, default=2_000, help="rows of the 80/20 mix (default 2,000)")
    parser.add_argument("--live-rows", type=int, default=10_000, help="rows of the backfill live calls meet")
    parser.add_argument("--live-samples", type=int, default=20, help="live commands timed each way")
    parser.add_argument("--live-runs", type=int, default=1, help="times the live comparison is run (the spread)")
    parser.add_argument(
        "--only",
        choices=("new", "mix", "live", "live-today"),
        action="append",
        help="run only these parts (live-today: live calls during a mixed backfill on today's path)",
    )
    args = parser.parse_args(argv)
    parts = set(args.only or ("new", "mix", "live"))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        stack = LocalStack(Path(folder))
        try:
            if "new" in parts:
                results["new"] = new_customers(stack, Path(folder), args.rows)
                print("new customers:", json.dumps(results["new"]), flush=True)
            if "mix" in parts:
                results["mixBulk"] = mixed(stack, Path(folder), args.mix_rows, "mixa", "bulk")
                print("mix, bulk path:", json.dumps(results["mixBulk"]), flush=True)
                results["mixToday"] = mixed(stack, Path(folder), args.mix_rows, "mixb", "today")
                print("mix, today's path:", json.dumps(results["mixToday"]), flush=True)
            if "live" in parts:
                runs = [live(stack, Path(folder), args.live_rows, args.live_samples, n) for n in range(args.live_runs)]
                for run in runs:
                    print("live latency:", json.dumps(run), flush=True)
                ratios = [r["medianRatio"] for r in runs if r["medianRatio"] is not None]
                results["live"] = {
                    "runs": runs,
                    "medianRatios": ratios,
                    "spread": [min(ratios), statistics.median(ratios), max(ratios)] if ratios else None,
                }
                print("live latency ratios (min, median, max):", results["live"]["spread"], flush=True)
                results["liveMix"] = live_during_mix(stack, Path(folder), args.mix_rows, args.live_samples)
                print("live latency during a mixed backfill:", json.dumps(results["liveMix"]), flush=True)
            if "live-today" in parts:
                results["liveMixToday"] = live_during_mix(
                    stack, Path(folder), args.mix_rows, args.live_samples, "today"
                )
                print("live latency during a mixed backfill, today's path:", json.dumps(results["liveMixToday"]))
        finally:
            stack.stop()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
