"""The figures README.md quotes, written from their sources: `python -m bench.readme` (run by
`make bench` after the benchmark).

README.md marks each generated block with `<!-- BEGIN generated: NAME (python -m bench.readme) -->`
and `<!-- END generated: NAME -->`; the text between is replaced, nothing else is touched. The
blocks and what each is made from:

* `cold-start`: bench/results.json, `cold_start.<Function>.import_cpu_s`, `.first_invocation_cpu_s`
  and `.clients_built_at_init` of the template's functions with SnapStart, and `machine.python`;
* `package-size`: a build of ServicesFunction (`make build-ServicesFunction`, as `sam build` runs it),
  its files and its zip;
* `costs` and `at-rest`: `python -m scripts.costs --json` (every benchmark operation once on the
  embedded DynamoDB; the Lambda estimate uses bench/results.json's `operations.<name>.calls` and
  `.zero_latency_added_us`), the prices in scripts/costs.py, and template.yaml's memory sizes.

Tests compare README.md with what these give: tests/unit (cold start, from the committed
results), tests/api (the costs, measured again), tests/package (the package, built again).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local import template
from scripts import costs

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results.json"
BLOCK = re.compile(r"(<!-- BEGIN generated: (?P<name>[\w-]+) \(python -m bench\.readme\) -->\n)(?P<body>.*?)"
                   r"(<!-- END generated: (?P=name) -->)", re.S)
MONTH_SECONDS = 30 * 86400


# ---------------------------------------------------------------- the blocks


def cold_start(results: dict[str, Any]) -> str:
    """How long the init takes that SnapStart removes from a cold start (the deployed package)."""
    measured = results["cold_start"]
    # The functions a caller waits for (the change feed's publisher answers no request: its cold start
    # delays events, which bench/feed.py measures as the commit-to-bus delay).
    names = [function.name for function in snapstart_functions() if not function.handler.startswith("handlers.feed.")]
    missing = [name for name in names if "import_cpu_s" not in measured.get(name, {})]
    if missing:
        raise SystemExit(f"bench/results.json has no cold start of {', '.join(missing)}: run `make bench`")
    imports = [measured[name]["import_cpu_s"] for name in names]
    firsts = [measured[name]["first_invocation_cpu_s"] for name in names]
    client = (", which builds its DynamoDB client," if all(measured[name].get("clients_built_at_init", 0) >= 1
                                                         for name in names) else "")
    return _paragraph(
        f"The init it removes from cold starts: importing a function's handler from its package{client} took "
        f"{_range(imports)} s of CPU on the benchmark machine and {_range(firsts)} s with the first request "
        f"(the {len(names)} functions; Python {results['machine']['python']}, the deployed environment, tracing on: "
        f"[docs/BENCHMARKS.md](docs/BENCHMARKS.md#cold-start-of-the-deployed-package)); what a restore costs in "
        f"latency is not measured here (no AWS account). Costs: see [What it costs](#what-it-costs).")


def snapstart_functions() -> list[template.Function]:
    """The template's functions with a SnapStart snapshot (ApplyOn PublishedVersions, Globals merged):
    those whose init the cold-start block is about, and whose snapshots the at-rest block prices."""
    resources = template.load()
    default = ((resources.get("Globals") or {}).get("Function") or {}).get("SnapStart") or {}
    snapshotted = {name for name, resource in resources["Resources"].items()
                   if resource.get("Type") == "AWS::Serverless::Function"
                   and ((resource.get("Properties") or {}).get("SnapStart") or default).get("ApplyOn")
                   == "PublishedVersions"}
    return [function for function in template.functions() if function.name in snapshotted]


def _paragraph(text: str) -> str:
    """Text wrapped as the README's paragraphs are (100 columns)."""
    return textwrap.fill(text, width=100, break_long_words=False, break_on_hyphens=False) + "\n"


