"""The house's rules (../shared/DESIGN.md, "The house"), read from the source.

- Adapters load nothing of ours, and no Flask, redis, rq or httpx (in a fresh interpreter).
- No import circles between our modules.
- Nothing imports upward: each part uses only the parts the table lets it use.
- The ledger is the only code that names a Redis key of the ledger: nothing else builds one,
  and nothing but bench (which measures what the ledger keeps, read-only) asks the ledger for
  a key's name to use it with Redis directly.

Each module is a case of its own, and a failure names the file, the line and the rule. A
violation that another change is removing is marked xfail(strict=True) in KNOWN, with the
violation as its reason: when the fix lands the case passes, and the mark has to go.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from wiring.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
#: Our top-level folders of Python code, the parts and what surrounds them.
FOLDERS = ("adapters", "connector", "ledger", "punchh", "wiring", "workers", "sandbox", "stack",
           "bench", "scripts", "tests")
#: The folders whose imports may not go round in a circle.
PRODUCTION = FOLDERS[:-1]
#: What each folder may import of ours besides itself (DESIGN.md, "The house"). Nothing of ours
#: uses the sandbox except tests, scripts and bench; tests never use the benchmark. `stack`
#: starts local processes for tests, bench and scripts, and imports nothing of ours itself.
MAY_USE: dict[str, frozenset[str]] = {
    "adapters": frozenset(),
    "connector": frozenset({"adapters", "ledger", "punchh", "wiring"}),
    "ledger": frozenset({"wiring"}),
    "punchh": frozenset({"wiring"}),
    "workers": frozenset({"ledger", "punchh", "wiring"}),
    "sandbox": frozenset(),
    "stack": frozenset(),
    "wiring": frozenset({"adapters", "connector", "ledger", "punchh", "workers"}),
    "bench": frozenset(FOLDERS) - {"tests"},
    "scripts": frozenset(FOLDERS) - {"tests"},
    "tests": frozenset(FOLDERS) - {"bench"},
}
#: Single modules a part may use beyond its row: the ledger stores the adapters' request type.
ALSO_MAY_USE: dict[str, frozenset[str]] = {"ledger": frozenset({"adapters.types"})}
PART_NAMES = {"connector": "Web", "adapters": "Adapters", "ledger": "Ledger", "punchh": "Punchh",
              "workers": "Workers", "sandbox": "Sandbox", "wiring": "Wiring", "stack": "stack",
              "bench": "bench",
              "scripts": "scripts", "tests": "tests"}
#: What an adapter must not load, besides every part of ours but the adapters.
NOT_FOR_ADAPTERS = ("flask", "werkzeug", "redis", "rq", "httpx")

#: (rule, module or folder) → the violation another change is removing right now.
KNOWN: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement of ours, resolved to the module of ours it loads."""

    importer: str
    imported: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.importer} imports {self.imported}"


def module_name(path: Path) -> str:
    """`connector/api.py` → `connector.api`; a package's `__init__.py` → the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of ours, by name."""
    return {
        module_name(path): path
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
    }


