"""What an attribute value may hold, at any depth: finite numbers, and text without hidden characters.

Engage stores what it is sent: a control or bidirectional-override character in a
name shows up in every mail, receipt and export (U+202E turns "Anna" around), and
`Infinity` is not JSON. A problem names the attribute and the character's code
point, never the value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

# Tab and ordinary line breaks (\n, \r\n) are kept in these, where a caller may mean several lines;
# names, email, phone, ids and every other standard attribute are one line. Custom attributes are free text.
FREE_TEXT_ATTRIBUTES = frozenset({"street", "careOf"})
LINE_BREAKS = frozenset({"\t", "\n"})
# Bidirectional marks, embeddings, overrides and isolates; the line and paragraph separators; the byte-order mark.
HIDDEN = frozenset({"\u061c", "\u200e", "\u200f", "\u2028", "\u2029", "\ufeff"}) | frozenset(
    map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
)


def is_hidden(char: str, free_text: bool) -> bool:
    """A character no contact attribute should hold (free text may hold tab and line breaks)."""
    code = ord(char)
    if free_text and char in LINE_BREAKS:
        return False
    # C0 controls, DEL, C1 controls, lone surrogates (which cannot even be encoded as UTF-8), and HIDDEN
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or char in HIDDEN


def text_problem(text: str, where: str, free_text: bool = False) -> str | None:
    """Why `text` cannot be sent, naming `where` and the character (never the text), or None."""
    if free_text:
        text = text.replace("\r\n", "\n")  # a Windows line break is an ordinary one; a lone \r is not
    hidden = next((c for c in text if is_hidden(c, free_text)), None)
    if hidden is None:
        return None
    allowed = " (tab and line breaks are allowed here)" if free_text else ""
    return f"'{where}' holds a control or invisible formatting character (U+{ord(hidden):04X}){allowed}"


def value_problems(name: str, value: Any, custom: bool) -> Iterator[str]:
    """Every problem of one attribute's (cleaned) value, at any depth: hidden characters, non-finite numbers."""
    free_text = custom or name in FREE_TEXT_ATTRIBUTES
    for path, part, is_key in _walk(name, value):
        if isinstance(part, float) and not math.isfinite(part):
            yield f"'{path}' is not a finite number"
        elif isinstance(part, str):
            problem = text_problem(part, path, free_text and not is_key)
            if problem:
                yield problem


def _walk(path: str, value: Any, is_key: bool = False) -> Iterator[tuple[str, Any, bool]]:
    """(dotted path, part, whether it is an object's key) for the value and each part inside it."""
    yield path, value, is_key
    if isinstance(value, Mapping):
        for index, (key, item) in enumerate(value.items()):
            yield f"{path} (key {index})", key, True
            yield from _walk(f"{path}.{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(f"{path}.{index}", item)
