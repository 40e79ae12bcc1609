"""`python -m local.engage_sandbox --port PORT --api-key KEY`: run the sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time

from .server import EngageSandbox


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.engage_sandbox", description=__doc__)
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SANDBOX_PORT", 8080)),
        help="port on 127.0.0.1 (0 picks a free one and prints it); default 8080",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help="an API key the sandbox accepts (repeat for several); default sandbox-api-key",
    )
    parser.add_argument("--rate-limit", type=float, default=200.0, help="requests per second per key before 429")
    parser.add_argument("--retry-after", type=float, default=None, help="Retry-After seconds sent with a 429")
    parser.add_argument(
        "--custom-attributes",
        default="favoriteStore,shoeSize",
        help="comma-separated custom attribute ids the tenant has",
    )
    parser.add_argument(
        "--key-attribute",
        default="email",
        choices=("email", "mobilePhone", "socialSecurityNumber", "externalId"),
        help="the tenant's key attribute, which a create must carry; default email",
    )
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every Engage call; default 0")
    parser.add_argument("--no-demo", action="store_true", help="start with no demo contacts")
    parser.add_argument("--seed", type=int, default=None, help="seed for fractional faults")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C and kill -INT stop it, also when started in the background (`make sandbox &` in a script starts it
    # with SIGINT ignored, which Python would otherwise keep); TERM stops it the same way
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sandbox = EngageSandbox(
            port=args.port,
            api_keys=tuple(args.api_keys or ("sandbox-api-key",)),
            rate_limit=args.rate_limit,
            retry_after=args.retry_after,
            custom_attributes=tuple(a.strip() for a in args.custom_attributes.split(",") if a.strip()),
            key_attribute=args.key_attribute,
            latency_ms=args.latency_ms,
            demo=not args.no_demo,
            seed=args.seed,
        )
    except KeyboardInterrupt:  # stopped while it started: nothing serves yet
        return 0
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"engage sandbox: port {args.port} on 127.0.0.1 is already in use", file=sys.stderr)
            return 2
        raise
    try:  # from here a signal stops it in order, whenever it comes
        sandbox.start()  # served by a thread of its own: the main thread only waits for the signal
        print(f"Engage sandbox listening on {sandbox.url}  (port {sandbox.port})", flush=True)
        admin = ", ".join(f"/_sandbox/{name}" for name in ("requests", "rates", "faults", "config"))
        print(f"  admin: {sandbox.url}/_sandbox/contacts, {admin}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