def resolve(name: str) -> str:
    """The module of ours `name` loads: itself, or the nearest package above it that exists."""
    known = modules()
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def parse(path: Path) -> ast.Module:
    """The syntax tree of one file."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@functools.cache
def imports() -> tuple[Import, ...]:
    """Every import of one of our modules, at any depth (in functions and TYPE_CHECKING too)."""
    found: list[Import] = []
    for name, path in modules().items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(parse(path)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # `from a import b` loads the module a.b when there is one, else a's name b.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base
                    for alias in node.names
                ]
            for target in targets:
                if target.split(".")[0] in FOLDERS:
                    found.append(Import(name, resolve(target), path, node.lineno))
    return tuple(dict.fromkeys(found))


def cases(rule: str, names: list[str]) -> list[Any]:
    """One case per name, marked xfail where KNOWN says another change is removing it."""
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN[rule, name]))
        if (rule, name) in KNOWN
        else name
        for name in names
    ]


def verdict(rule: str, broken: list[str]) -> None:
    """Fail with every line that breaks `rule`, one a line."""
    if broken:
        pytest.fail(f"{rule}:\n" + "\n".join(broken), pytrace=False)


# --- adapters are pure on import -----------------------------------------------------------------


@pytest.mark.parametrize("adapter", ["adapters.braze", "adapters.sfmc", "adapters.generic"])
def test_an_adapter_loads_nothing_of_ours_nor_flask_redis_rq_httpx(adapter: str) -> None:
    script = f"import json, sys, {adapter}; print(json.dumps([{adapter}.__file__, *sys.modules]))"
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    origin, *loaded = json.loads(run.stdout)
    assert Path(origin).is_relative_to(ROOT)  # this tree's adapters, not an installed copy
    forbidden = {*NOT_FOR_ADAPTERS, *(f for f in FOLDERS if f != "adapters")}
    verdict(
        f"`import {adapter}` in a fresh interpreter must load none of {sorted(forbidden)}",
        sorted(m for m in loaded if m.split(".")[0] in forbidden),
    )


# --- no import circles -------------------------------------------------------------------------


def circles() -> list[list[str]]:
    """The strongly connected groups of two or more production modules (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for edge in imports():
        if edge.importer.split(".")[0] in PRODUCTION and edge.importer != edge.imported:
            graph[edge.importer].add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = [stack.pop()]
            while group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


@pytest.mark.parametrize("folder", cases("cycle", list(PRODUCTION)))
def test_no_import_circle_runs_through_a_part(folder: str) -> None:
    broken = []
    for group in circles():
        if any(m.split(".")[0] == folder for m in group):
            inside = [str(e) for e in imports() if {e.importer, e.imported} <= set(group)]
            broken.append(f"circle {' / '.join(group)}:\n  " + "\n  ".join(sorted(set(inside))))
    verdict(f"no import circle may run through {folder}", broken)


# --- nothing imports upward --------------------------------------------------------------------


@pytest.mark.parametrize("module", cases("upward", sorted(modules())))
def test_a_module_imports_only_what_its_part_may_use(module: str) -> None:
    part = module.split(".")[0]
    allowed = MAY_USE[part]
    broken = [
        f"{edge}: {PART_NAMES[part]} may not use {PART_NAMES[edge.imported.split('.')[0]]}"
        for edge in imports()
        if edge.importer == module
        and edge.imported.split(".")[0] not in {part, *allowed}
        and edge.imported not in ALSO_MAY_USE.get(part, frozenset())
    ]
    verdict("DESIGN.md, the house: nothing imports upward", broken)


# --- only the ledger names its keys ------------------------------------------------------------


def names_the_prefix(node: ast.expr) -> bool:
    """`{prefix}`, `{self.prefix}`, `{settings.key_prefix}`, `{KEY_PREFIX}`..."""
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return "prefix" in name.lower()


def prefixed(node: ast.JoinedStr) -> ast.expr | None:
    """What follows the key prefix in an f-string that starts with it, else None."""
    values = node.values
    first = values[0] if len(values) > 1 else None
    if isinstance(first, ast.FormattedValue) and names_the_prefix(first.value):
        return values[1]
    return None


@functools.cache
def ledger_keys() -> tuple[frozenset[str], frozenset[str]]:
    """What the ledger writes after its key prefix, and the names it gives its keys in code."""
    pieces: set[str] = set()
    names: set[str] = set()
    for path in sorted((ROOT / "ledger").rglob("*.py")):
        tree = parse(path)
        constants = {
            t.id: n.value.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            for t in n.targets
            if isinstance(t, ast.Name) and isinstance(n.value.value, str)
        }
        for node in ast.walk(tree):
            after = prefixed(node) if isinstance(node, ast.JoinedStr) else None
            if isinstance(after, ast.Constant) and isinstance(after.value, str):
                pieces.add(after.value)
            elif isinstance(after, ast.FormattedValue) and isinstance(after.value, ast.Name):
                pieces.add(constants.get(after.value.id, ""))
            if isinstance(node, ast.FunctionDef) and node.name.endswith("_key"):
                names.add(node.name)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.JoinedStr):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and target.attr.endswith("_key"):
                        names.add(target.attr)
    return frozenset(pieces - {""}), frozenset(names)


def is_ledger_piece(text: str, pieces: frozenset[str]) -> bool:
    """A key piece of the ledger: `d:`-style pieces begin the text, bare ones are all of it."""
    return any(text.startswith(p) if p.endswith(":") else text == p for p in pieces)


def key_namings(path: Path, *, may_ask: bool = False) -> Iterator[str]:
    """Every place in one file that builds or names a ledger key, in the order of the file.

    With `may_ask`, a key the ledger names for the caller (`ledger.record_key(id)`) is allowed.
    """
    pieces, names = ledger_keys()
    prefix = next(f.default for f in fields(Settings) if f.name == "key_prefix")
    nodes = sorted(ast.walk(parse(path)), key=lambda n: getattr(n, "lineno", 0))
    for node in nodes:
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
        after = prefixed(node) if isinstance(node, ast.JoinedStr) else None
        if isinstance(after, ast.Constant) and is_ledger_piece(str(after.value), pieces):
            yield f"{where}: builds a ledger key, {prefix}{after.value}..."
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith(prefix) and is_ledger_piece(node.value[len(prefix):], pieces):
                yield f"{where}: names a ledger key, {node.value!r}"
        elif isinstance(node, ast.Attribute) and node.attr in names and not may_ask:
            yield f"{where}: names a ledger key through .{node.attr}"


def test_the_ledger_keys_are_found() -> None:
    pieces, names = ledger_keys()
    assert {"d:", "idx", "active", "m"} <= pieces and {"record_key", "metrics_key"} <= names


#: Folders that may ask the ledger for a key's name: bench measures the memory of its records.
MAY_ASK_THE_LEDGER = frozenset({"bench"})
OUTSIDE_THE_LEDGER = [
    m for m in sorted(modules()) if m.split(".")[0] in set(PRODUCTION) - {"ledger"}
]


@pytest.mark.parametrize("module", cases("keys", OUTSIDE_THE_LEDGER))
def test_only_the_ledger_names_a_ledger_key(module: str) -> None:
    found = key_namings(modules()[module], may_ask=module.split(".")[0] in MAY_ASK_THE_LEDGER)
    verdict("only the ledger names a Redis key of the ledger", list(found))


def test_every_known_violation_is_about_code_that_exists() -> None:
    stale = [f"{rule} {name}" for rule, name in KNOWN if name not in {*modules(), *FOLDERS}]
    assert not stale, "drop these from KNOWN, their module is gone: " + ", ".join(stale)
