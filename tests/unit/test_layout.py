"""The layer's rooms: imports point only downward, and no module imports itself back through others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "engage_common" / "engage_contact"
# Lower floors first; a module may import its own room and any room on a lower floor, never sideways or up.
FLOORS = [
    {"errors", "http_session"},
    {"observability"},
    {"domain"},
    {"engage", "aws"},
    {"triggers"},
    {"privacy"},
    {"ecommerce"},
    {"find_or_create", "only_changed"},
    {"backfill"},  # its bulk update plans only what changed, as a single update does
    {"operations", "ordering", "settings"},
    {"container"},
    {"handler", "intake", "privacy_function"},
    {"backfill_writer"},  # the backfill writer function's handler: the update function's command path, and bulk
]


def room_of(module: str) -> str:
    """`engage_contact.engage.client` -> `engage`; the package itself is the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "handler"


def floor_of(room: str) -> int:
    return next(i for i, rooms in enumerate(FLOORS) if room in rooms)


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every engage_contact module `path` imports, lazy imports and TYPE_CHECKING ones included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("engage_contact"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("engage_contact"))
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules and m != name}


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "engage_contact"))
def test_imports_point_only_down_or_within_the_room(module):
    room = room_of(module)
    for target in MODULES[module]:
        other = room_of(target)
        if target == "engage_contact" or other == room:
            continue
        assert floor_of(other) < floor_of(room), f"{module} imports {target}: {other} is not below {room}"


def test_no_module_imports_itself_back():
    def reach(start, seen):
        for target in MODULES[start]:
            if target not in seen:
                seen.add(target)
                reach(target, seen)
        return seen

    cycles = [m for m in MODULES if m in reach(m, set())]
    assert cycles == []


def test_every_room_says_what_lives_there_and_what_it_may_import():
    for room in (p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((room / "__init__.py").read_text())) or ""
        assert "May import" in doc, room.name


def test_no_module_imports_powertools_batch_utility_or_event_classes():
    """They import asyncio and all of Powertools' event classes, which a first SQS batch paid for on its cold start
    and never used: the batch loop is ours (triggers/sqs.py says why)."""
    heavy = ("aws_lambda_powertools.utilities.batch", "aws_lambda_powertools.utilities.data_classes", "asyncio")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [f"{module_name(path)}: {name}" for name in names if name.startswith(heavy)]
    assert found == []
