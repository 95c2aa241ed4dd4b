"""The parts of docs/BENCHMARKS.md about issue 20's targets: the one-screen summary (targets,
figures, misses, the run's calibration units), latency as a chain, the framework floor, the stack
floor of a cold start and what the import loads that no request uses, the load run. bench/report.py
puts them on the page; every figure comes from bench/results.json.
"""

from __future__ import annotations

from typing import Any

EMBEDDED_PAGE = "list_customer_services_embedded_first_page"
EMBEDDED_TARGET = 2
LISTS_TARGET = 1.1


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def unit_us(r: dict[str, Any]) -> float | None:
    """The run's bare GetItem, CPU µs (bench/calibration.py)."""
    return (r.get("calibration") or {}).get("bare_get_item_us")


def us(r: dict[str, Any], value: float | None) -> str:
    """An absolute CPU time in µs, beside the run's bare GetItem."""
    if value is None:
        return "–"
    unit = unit_us(r)
    return f"{value:.0f} µs ({value / unit:.1f} GetItem)" if unit else f"{value:.0f} µs"


def ms_cpu(r: dict[str, Any], value: float | None) -> str:
    """An absolute CPU time in ms, beside the run's bare GetItem."""
    if value is None:
        return "–"
    unit = unit_us(r)
    return f"{value:.2f} ms ({value * 1000 / unit:.0f} GetItem)" if unit else f"{value:.2f} ms"


def status(met: bool | None) -> str:
    return "–" if met is None else ("met" if met else "**MISS**")


# ---------------------------------------------------------------- the summary


def _embedded(r: dict[str, Any]) -> tuple[str, bool | None]:
    per = (r.get("growth") or {}).get(EMBEDDED_PAGE) or {}
    if not per:
        return "not measured", None
    size = max(per, key=int)
    entry = per[size]
    chain = entry.get("latency_round_trips")
    if chain is None:
        return "not measured", None
    runs = entry.get("latency_round_trips_per_run") or [chain]
    limit = (r.get("settings") or {}).get("growth_page_limit")
    return (f"{chain} round trips ({entry['round_trips']} calls; runs {', '.join(str(n) for n in runs)}; "
            f"a customer of {size} services, pages of {limit})", chain <= EMBEDDED_TARGET)


def _chains_above(r: dict[str, Any]) -> list[str]:
    found = []
    for name, entry in (r.get("operations") or {}).items():
        least = entry.get("minimum_latency_round_trips")
        if least is not None and entry.get("latency_round_trips") is not None and entry["latency_round_trips"] > least:
            found.append(f"{name} {entry['latency_round_trips']}/{least}")
    return found