def _range(values: list[float]) -> str:
    low, high = f"{min(values):.2f}", f"{max(values):.2f}"
    return low if low == high else f"{low}–{high}"


def package_size(unpacked_bytes: int, zipped_bytes: int) -> str:
    return _paragraph(
        f"Each function's package is about {unpacked_bytes / 1e6:.0f} MB unpacked, {zipped_bytes / 1e6:.1f} MB "
        f"zipped (ServicesFunction, built as `sam build` builds it); `tests/test_package.py` checks contents, "
        f"size, bytecode version, arm64 binaries, and runs a twin built for the local CPU on a sample event.")


def measure_package() -> tuple[int, int]:
    """(bytes unpacked, bytes zipped) of ServicesFunction's package, built now."""
    with tempfile.TemporaryDirectory(prefix="readme-package-") as folder:
        artifact = Path(folder) / "artifact"
        subprocess.run(["make", "-s", "--no-print-directory", "build-ServicesFunction", f"ARTIFACTS_DIR={artifact}"],
                       cwd=ROOT, check=True)
        files = [path for path in artifact.rglob("*") if path.is_file()]
        archive = Path(folder) / "package.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(files):
                zipped.write(path, path.relative_to(artifact).as_posix())
        return sum(path.stat().st_size for path in files), archive.stat().st_size


