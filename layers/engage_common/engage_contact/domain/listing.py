"""Naming a few of many: an error lists the first problems and counts the rest, never thousands of them.

A command with 20,000 unknown names once made a message of hundreds of kilobytes, logged and answered whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_LISTED = 10
MAX_NAME_CHARS = 64  # a name quoted back to its caller is cut to this
# What an attribute or field name looks like. Anything else (an email, a phone number, words with spaces) is
# most likely a value sent where a name belongs, and is never quoted: errors reach logs and dead letters.
NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def first_few(items: Sequence[str], limit: int = MAX_LISTED) -> list[str]:
    return list(items[:limit])


def name_some(items: Sequence[str], separator: str = "; ", limit: int = MAX_LISTED) -> str:
    """The first `limit` items joined, and how many more there are (`a; b … and 2,345 more`)."""
    shown = separator.join(items[:limit])
    more = len(items) - limit
    return f"{shown} … and {more:,} more" if more > 0 else shown


def short(name: str) -> str:
    """A caller's name as it may be quoted back: cut to MAX_NAME_CHARS (marked when cut), or, when it looks like
    a value rather than a name, only its length."""
    if not looks_like_a_name(name):
        return f"<a value-like name of {len(name)} characters>"
    return name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS] + "…"


def looks_like_a_name(name: str) -> bool:
    return NAME_LIKE.fullmatch(name) is not None
