"""README.md's cost section and at-rest figures equal what `python -m scripts.costs` measures now
on the embedded DynamoDB (with the committed bench/results.json for the Lambda estimate): a change of
the code that changes what an operation writes or reads fails here until `python -m bench.readme`
rewrites them."""

from __future__ import annotations

import difflib
import json

import pytest

from bench import readme


@pytest.fixture(scope="module")
def measured():
    return readme.measure_costs()  # every benchmark operation once, in a process of its own


def _same(name: str, made: str) -> None:
    shown = readme.blocks(readme.README.read_text())[name]
    assert shown == made, (f"README.md's {name} differs from what the code measures (run `python -m bench.readme "
                           f"--only costs --only at-rest`):\n" + "\n".join(
                               difflib.unified_diff(shown.splitlines(), made.splitlines(), "README.md", "now",
                                                    lineterm="")))


def test_the_cost_table_is_what_the_code_costs(measured):
    _same("costs", readme.cost_section(measured, json.loads(readme.RESULTS.read_text())["operations"]))


def test_the_at_rest_figures_are_what_a_conversation_stores(measured):
    _same("at-rest", readme.at_rest(measured))
