"""What runs on a developer's machine and never ships: the Engage sandbox, the local stack, drivers."""

from __future__ import annotations

import sys
from typing import NoReturn


def not_a_command(module: str, doc: str | None, instead: str) -> NoReturn:
    """`python -m local.X` of a module that other code uses (not a command of its own): say what it is and what to
    run instead, on stderr, and exit 2. Without this it would import, define, and end in silence."""
    what = (doc or "").strip().split("\n", 1)[0] or "a module of local/"
    print(f"python -m {module}: not a command. {what}\nInstead: {instead}", file=sys.stderr)
    raise SystemExit(2)
