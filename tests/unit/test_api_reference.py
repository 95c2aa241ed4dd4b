"""docs/API.md, the API reference for users, against the OpenAPI document generated from the code
(docs/openapi.json, itself kept equal to the code by tests/test_contract.py): every operation has
its section with its method, path and success status; the page names no route that does not exist;
every parameter, body field and error status the code documents appears on the page."""

from __future__ import annotations

import json
import re

from local.template import ROOT

REFERENCE = (ROOT / "docs" / "API.md").read_text()
DOCUMENT = json.loads((ROOT / "docs" / "openapi.json").read_text())
OPERATIONS = {(method.upper(), path): operation for path, ops in DOCUMENT["paths"].items()
              for method, operation in ops.items()}
HEADING = re.compile(r"^### `(GET|POST|PUT|DELETE) (/[^`]*)` → (\d{3})$", re.M)
ROUTE_MENTION = re.compile(r"`(?:(GET|POST|PUT|DELETE) )?(?:/genesys/1/cs)?(/(?:services|customers|maintenance)[^`?\s]*)")


def _sections() -> dict[tuple[str, str], tuple[str, str]]:
    """(method, path) -> (status in the heading, text of the section up to the next heading)."""
    found = {}
    matches = list(HEADING.finditer(REFERENCE))
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following else len(REFERENCE)
        found[(match[1], match[2])] = (match[3], REFERENCE[match.end():end])
    assert len(found) == len(matches), "a route has two sections"
    return found


def _successes(operation: dict) -> list[str]:
    return sorted(status for status in operation["responses"] if status.startswith("2"))


def test_every_operation_has_its_section_with_its_success_status():
    sections = _sections()
    missing = sorted(f"{m} {p}" for m, p in OPERATIONS if (m, p) not in sections)
    assert not missing, f"docs/API.md has no section for {missing}"
    for key, operation in OPERATIONS.items():
        status, text = sections[key]
        first, *others = _successes(operation)
        assert status == first, f"{key}: the heading says {status}, the code answers {first}"
        for other in others:
            assert f"`{other}`" in text, f"{key}: its other success, {other}, is not in its section"


def test_no_section_names_a_route_that_does_not_exist():
    extra = sorted(f"{m} {p}" for m, p in _sections() if (m, p) not in OPERATIONS)
    assert not extra, f"docs/API.md documents routes the API does not have: {extra}"


def _route_pattern(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", r"(\\{\\w+\\}|[^/]+)", re.escape(template)) + "$")


def test_every_route_the_page_mentions_exists():
    patterns = [(method, _route_pattern(path)) for method, path in OPERATIONS]
    unknown = []
    for match in ROUTE_MENTION.finditer(REFERENCE):
        method, path = match[1], match[2].rstrip(".,;:")
        if not any(pattern.match(path) and (method is None or method == m) for m, pattern in patterns):
            unknown.append(f"{method or ''} {path}".strip())
    assert not unknown, f"docs/API.md names routes that do not exist: {unknown}"
    assert len(list(ROUTE_MENTION.finditer(REFERENCE))) > len(OPERATIONS), "the check sees the page's routes"


def test_every_parameter_and_body_field_is_documented():
    names = set()
    for operation in OPERATIONS.values():
        names |= {parameter["name"] for parameter in operation.get("parameters", [])}
    for name, schema in DOCUMENT["components"]["schemas"].items():
        if not name.endswith(("Out", "Created", "Result")) and name not in ("Purged",):
            names |= set(schema.get("properties", {}))
    undocumented = sorted(name for name in names if f"`{name}`" not in REFERENCE)
    assert not undocumented, f"docs/API.md does not mention {undocumented}"


def test_every_error_status_the_code_answers_is_in_the_error_table():
    table = REFERENCE[REFERENCE.index("## 2. Errors"):REFERENCE.index("## 3.")]
    statuses = {status for operation in OPERATIONS.values() for status in operation["responses"]
                if status[0] in "45"}
    for status in statuses:
        assert re.search(rf"^\| {status} \| `\w+Exception` \|", table, re.M), f"{status} is not in §2's table"