def measure_costs() -> dict[str, Any]:
    """scripts/costs.py's measurements, in a process of their own (it sets the benchmark's environment)."""
    done = subprocess.run([sys.executable, "-m", "scripts.costs", "--json"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def cost_section(measured: dict[str, Any], recorded: dict[str, Any]) -> str:
    """The prices, the method and the table of what each operation costs."""
    p, rows = costs.PRICES, measured["rows"]
    differ = costs.differing(rows, recorded)
    note = (f" The calls of {len(differ)} operations differ from bench/results.json, which predates the code "
            f"measured here (rerun `make bench`): {', '.join(differ)}." if differ else "")
    return _paragraph(
        f"Per million requests of each operation, in USD, us-east-1 on-demand prices (API Gateway REST "
        f"${p['api_gateway_rest_per_million']:.2f} per million; Lambda arm64 "
        f"${p['lambda_requests_per_million']:.2f} per million requests and ${_price(p['lambda_arm_gb_second'])} per "
        f"GB-s; DynamoDB ${_price(p['dynamodb_wru_per_million'])} per million write request units, "
        f"${_price(p['dynamodb_rru_per_million'])} per million read request units; prices as published "
        f"{costs.PRICES_DATE}, not re-checked from this machine). DynamoDB units are counted from the items each "
        f"operation writes and reads (`python -m scripts.costs`: every benchmark operation run once on the embedded "
        f"DynamoDB, with the same clock readings every run; each item written costs 1 WRU per KB of its larger version, twice in a transaction, plus "
        f"one write per index entry added, changed or removed, two when it moves; strongly consistent reads 1 RRU "
        f"per 4 KB, index queries half; the lists are the benchmark's, 4–5 services or a conversation's children). "
        f"Round trips are the latency chain of bench/results.json (calls sent at once wait once).{note} Lambda: {int(costs.MEMORY_GB * 1024)} MB, duration "
        f"estimated as the time the handler adds to its DynamoDB calls (the zero-latency figure of "
        f"bench/results.json) plus {costs.DURATION:g} ms per DynamoDB round trip. Writes dominate: a new service is "
        f"written to the table and its indexes ({rows['start_service']['wru']} WRU); ending one moves it between "
        f"status indexes ({rows['end_service']['wru']} WRU); states are also written to one local index, tasks to "
        f"one or two (LSI2 holds the tasks of states); a service with an auto-complete also has an entry in "
        f"GSI6.") + "\n" + "\n".join(costs.table(rows, recorded)) + "\n"


def at_rest(measured: dict[str, Any]) -> str:
    """What keeping conversations and published versions costs a month."""
    p = costs.PRICES
    kilobytes = round(measured["stored_bytes"] / 1000, 1)  # one decimal: a few bytes vary between runs
    memory = sorted((f.memory for f in snapstart_functions()), reverse=True)
    sizes = " + ".join(f"{memory.count(m)} × {m} MB" if memory.count(m) > 1 else f"{m} MB"
                       for m in sorted(set(memory)))
    snapshots = sum(memory) / 1024 * p["snapstart_cache_gb_second"] * MONTH_SECONDS
    smallest = min(memory)
    return _bullets(
        f"DynamoDB storage ${p['dynamodb_storage_gb_month']:.2f} per GB and point-in-time recovery "
        f"${p['dynamodb_pitr_gb_month']:.2f} per GB: the benchmark's conversation (service, 3 states, 4 tasks, "
        f"attached data) takes {kilobytes:.1f} KB with its index entries (each child is also in a local index that "
        f"projects all attributes, tasks of a state in two), so "
        f"**${costs.storage_month_per_million(kilobytes * 1000):.2f} per million conversations kept**.",
        f"SnapStart snapshot cache, ${_price(p['snapstart_cache_gb_second'])} per GB-s for each published version "
        f"with a snapshot: the {len(memory)} live versions ({sizes}) cost **${snapshots:.2f} a month** (30 days); "
        f"every deploy that changes the code publishes new versions, whose snapshots are charged too until old "
        f"versions are deleted (`aws lambda delete-function --function-name F --qualifier N`). Each restore "
        f"(a cold start) costs ${_price(p['snapstart_restore_gb'])} per GB, "
        f"${smallest / 1024 * p['snapstart_restore_gb']:.5f} for a {smallest} MB function.")


def _price(dollars: float) -> str:
    """A price as written on AWS's pages: plain decimals, no exponent, no trailing zeros."""
    return f"{dollars:.10f}".rstrip("0").rstrip(".")


def _bullets(*items: str) -> str:
    return "".join(textwrap.fill(item, width=100, initial_indent="- ", subsequent_indent="  ",
                                 break_long_words=False, break_on_hyphens=False) + "\n" for item in items)


# ---------------------------------------------------------------- README.md


def blocks(text: str) -> dict[str, str]:
    """The generated blocks of a README text: name -> body."""
    found = {match["name"]: match["body"] for match in BLOCK.finditer(text)}
    if text.count("<!-- BEGIN generated:") != len(found):
        raise ValueError("README.md: a generated block without its END marker, or a malformed one")
    return found


def rewrite(text: str, bodies: dict[str, str]) -> str:
    """`text` with the named blocks replaced; every name must be a block of it."""
    unknown = set(bodies) - set(blocks(text))
    if unknown:
        raise ValueError(f"README.md has no block {', '.join(sorted(unknown))}")
    return BLOCK.sub(lambda m: m.group(1) + bodies.get(m["name"], m["body"]) + m.group(4), text)


def generated(names: set[str]) -> dict[str, str]:
    """The bodies of the named blocks, from their sources (measuring what must be measured)."""
    results = json.loads(RESULTS.read_text())
    makers: dict[str, Callable[[], str]] = {"cold-start": lambda: cold_start(results),
                                            "package-size": lambda: package_size(*measure_package())}
    bodies = {name: makers[name]() for name in names & set(makers)}
    if names & {"costs", "at-rest"}:
        measured = measure_costs()
        bodies.update({"costs": cost_section(measured, results["operations"]), "at-rest": at_rest(measured)})
    return {name: body for name, body in bodies.items() if name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=["cold-start", "package-size", "costs", "at-rest"],
                        help="regenerate this block only (repeatable); default: all of them")
    args = parser.parse_args(argv)
    names = set(args.only or blocks(README.read_text()))
    README.write_text(rewrite(README.read_text(), generated(names)))
    print(f"README.md: {', '.join(sorted(names))} regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
