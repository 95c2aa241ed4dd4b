"""The figures README.md quotes are what their sources say (bench/readme.py): the generated blocks
are well formed, and the cold-start figures equal what the committed bench/results.json gives. The
costs (tests/api/test_readme_costs.py) and the package size (tests/package/test_readme_package.py)
are measured again by their own tiers."""

from __future__ import annotations

import json

import pytest

from bench import readme

TEXT = readme.README.read_text()


def test_the_readme_has_each_generated_block_once():
    assert sorted(readme.blocks(TEXT)) == ["at-rest", "cold-start", "costs", "package-size"]
    assert readme.rewrite(TEXT, {}) == TEXT


def test_cold_start_figures_are_those_of_the_committed_benchmark():
    results = json.loads(readme.RESULTS.read_text())
    assert readme.blocks(TEXT)["cold-start"] == readme.cold_start(results), \
        "README.md's cold start differs from bench/results.json: run `python -m bench.readme --only cold-start`"


def test_cold_start_quotes_the_slowest_and_fastest_function():
    results = {"machine": {"python": "3.13.0"}, "cold_start": {
        name: {"import_cpu_s": seconds, "first_invocation_cpu_s": seconds + 0.1, "clients_built_at_init": 1}
        for name, seconds in [("ServicesFunction", 0.5), ("StatesFunction", 0.7), ("TasksFunction", 0.61),
                              ("MaintenanceFunction", 0.66)]}}
    text = readme.cold_start(results).replace("\n", " ")
    assert "took 0.50–0.70 s of CPU" in text and "0.60–0.80 s with the first request" in text
    del results["cold_start"]["TasksFunction"]
    with pytest.raises(SystemExit, match="TasksFunction"):
        readme.cold_start(results)


def test_a_block_is_replaced_and_nothing_else():
    text = ("before\n<!-- BEGIN generated: x (python -m bench.readme) -->\nold\n<!-- END generated: x -->\nafter\n")
    assert readme.rewrite(text, {"x": "new\n"}) == text.replace("old", "new")
    with pytest.raises(ValueError):
        readme.rewrite(text, {"y": "new\n"})
    with pytest.raises(ValueError):
        readme.blocks(text.replace("<!-- END generated: x -->", ""))


def test_prices_are_written_as_aws_writes_them():
    assert readme._price(0.0000133334) == "0.0000133334" and readme._price(0.625) == "0.625"
