"""Write units the change feed adds to each operation (issue 17): `python -m bench.feed_costs`.

The feed writes each committed change's events on the service item (`seq`, `ev`, and the `open`
count of active children; docs/DESIGN.md, "Change feed"), so its cost is the write units each
operation spends beyond what it spent before the feed. Both figures come from the same counter
(scripts/costs.py: WRU from the items each call writes, their sizes and their index entries):

* `wru_before`: recorded once on the code before the feed (`python -m bench.feed_costs --baseline
  <commit>` run on that commit's lib/ with this module and scripts/costs.py copied beside it) and
  kept in bench/feed_costs_before.json with the commit it was taken on;
* `wru_after`: measured now, on the code as it is.

`measure()` returns {op: {"wru_before", "wru_after", "added"}} for every operation of the benchmark,
and a few writes it leaves out (merges, an end without children, a purge, a scheduled auto-completion:
`extra_operations`); `added` is None for an operation the baseline does not know; `make bench` records `added` as
`operations.<op>.write_units_added_by_feed`. It sets up its own moto (as scripts/costs.py does).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BEFORE = Path(__file__).with_name("feed_costs_before.json")


def extra_operations(api: Any, found: dict[str, Any]) -> list[Any]:
    """Writes the benchmark's operations leave out, counted here too: merges, a service end with no
    active child, a purge of one conversation, an auto-completion recorded by the schedule."""
    from bench import data
    from bench.operations import Op

    sid, state = found["active"]["service_id"], found["active"]["state_id"]

    def bare_service() -> str:
        return data.expect(api.post("/services/start", {"customer_id": "feed-bare", "service_type": 1}), 201)[
            "service_id"]

    def old_conversation() -> str:
        body = {"customer_id": "feed-old", "service_type": "billing", "timestamp": "2001-01-01T00:00:00Z"}
        service_id = data.expect(api.post("/services/start", body), 201)["service_id"]
        data.expect(api.post(f"/services/{service_id}/states/start", {"state_type": "s",
                                                                      "timestamp": "2001-01-01T00:00:01Z"}), 201)
        return service_id

    def due_conversation() -> str:
        body = {"customer_id": "feed-auto", "service_type": "billing", "auto_complete_after": 1}
        service_id = data.expect(api.post("/services/start", body), 201)["service_id"]
        data.expect(api.post(f"/services/{service_id}/states/start", {"state_type": "s"}), 201)
        from scripts import costs

        costs.CLOCK.advance(1_100)  # past its auto-complete moment (the counting runs on costs' clock)
        return service_id

    def schedule(_: Any) -> Any:
        from lib.rules import maintenance

        done = maintenance.scheduled(30_000)
        return SimpleNamespace(status=200 if done["auto_completed"] == 1 else 500, text=json.dumps(done))

    return [
        Op("merge_service_extension", lambda _: api.put(f"/services/{sid}/extensions/m/merge", {"v": time.time_ns()})),
        Op("merge_state_extension",
           lambda _: api.put(f"/services/{sid}/states/{state}/extensions/m/merge", {"v": time.time_ns()})),
        Op("end_service_without_active_children", lambda ctx: api.post(f"/services/{ctx}/end", {"disposition": 1}),
           prepare=bare_service, expect=204),
        Op("purge_one_conversation", lambda _: api.post("/maintenance/purge", {
            "limit": "2001-06-01T00:00:00Z", "operation": "purge.service.all"}), prepare=old_conversation),
        Op("record_auto_completion", schedule, prepare=due_conversation),
    ]


def _counted() -> dict[str, dict[str, Any]]:
    sys.path.insert(0, str(ROOT))
    from scripts import costs

    rows, _ = costs.measure_operations(extra_operations)
    return rows


def compare() -> dict[str, dict[str, Any]]:
    """Per operation, before the feed (the recorded baseline) and now: write units, read units and
    round trips (`*_before`, `*_after`), and the write units added."""
    before = json.loads(BEFORE.read_text())
    result: dict[str, dict[str, Any]] = {}
    for name, row in _counted().items():
        was = before["wru"].get(name)
        result[name] = {"wru_before": was, "wru_after": row["wru"], "added": None if was is None else row["wru"] - was,
                        "rru_before": before["rru"].get(name), "rru_after": row["rru"],
                        "round_trips_before": before["round_trips"].get(name), "round_trips_after": len(row["calls"])}
    return result


def measure() -> dict[str, dict[str, int | None]]:
    """{op: {"wru_before", "wru_after", "added"}}: write units per operation before the feed (the
    recorded baseline), now, and the difference."""
    return {name: {key: row[key] for key in ("wru_before", "wru_after", "added")} for name, row in compare().items()}


def record_baseline(commit: str | None = None) -> dict[str, Any]:
    """Count the current code's write units as the pre-feed baseline (run on the pre-feed commit:
    its lib/ with this module and scripts/costs.py beside it; `commit` names it when the copy is
    no git checkout)."""
    rows = _counted()
    commit = commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                      text=True).stdout.strip()
    baseline = {"commit": commit, "counter": "scripts/costs.py (measure_operations)",
                "wru": {name: row["wru"] for name, row in rows.items()},
                "round_trips": {name: len(row["calls"]) for name, row in rows.items()},
                "rru": {name: row["rru"] for name, row in rows.items()}}
    BEFORE.write_text(json.dumps(baseline, indent=2) + "\n")
    return baseline


def main(argv: list[str]) -> int:
    if "--json" in argv:  # for bench/run.py: one line, {"baseline": <commit>, "operations": measure()}
        print(json.dumps({"baseline": json.loads(BEFORE.read_text())["commit"], "operations": measure()}))
        return 0
    if "--baseline" in argv:
        baseline = record_baseline(argv[argv.index("--baseline") + 1] if len(argv) > argv.index("--baseline") + 1
                                   else None)
        print(f"baseline of {len(baseline['wru'])} operations recorded at {baseline['commit']} in {BEFORE.name}")
        return 0
    figures = compare()
    print("| operation | WRU before | WRU with the feed | added | RRU before | RRU after | round trips before | after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in figures.items():
        if not row["wru_before"] and not row["wru_after"]:
            continue  # reads: the feed changes nothing there
        added = "?" if row["added"] is None else f"{row['added']:+d}"
        print(f"| {name} | {row['wru_before']} | {row['wru_after']} | {added} | {row['rru_before']:g} | "
              f"{row['rru_after']:g} | {row['round_trips_before']} | {row['round_trips_after']} |")
    return 0


if __name__ == "__main__":
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sys.exit(main(sys.argv[1:]))