def summary_section(r: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    figure, met = _embedded(r)
    rows.append([f"latency: a customer page of 100 services with states and tasks ≤ {EMBEDDED_TARGET} round trips",
                 figure, status(met)])
    ops = r.get("operations") or {}
    if any("latency_round_trips" in entry for entry in ops.values()):
        above = _chains_above(r)
        shown = ", ".join(above[:6]) + (f" and {len(above) - 6} more (Latency, below)" if len(above) > 6 else "")
        rows.append(["latency: every operation at its minimum chain (rule 4)",
                     f"{len(ops) - len(above)} of {len(ops)} at it; above (chain/minimum): {shown or 'none'}",
                     status(not above)])
    for name, entry in (r.get("floor") or {}).items():
        items = f" ({entry['items_returned']} services)" if entry.get("items_returned", 1) > 1 else ""
        rows.append([f"handler ÷ framework floor ≤ {entry['target_handler_to_floor']:.2f}: `{name}`{items}",
                     f"{entry['handler_to_floor']:.2f} (handler {us(r, entry['handler_us'])}, floor "
                     f"{entry['floor_us']:.0f} µs, bare {entry['bare_us']:.0f} µs){_same_client(entry)}",
                     status(entry["met"])])
    cold = r.get("cold_start") or {}
    for name, entry in cold.items():
        if isinstance(entry, dict) and "first_invocation_to_floor" in entry:
            rows.append([f"cold start ÷ stack floor ≤ {entry['target_first_invocation_to_floor']:.2f}: {name}",
                         f"{entry['first_invocation_to_floor']:.2f} (import + first invocation "
                         f"{entry['first_invocation_cpu_s']:.3f} s CPU, floor {entry['floor_first_invocation_cpu_s']:.3f}"
                         f" s; `import boto3` {num(cold.get('import_boto3_cpu_s'), 3)} s)", status(entry["met"])])
    growth = r.get("growth") or {}
    pages = [(per[max(per, key=int)]["items_read_per_returned"], name, max(per, key=int))
             for name, per in growth.items() if name.startswith("list_") and per
             and per[max(per, key=int)].get("items_read_per_returned") is not None]
    if pages:
        worst, where, size = max(pages)
        rows.append([f"list pages: items read per item returned ≤ {LISTS_TARGET} (growth cases, largest size)",
                     f"worst {worst:.3f} (`{where}` at {size})", status(worst <= LISTS_TARGET)])
    loaded = (r.get("throughput") or {}).get("32_clients")
    if loaded:
        one = (r.get("throughput") or {}).get("1_clients") or {}
        scale = f" ({loaded['p50_ms'] / one['p50_ms']:.1f}× one client's {one['p50_ms']} ms)" if one.get("p50_ms") else ""
        rows.append(["load: 32 clients, mixed operations, local server, 0 errors",
                     f"{loaded['errors']} errors in {loaded['requests']} requests; {loaded['requests_per_second']} req/s; "
                     f"p50 {loaded['p50_ms']} ms{scale}, p99 {loaded['p99_ms']} ms", status(loaded["errors"] == 0)])
    misses = r.get("misses") or []
    rows.append(["calls and items read at the rule's minimum (bench/rule.py)",
                 f"{len(misses)} operations or growth cases above it (Misses, below)", status(not misses)])
    unused = cold.get("unused_imports") or {}
    if unused:
        parts = [f"{name} {entry['unused_self_ms']:.0f} of {entry['import_ms']:.0f} ms" for name, entry in unused.items()
                 if "unused_self_ms" in entry]
        rows.append(["import: what is loaded and never runs (informational)", "; ".join(parts), "–"])
    cal = r.get("calibration") or {}
    reference = cal.get("python_reference_us") or {}
    units = []
    if cal.get("bare_get_item_us"):
        units.append(f"one bare GetItem (botocore, answered at once) {cal['bare_get_item_us']:.0f} µs CPU")
    if reference:
        units.append(f"the Python reference workload {reference.get('start')} µs at the start, "
                     f"{reference.get('end')} µs at the end")
    if cal.get("import_boto3_cpu_s"):
        units.append(f"`import boto3` in a fresh python3.13 {cal['import_boto3_cpu_s']:.3f} s CPU")
    if cal.get("one_client_p50_ms"):
        units.append(f"one client alone on the local server p50 {cal['one_client_p50_ms']} ms")
    head = ("Calibration measured in this run (bench/calibration.py), beside which every absolute time on this "
            "page is printed: " + "; ".join(units) + ".") if units else \
        "No calibration in this run's results (an older bench/results.json)."
    return head + "\n\n" + table(["target", "figure (this run)", ""], rows)


# ---------------------------------------------------------------- latency


def latency_section(r: dict[str, Any]) -> str:
    ops = r.get("operations") or {}
    if not any("latency_round_trips" in entry for entry in ops.values()):
        return "Not measured in this run."
    rtt = next((entry.get("latency_rtt_ms") for entry in ops.values() if entry.get("latency_rtt_ms")), None)
    rows = []
    for name, entry in ops.items():
        least = entry.get("minimum_latency_round_trips")
        chain = entry.get("latency_round_trips")
        flag = " ✗" if least is not None and chain is not None and chain > least else ""
        rows.append([f"`{name}`", entry["round_trips"], f"**{chain}**{flag}", num(least),
                     ", ".join(str(n) for n in entry.get("latency_round_trips_per_run") or []),
                     num(entry.get("latency_wall_ms"), 1)])
    return (f"Each request again, its DynamoDB calls answered from the recording after a simulated round trip of "
            f"{num(rtt, 0)} ms per call, injected in botocore's `before-send` in the thread making the call "
            "(calls in flight on the store's pool wait at the same time; a busy pool makes the next call wait). "
            "**Latency round trips** is the longest sequence of those waits each starting after the previous one "
            "ended (bench/calls.chain): the request cannot have taken fewer round trips. It is a count, exact for "
            "the run; the machine can only lengthen it (a thread started late lets one wait end before the next "
            "begins), so the least of the runs is reported, every run beside it. The minimum is rule 4 of the "
            "rule below. The wall time under the simulated latency is beside (the chain's round trips plus the CPU "
            "work no wait hid).\n\n"
            + table(["operation", "calls", "latency round trips", "minimum", "per run", "wall ms under latency"],
                    rows)
            + "\n\n✗ = above the minimum chain. The growth table below has the same figure for every size.")


# ---------------------------------------------------------------- the framework floor


def floor_section(r: dict[str, Any]) -> str:
    floor = r.get("floor") or {}
    if not floor:
        return "Not measured in this run."
    rows = [[f"`{name}`", e.get("items_returned", "–"), " + ".join(e["calls"]), us(r, e["handler_us"]), us(r, e["floor_us"]), us(r, e["bare_us"]),
             f"**{e['handler_to_floor']:.2f}**", f"{e['target_handler_to_floor']:.2f}", status(e["met"]),
             num(e.get("handler_to_floor_same_client"), 2),
             f"{e['floor_to_bare']:.2f}", f"{e['handler_minus_floor_us']:.0f}", _calls_in_place(e)]
            for name, e in floor.items()]
    runs = next(iter(floor.values()))["runs"]
    page = (floor.get("list_customer_services_all") or {}).get("items_returned", "–")
    return ("bench/floor_app.py is the framework floor: a minimal Powertools REST app with what production uses "
            "(`APIGatewayRestResolver(enable_validation=True)`, the same route shapes with header, path, query "
            "and body models, Logger with the Lambda context and correlation id, Metrics with the cold-start "
            "metric, Tracer patching botocore, a DynamoDB client built at init), making the same DynamoDB calls "
            "with the same parameters and answering the handler's reply; it writes no log line and adds no "
            "metric of its own. The handler runs with production settings (metrics, INFO logs, tracing, "
            f"ACCESS_MODE=iam, the caller's grant cached). The list page is a customer's {page} services in one "
            f"page (`limit=100`, a customer of its own). {runs} rounds of handler, floor and the bare calls, "
            "interleaved, each answered at once from the recording (bench/floor.py); CPU medians.\n\n"
            "The floor's client is boto3's default, as a minimal app builds it; the handler's skips botocore's "
            "client-side parameter validation (DynamoDB validates every request itself) and reads the item "
            "operations' answers as the JSON DynamoDB wrote, without botocore's walk of them against the API "
            "model (lib/store/table.py; docs/DESIGN.md). "
            "The column *÷ floor, same client* is the handler against the floor app with the handler's client "
            "(`lib.store.table.new_client`), a fourth subject of the same interleaved loop: the project's own "
            "code alone, without what the client saves.\n\n"
            + table(["operation", "items returned", "calls", "handler", "floor", "bare calls", "handler ÷ floor",
                     "target", "", "÷ floor, same client",
                     "floor ÷ bare", "handler − floor µs", "the same calls in the handler / in the floor µs"], rows)
            + "\n\nThe last column times the DynamoDB calls where they are made (botocore's `_make_api_call` with "
            "X-Ray's subsegment, a second interleaved loop of half as many rounds, so that its timer is not in "
            "the figures above). The calls are the same, with the same parameters and answers, so a difference "
            "between the two is the effect on botocore of the code that runs around the calls, not a call the floor "
            "does not make: the likely cause, not measured here, is the processor's caches holding the project's "
            "code and data instead of botocore's. It is part of handler − floor that no line of the project's own "
            "shows in a profile.")


def _same_client(entry: dict[str, Any]) -> str:
    same = entry.get("handler_to_floor_same_client")
    return "" if same is None else f"; against the floor with the handler's client {same:.2f}"


def _calls_in_place(entry: dict[str, Any]) -> str:
    if "handler_calls_us" not in entry:
        return "–"
    return (f"{entry['handler_calls_us']:.0f} / {entry['floor_calls_us']:.0f} "
            f"({entry['calls_excess_us']:+.0f})")


def floor_profile_section(r: dict[str, Any]) -> str:
    profile = {name: entry for name, entry in (r.get("profile") or {}).items() if "added_over_floor_us" in entry}
    if not profile:
        return ""
    names = list(profile)
    categories = list(next(iter(profile.values()))["added_over_floor_us"])
    rows = []
    for category in categories:
        cells = []
        for name in names:
            entry = profile[name]
            value = entry["added_over_floor_us"][category]
            share = (entry.get("added_over_floor_share") or {}).get(category)
            cells.append(f"{value:.0f} ({share * 100:.0f} %)" if share is not None and value else f"{value:.0f}")
        if any(profile[name]["added_over_floor_us"][category] for name in names):
            rows.append([category, *cells])
    rows.append(["**total over the floor**", *[f"**{profile[n]['added_over_floor_total_us']:.0f}**" for n in names]])
    return ("Where the handler's time beyond the floor goes (the same sampling profiler as above, over the "
            "handler and over the floor; µs per request and share): \"project\" is lib/ and handlers/ against "
            "the floor app's own few lines; \"logging and metrics\" holds the project's request log line and "
            "business metrics, which the floor does not write.\n\n"
            + table(["handler minus floor (µs, share)", *[f"`{n}`" for n in names]], rows))


# ---------------------------------------------------------------- colder starts


def cold_floor_section(r: dict[str, Any]) -> str:
    cs = r.get("cold_start") or {}
    floor = cs.get("floor") or {}
    if not floor:
        return "The stack floor was not measured in this run."
    rows = []
    for name, f in floor.items():
        e = cs.get(name) or {}
        rows.append([name, e.get("event"), " + ".join(f.get("calls") or []),
                     f"{num(e.get('import_cpu_s'), 3)} / {num(f.get('import_cpu_s'), 3)}", num(e.get("import_to_floor")),
                     f"{num(e.get('first_invocation_cpu_s'), 3)} / {num(f.get('first_invocation_cpu_s'), 3)}",
                     f"**{num(e.get('first_invocation_to_floor'))}**", status(e.get("met")),
                     num(e.get("wall_first_invocation_to_floor"))])
    return ("The stack floor of a cold start: bench/floor_app.py (the framework floor above: resolver with "
            "validation, Logger, Metrics, Tracer, a DynamoDB client built at init), compiled by python3.13 and "
            "imported next to each function's built package in fresh processes, interleaved with the function's "
            "own, then invoked with the function's event, making the DynamoDB calls the function's first "
            "invocation made (recorded in an untimed run: with the caller's grant lookup, which a cold function "
            f"makes). CPU seconds (`import boto3`: {num(cs.get('import_boto3_cpu_s'), 3)} s), medians of "
            f"{cs.get('runs')} processes each; target ≤ 1.15.\n\n"
            + table(["function", "event", "calls", "import s: function / floor", "ratio",
                     "import + first invocation s: function / floor", "ratio", "", "ratio (wall)"], rows))


def unused_imports_section(r: dict[str, Any]) -> str:
    unused = (r.get("cold_start") or {}).get("unused_imports") or {}
    if not unused:
        return "Not measured in this run."
    parts = []
    for name, entry in unused.items():
        if "groups" not in entry:
            parts.append(f"{name}: {entry.get('status')}")
            continue
        statuses = ", ".join(f"{status_}" for _, status_ in entry.get("requests") or [])
        rows = [[f"`{g['module']}`", g["modules"], f"{g['self_ms']:.1f}", " ← ".join(f"`{m}`" for m in g["imported_by"][:4])]
                for g in entry["groups"][:15]]
        parts.append(f"**{name}**: the import takes {entry['import_ms']:.0f} ms (`-X importtime`, wall); "
                     f"{entry['unused_modules']} modules loaded by it run no function at init or in "
                     f"{len(entry.get('requests') or [])} requests (statuses {statuses}): {entry['unused_self_ms']:.0f} ms "
                     f"of their own ({(entry.get('unused_share') or 0) * 100:.0f} %). asyncio loaded: "
                     f"{'yes' if entry.get('asyncio_loaded') else 'no'}; Powertools' AppSync module loaded: "
                     f"{'yes' if entry.get('appsync_loaded') else 'no'}. The largest groups, by the module whose "
                     "import pulled them in:\n\n"
                     + table(["pulled in by importing", "modules", "own ms", "imported by"], rows))
    return ("bench/imports.py: in a fresh python3.13 process the built package's handler is imported with "
            "`-X importtime`; in another, with a profiler hook from the start, it is imported and every sample "
            "event of events/ that the function routes is invoked against the seeded DynamoDB, plus a request that "
            "fails validation. A module counts as unused when none of its functions ran (a module read only for "
            "constants counts too: the list is evidence, reviewed before anything is removed). "
            "lib/api/framework_imports.py keeps out what no request of the API uses from Powertools' event "
            "handler and event classes and from wrapt (AppSync and asyncio among them); "
            "tests/unit/test_cold_start_imports.py fails if they come back.\n\n" + "\n\n".join(parts))


# ---------------------------------------------------------------- load


def load_section(r: dict[str, Any]) -> str:
    tp = r.get("throughput") or {}
    if not tp:
        return "Not measured in this run."
    one = (tp.get("1_clients") or {}).get("p50_ms")
    rows = []
    for t in tp.values():
        scale = f" ({t['p50_ms'] / one:.1f}×)" if one and t.get("p50_ms") else ""
        rows.append([t["clients"], t["requests"], t["requests_per_second"], f"{t['p50_ms']}{scale}", t["p99_ms"],
                     t["errors"]])
    text = ("`make run`'s server, started by the benchmark on a free port (embedded DynamoDB behind one lock, "
            "each function in a pool of processes), and bench/load.py's clients in another process, each "
            "running whole conversations of 9 requests (start a service of one of 8 shared customers, get it, "
            "start a state, start a task in it, list the customer's services, end the task, transition the "
            "state, get the service with active states and tasks, end it); every status is checked. On the same "
            "2 shared cores as everything else, it measures latency under contention more than capacity; one "
            "client alone is the calibration (×).\n\n"
            + table(["clients", "requests", "req/s", "p50 ms (× one client)", "p99 ms", "errors"], rows))
    loaded = tp.get("32_clients") or {}
    if loaded.get("operations"):
        text += "\n\n32 clients, per operation:\n\n" + table(
            ["operation", "requests", "p50 ms", "p99 ms"],
            [[f"`{name}`", o["requests"], o["p50_ms"], o["p99_ms"]] for name, o in loaded["operations"].items()])
    if loaded.get("error_samples"):
        text += "\n\nFirst errors: " + "; ".join(loaded["error_samples"])
    return text


# ---------------------------------------------------------------- scale on paper


def scale_section(r: dict[str, Any]) -> str:
    scale = r.get("scale") or {}
    if not scale.get("workloads"):
        return "Not measured in this run."
    limit = scale["write_limit"]
    rows = []
    for name, workload in scale["workloads"].items():
        at = scale["at_10000_per_second"][name]
        for kind, entry in workload["by_kind"].items():
            figures = at.get(kind) or {}
            if "one_tenant_half_wcu" in figures:
                hot = (f"{figures['hundred_equal_tenants_wcu']} (100 equal tenants); {figures['one_tenant_half_wcu']:,} = "
                       f"**{figures['one_tenant_half_share'] * 100:.0f} %** (one tenant half); "
                       f"{figures['single_tenant_wcu']:,} (one tenant); limit reached by a tenant of "
                       f"{figures['tenant_share_at_limit'] * 100:.0f} % of the traffic")
            elif "wcu" in figures:
                hot = (f"{figures['wcu']:,} = **{figures['share'] * 100:.0f} %** whatever the tenants "
                       f"({figures['shards_needed']} shards would keep it under the limit)")
            else:
                hot = (f"one {kind.split(' (')[0].removeprefix('an ').removeprefix('a ')} reaches the limit at "
                       f"{figures.get('conversations_a_second_at_limit_per_partition')} of its own a second")
            rows.append([name, kind, entry["write_units_per_conversation"], entry["spread"].replace("SHARDS",
                                                                                                    str(scale["shards"])),
                         hot])
    return (f"Write units per conversation on each kind of partition, measured by running each workload once "
            "through the handlers and charging every item and index entry written to its partition "
            "(bench/partitions.py, with scripts/costs.py's accounting: 1 unit per started KB, twice in a "
            "transaction; an index entry changed costs its units again, moved both where it leaves and where it "
            f"lands). Then the hottest partition of each kind at 10,000 of them a second, against DynamoDB's "
            f"{limit:,} write units a second per partition ({scale['read_limit']:,} read units: starts read "
            "nothing). docs/DESIGN.md, \"Scale\", draws the conclusions.\n\n"
            + table(["workload (10,000 a second)", "partition", "write units per conversation", "spread over",
                     "write units a second on the hottest one (share of the limit)"], rows))
