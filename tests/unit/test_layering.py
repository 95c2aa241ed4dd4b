"""The floors hold by test (docs/DESIGN.md, Layers): import contracts (pyproject.toml, checked by
`lint-imports` in `make test` and here), and no DynamoDB expression, stored attribute name or index name
in a string outside lib/store/ — the store is the only place that knows the table."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Code that must not know the table: everything deployed outside the store, and the operator scripts.
CHECKED = [*sorted((ROOT / "lib").rglob("*.py")), *sorted((ROOT / "handlers").rglob("*.py")),
           ROOT / "scripts" / "grants.py"]
CHECKED = [path for path in CHECKED if "store" not in path.relative_to(ROOT).parts[:2]]

INDEX_NAME = re.compile(r"\b(?:[GL]SI\d)(?:PK|SK)?\b")
EXPRESSION = re.compile(r"attribute_(?:not_)?exists\(|begins_with\(|\bBETWEEN\b|(?:KeyCondition|Condition|Update|Filter|"
                        r"Projection)Expression|ExpressionAttribute|ExclusiveStartKey|LastEvaluatedKey|"
                        r"(?:^|[\s(=])[#:][nv]\d")
# Stored attribute names that mean nothing outside the store (fields that are also API representation
# fields, such as `service_id` or `started`, are the domain's words and may appear anywhere).
STORED = {"PK", "SK", "aca_ms", "auto_complete_at", "cascading", "children_ttl", "completed_ms", "created_ms", "ended_ms",
          "erasure_id", "expire_at", "expires_ms", "expiry_explicit", "last_write_ms", "lease_ms", "owner_done_pk",
          "pks", "started_ms", "state_seq", "task_seq", "updated_ms"}


def _strings(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module except docstrings (which may explain the store)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def storage_knowledge(path: Path) -> list[str]:
    found = []
    for line, text in _strings(path):
        why = ("index name" if INDEX_NAME.search(text) else "DynamoDB expression" if EXPRESSION.search(text)
               else "stored attribute" if text in STORED else None)
        if why:
            found.append(f"{path.relative_to(ROOT)}:{line}: {why}: {text!r}")
    return found


def test_nothing_outside_the_store_knows_the_table():
    found = [problem for path in CHECKED for problem in storage_knowledge(path)]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("text, why", [
    ("GSI2", "index name"), ("LSI1SK", "index name"), ("attribute_not_exists(#n0)", "DynamoDB expression"),
    ("#n1 = :v2", "DynamoDB expression"), ("KeyConditionExpression", "DynamoDB expression"), ("expire_at", "stored"),
])
def test_the_check_sees_what_it_looks_for(tmp_path, text, why):
    module = tmp_path / "rules.py"
    module.write_text(f'"""A docstring may name GSI1 and expire_at."""\nVALUE = {text!r}\n')
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = storage_knowledge(module)
    finally:
        ROOT = saved
    assert len(found) == 1 and why.split()[0] in found[0], found


def test_import_contracts_hold():
    """docs/DESIGN.md's floors, as import contracts (pyproject.toml [tool.importlinter])."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_store_is_in_rooms_of_at_most_400_lines():
    """docs/DESIGN.md (Layers): lib/store is split by what each module is about, none over 400 lines."""
    sizes = {path.name: len(path.read_text().splitlines()) for path in sorted((ROOT / "lib" / "store").glob("*.py"))}
    assert len(sizes) > 20, sizes  # the store's modules, found
    assert {name: lines for name, lines in sizes.items() if lines > 400} == {}
