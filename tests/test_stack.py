"""stack/ sits below tests and bench: it imports neither, and tests never import bench."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The project's own top-level packages: stack/ starts their processes but imports none of them.
PROJECT = {"adapters", "bench", "connector", "ledger", "punchh", "sandbox", "scripts", "tests",
           "wiring", "workers"}


def imported(path: Path) -> set[str]:
    """Top-level names of every module a file imports (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_stack_imports_nothing_of_the_project() -> None:
    found = {
        str(path.relative_to(ROOT)): sorted(imported(path) & PROJECT)
        for path in sorted((ROOT / "stack").glob("*.py"))
    }
    assert found and all(not names for names in found.values()), found


def test_tests_import_nothing_from_bench() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if "bench" in imported(path)
    ]
    assert offenders == []
