"""Write units the change feed adds to each operation (issue 17): `python -m bench.feed_costs`.

The feed writes each committed change's events on the service item (`seq`, `ev`, and the `open`
count of active children; docs/DESIGN.md, "Change feed"), so its cost is the write units each
operation spends beyond what it spent before the feed. Both figures come from the same counter
(scripts/costs.py: WRU from the items each call writes, their sizes and their index entries):

* `wru_before`: recorded once on the code before the feed (`python -m bench.feed_costs --baseline`
  run on that commit) and kept in bench/feed_costs_before.json with the commit it was taken on;
* `wru_after`: measured now, on the code as it is.

`measure()` returns {op: {"wru_before", "wru_after", "added"}} for every operation of the benchmark
(`added` None for an operation the baseline does not know); `make bench` records `added` as
`operations.<op>.write_units_added_by_feed`. It sets up its own moto (as scripts/costs.py does).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BEFORE = Path(__file__).with_name("feed_costs_before.json")


def _counted() -> dict[str, dict[str, Any]]:
    sys.path.insert(0, str(ROOT))
    from scripts import costs

    rows, _ = costs.measure_operations()
    return rows


def measure() -> dict[str, dict[str, int | None]]:
    """{op: {"wru_before", "wru_after", "added"}}: write units per operation before the feed (the
    recorded baseline), now, and the difference."""
    before = json.loads(BEFORE.read_text())["wru"]
    result: dict[str, dict[str, int | None]] = {}
    for name, row in _counted().items():
        was = before.get(name)
        result[name] = {"wru_before": was, "wru_after": row["wru"],
                        "added": None if was is None else row["wru"] - was}
    return result


def record_baseline() -> dict[str, Any]:
    """Count the current code's write units as the pre-feed baseline (run on the pre-feed commit)."""
    rows = _counted()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    baseline = {"commit": commit, "counter": "scripts/costs.py (measure_operations)",
                "wru": {name: row["wru"] for name, row in rows.items()},
                "round_trips": {name: len(row["calls"]) for name, row in rows.items()},
                "rru": {name: row["rru"] for name, row in rows.items()}}
    BEFORE.write_text(json.dumps(baseline, indent=2) + "\n")
    return baseline


def main(argv: list[str]) -> int:
    if "--baseline" in argv:
        baseline = record_baseline()
        print(f"baseline of {len(baseline['wru'])} operations recorded at {baseline['commit']} in {BEFORE.name}")
        return 0
    figures = measure()
    print("| operation | WRU before the feed | WRU with the feed | added |")
    print("|---|---:|---:|---:|")
    for name, row in figures.items():
        if row["wru_before"] == 0 and row["wru_after"] == 0:
            continue  # reads
        added = "?" if row["added"] is None else f"{row['added']:+d}"
        print(f"| {name} | {row['wru_before']} | {row['wru_after']} | {added} |")
    return 0


if __name__ == "__main__":
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sys.exit(main(sys.argv[1:]))
