"""Render docs/BENCHMARKS.md from bench/results.json (run after `make bench`):
python -m bench.report [results.json] [output.md]

Every figure on the page comes from the JSON; the prose only explains how they were obtained.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench import above_minimum
from bench.summary import (
    cold_floor_section,
    floor_profile_section,
    floor_section,
    latency_section,
    load_section,
    ms_cpu,
    num,
    scale_section,
    summary_section,
    table,
    unused_imports_section,
)

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "stack floor (boto3 + Powertools resolver with validation, Logger, Metrics)"
LEGACY = ("handlers.services", "handlers.states", "handlers.tasks", FLOOR, "handlers.services (tracing on)")


def ops_section(r: dict[str, Any]) -> str:
    ops = r["operations"]
    rows = []
    for name, o in ops.items():
        missed = ", ".join(o.get("missed") or [])
        rows.append([f"`{name}`", f"{o['round_trips']} / {o.get('latency_round_trips', '–')}", o.get("http_attempts", ""),
                     f"{num(o.get('minimum_round_trips'))} / {num(o.get('minimum_latency_round_trips'))}",
                     f"{o.get('items_read', '')} / {num(o.get('items_read_allowed'))}",
                     f"{o['zero_latency_handler_us']:.0f} / {o['zero_latency_bare_us']:.0f}",
                     f"**{o['zero_latency_added_us']:.0f}**", f"**{num(o['zero_latency_ratio'])}**",
                     num(o.get("zero_latency_wall_ratio")),
                     f"{o['handler_median_ms']:.2f} / {o['direct_median_ms']:.2f}", num(o["overhead_ratio"]),
                     f"MISS: {missed}" if missed else "met"])
    header = ["operation", "calls / latency round trips", "HTTP attempts", "minimum (rule): calls / latency",
              "items read / allowed",
              "zero latency: handler / bare µs", "added µs", "ratio", "ratio (wall)", "moto: handler / direct ms",
              "moto ratio", "rule"]
    added = sorted(o["zero_latency_added_us"] for o in ops.values())
    ratios = sorted(o["zero_latency_ratio"] for o in ops.values() if o["zero_latency_ratio"] is not None)
    unit = (r.get("calibration") or {}).get("bare_get_item_us")
    in_units = f" ({added[0] / unit:.1f} to {added[-1] / unit:.1f} bare GetItems)" if unit else ""
    return (table(header, rows) + "\n\n" +
            f"Across the {len(ops)} operations, the handler adds {added[0]:.0f} to {added[-1]:.0f} µs{in_units} to the "
            f"bare calls when the backend answers at once (ratio {ratios[0]:.2f} to {ratios[-1]:.2f}); against moto, "
            "whose answers take milliseconds, the same cost is a smaller share (moto ratio). The reasons of the "
            "misses are in the table of misses above.")


def profile_section(r: dict[str, Any]) -> str:
    profile = r.get("profile") or {}
    if not profile:
        return "Not measured in this run."
    names = list(profile)
    categories = list(next(iter(profile.values()))["added_us"])
    rows = []
    for category in categories:
        cells = []
        for name in names:
            entry = profile[name]
            share = entry["added_share"].get(category)
            cells.append(f"{entry['added_us'][category]:.0f} ({share * 100:.0f} %)" if share is not None else
                         f"{entry['added_us'][category]:.0f}")
        rows.append([category, *cells])
    rows.append(["**total added**", *[f"**{profile[name]['added_total_us']:.0f}**" for name in names]])
    rows.append(["handler / bare (µs, as measured above)",
                 *[f"{sum(profile[n]['handler_us'].values()):.0f} / {sum(profile[n]['bare_us'].values()):.0f}"
                   for n in names]])
    runs = next(iter(profile.values()))["runs"]
    return (table(["where the added time goes (µs per request, share)", *[f"`{n}`" for n in names]], rows) + "\n\n" +
            f"{runs} zero-latency requests and {runs} bare replays of each operation, sampled every "
            f"{next(iter(profile.values()))['sample_interval_us']:.0f} µs of wall time (bench/profile.py: a "
            "statistical profiler charging each sample to the innermost frame that is not the standard library "
            "or a shared helper, by module; the shares are applied to the zero-latency CPU times of the table "
            "above, measured without the profiler). "
            "\"Added\" is the handler's time in a category minus the bare calls' time in it; botocore's line is "
            "the difference in the calls themselves, the same on both sides, so its value shows the profiler's "
            "error; item encoding counts boto3's TypeSerializer / TypeDeserializer where lib/store "
            "uses them (a store that decodes items itself counts as the project). Shares of a few percent move "
            "between runs on this machine.")


def growth_section(r: dict[str, Any]) -> str:
    growth, cases = r.get("growth") or {}, r.get("growth_cases") or {}
    if not growth:
        return "Not measured in this run."
    sizes = [str(size) for size in r["settings"]["growth_sizes"]]
    rows = []
    for name, per in growth.items():
        row: list[object] = [f"`{name}`"]
        for size in sizes:
            e = per[size]
            mark = " ✗" if e.get("missed") else ""
            row.append(f"{e['round_trips']} / {e.get('latency_round_trips', '–')} "
                       f"(minimum {num(e.get('minimum_round_trips'))} / {num(e.get('minimum_latency_round_trips'))}){mark}")
        for size in sizes:
            row.append(num(per[size]["items_read_per_returned"]))
        for size in sizes[1:]:
            row.append(num(per[size]["latency_ratio"]))
        rows.append(row)
    header = (["case"] + [f"calls / latency round trips @{s}" for s in sizes] + [f"read per returned @{s}" for s in sizes]
              + [f"latency ×{s} vs {sizes[0]}" for s in sizes[1:]])
    detail = table(["case", "request", "size is", "timed runs per size"],
                   [[f"`{name}`", c["request"], c["size_is"], c.get("timed_runs")] for name, c in cases.items()])
    return table(header, rows) + "\n\n✗ = above the rule's minimum (calls, items read or latency round trips); " \
        "see the misses.\n\n" + detail


def misses_section(r: dict[str, Any]) -> str:
    misses = r.get("misses") or []
    if not misses:
        return "None: every operation and growth case meets the rule."
    rows = [[f"`{m['where']}`", ", ".join(m["missed"]),
             f"{m['round_trips']} / {num(m['minimum_round_trips'])}; "
             f"{num(m.get('latency_round_trips'))} / {num(m.get('minimum_latency_round_trips'))}",
             f"{m['items_read']} / {num(m.get('items_read_allowed'))}", m.get("because") or ""] for m in misses]
    unused = r.get("reasons_unused") or []
    note = (f"\n\nReasons recorded in bench/reasons.py that no miss uses (stale?): {', '.join(unused)}."
            if unused else "")
    return table(["where", "missed", "calls / minimum; latency round trips / minimum", "items read / allowed", "why"],
                 rows) + note


def arguments_section(r: dict[str, Any]) -> str:
    """bench/above_minimum.py's proofs and open cases, beside this run's extra round trips."""
    found = above_minimum.above(r)
    rows = [[f"`{where}`", num(found.get(where)) if where in found else "–",
             "proof" if a.status == above_minimum.PROOF else "**open**",
             "any" if a.extra is None else a.extra, a.text] for where, a in above_minimum.ARGUMENTS.items()]
    problems = r.get("above_minimum_disagreements") or []
    note = ("\n\nThis run disagrees with the list: " + "; ".join(problems) + "." if problems else "")
    return table(["operation or growth case", "extra round trips (this run)", "argument", "covers", "why"],
                 rows) + note


def lists_section(r: dict[str, Any]) -> str:
    rows = [[f"`{n}`", v["items_read"], v["items_returned"], num(v["items_read_per_returned"], 3),
             "met" if v["items_read_per_returned"] is None or v["items_read_per_returned"] <= 1.1 else "MISS"]
            for n, v in r["lists"].items()]
    return table(["list", "items read", "items returned", "read per returned", "≤ 1.1"], rows)


def scaling_section(r: dict[str, Any]) -> str:
    sc = r["scaling"]
    rows = [[f"`{n}`", ms_cpu(r, s["before"]["median_ms"]), ms_cpu(r, s["after"]["median_ms"]),
             s["scaling_latency_ratio"],
             f"{s['before']['round_trips']} / {s['after']['round_trips']}"]
            for n, s in sc.items() if isinstance(s, dict) and "before" in s]
    first = next((s for s in sc.values() if isinstance(s, dict) and "before" in s), {})
    return (f"The same reads on the operations' table and on a twin holding the same items plus "
            f"{first.get('unrelated_conversations', 0):,} unrelated conversations ({sc.get('unrelated_items_per_conversation')} "
            f"items each, {sc.get('unrelated_items_written', 0):,} items written in {sc.get('insert_seconds')} s), "
            "interleaved request by request; medians after one warm-up round.\n\n" +
            table(["read", "before (CPU)", "after (CPU)", "latency ratio", "calls before / after"], rows))


def maintenance_section(r: dict[str, Any]) -> str:
    m = r.get("maintenance") or {}
    data = "; ".join(f"{size}: {how}" for size, how in (m.get("data") or {}).items())
    lines = [f"Status: {m.get('status', 'not run')}.", "",
             "Conversations of a tenant of their own (a service, a state, a task in it; every other one ended), "
             f"in a table of their own ({data or 'none built'}; a copy is the raw items of a conversation under a "
             "new service id, a sample of them read through the API and compared with their originals). Export "
             "stream: every page (`limit=1000`) of a window holding them all, with `export_content=true` and "
             "without (`export_stream_ids`); files: JSON Lines; purge: `purge.service.all` (on a copy of the "
             "table). A 202 is followed to its job's end, polled every 0.5 s by the benchmark: the polls are not "
             "counted. Without a jobs queue configured, the job continues on a background thread of the process "
             "(as in the local run; deployed, in an invocation of its own), where its calls are counted.", ""]
    for name, state in (m.get("routes") or {}).items():
        lines.append(f"* `{name}`: {state}")
    sizes = [str(size) for size in m.get("sizes", [])]
    rows = []
    for case in ("export_stream", "export_stream_ids", "export_files", "purge"):
        per = m.get(case) or {}
        for size in sizes:
            e = per.get(size)
            if not e:
                rows.append([case, size, per.get("status", "not available"), "", "", "", "", "", ""])
                continue
            rows.append([case, size, e.get("status"), e.get("round_trips"), e.get("scans"),
                         num(e.get("items_read_per_exported"), 3) if "items_read_per_exported" in e else "",
                         num(e.get("write_requests_per_deleted_item"), 4) if case == "purge" else "",
                         ms_cpu(r, e["handler_cpu_seconds"] * 1000) if e.get("handler_cpu_seconds") is not None
                         else "", e.get("elapsed_seconds")])
    lines += ["", table(["case", "conversations", "status", "round trips", "Scans", "items read per exported",
                         "write requests per deleted item (target ≤ 0.04)", "handler CPU", "elapsed s"], rows)]
    return "\n".join(lines)


def import_section(r: dict[str, Any]) -> str:
    m = r.get("import")
    if not m:
        return "Not measured in this run."
    lines = [f"`cs-import` of {m['conversations']:,} conversations from export files (JSON Lines: "
             + ", ".join(f"{name} {n:,} lines" for name, n in (m.get("source_file_lines") or {}).items())
             + ") into an empty tenant of moto's DynamoDB in process (bench/migration.py). Requests and items are "
             "counted on the DynamoDB client, not taken from the importer's report; a sample of "
             f"{m.get('checked_whole')} conversations is read back whole and compared with what was exported.", ""]
    if m.get("measured_by"):
        lines += [f"Measured by: {m['measured_by']}.", ""]
    reads = ", ".join(f"{name} {n:,}" for name, n in (m.get("read_requests") or {}).items()) or "none"
    lines.append(table(["items written", "write requests", "items per write request (target ≥ 20)",
                        "conversations per second", "seconds", "read requests", "throttled"],
                       [[f"{m['items_written']:,}", f"{m['write_requests']:,}", m["items_per_write_request"],
                         m["conversations_per_second"], m["seconds"], reads, m.get("throttled", 0)]]))
    lines += ["", "The time is moto's (it recomputes an item's size at each attribute it sets); against DynamoDB "
              "the import waits one request's latency per 25 items."]
    return "\n".join(lines)


def authorization_section(r: dict[str, Any]) -> str:
    a = r.get("authorization") or {}
    if a.get("status") != "measured":
        return f"{a.get('status', 'not run')}."
    lookups = (r.get("grant_lookups") or {}).get("total")
    return (f"`{a['request']}` made by a newly granted caller, twice, in {a['rounds']} rounds (one new caller "
            "each, granted with scripts/grants.py): the first request finds no cached grant (cold), the second "
            "does (warm). The grant lookups are kept apart from every operation's round trips in this benchmark "
            f"(the cache decides when they happen); {lookups} happened during the whole run.\n\n" +
            table(["round trips of the request", "grant lookups, first request", "grant lookups, next request",
                   "first request (CPU)", "next request (CPU)", "first minus next (ms)"],
                  [[a["round_trips_of_the_request"], a["extra_round_trips_cold"], a["extra_round_trips_warm"],
                    ms_cpu(r, a["cold_ms"]), ms_cpu(r, a["warm_ms"]), a["cold_minus_warm_ms"]]]))


def cold_section(r: dict[str, Any]) -> str:
    cs = r["cold_start"]
    if "import_boto3_median_s" not in cs:
        return f"Artifact cold start: {cs.get('status', 'not measured')}."
    functions = [name for name, entry in cs.items() if isinstance(entry, dict) and "artifact_ratio_to_boto3" in entry]
    bare = cs["bare_handler"]
    rows = [["`import boto3` (3.13 bytecode)", f"{num(cs.get('import_boto3_cpu_s'), 3)} / {num(cs['import_boto3_median_s'], 3)}",
             "1.00", "", "", "", ""],
            ["bare handler (client at init, one GetItem)", "", "",
             f"{num(bare.get('first_invocation_cpu_s'), 3)} / {num(bare['first_invocation_s'], 3)}", "1.00", "",
             num(bare["process_s"], 3)]]
    for name in functions:
        e = cs[name]
        rows.append([f"**{name}** ({e.get('event') or 'no GET event'})",
                     f"{num(e.get('import_cpu_s'), 3)} / {num(e['import_s'], 3)}",
                     f"**{num(e['artifact_ratio_to_boto3'])}**",
                     f"{num(e.get('first_invocation_cpu_s'), 3)} / {num(e.get('first_invocation_s'), 3)}",
                     f"**{num(e.get('first_invocation_ratio'))}**",
                     f"{num(e.get('wall_artifact_ratio_to_boto3'))} / {num(e.get('wall_first_invocation_ratio'))}",
                     num(e["process_s"], 3)])
    builds = []
    for name, b in (cs.get("builds") or {}).items():
        swapped = ", ".join(f"{s['distribution']} {s['version']} ({s['built_for']} → {s['replaced_by']})"
                            for s in b.get("replaced_for_this_machine") or []) or "none"
        code = b.get("bytecode") or {}
        builds.append([name, b.get("build_seconds"), swapped,
                       f"{code.get('modules_without_3.13_bytecode')} of {code.get('modules')}",
                       ", ".join(f"{k.removeprefix('pyc_')}: {v}" for k, v in code.items() if k.startswith("pyc_"))])
    failed = [f"{name}: {' '.join(str(entry['status']).split()).rstrip('.')}" for name, entry in cs.items()
              if isinstance(entry, dict) and str(entry.get("status", "")).startswith("not available")]
    legacy = [[n, cs[n]["median_s"], cs[n]["ratio_to_boto3"]] for n in LEGACY if isinstance(cs.get(n), dict)]
    clients = ", ".join(f"{name} {cs[name].get('clients_built_at_init', '?')}" for name in ["bare_handler", *functions])
    own = None
    if isinstance(cs.get("handlers.services"), dict) and isinstance(cs.get(FLOOR), dict):
        own = round(cs["handlers.services"]["median_s"] - cs[FLOOR]["median_s"], 3)
    return "\n".join([
        f"Median of {cs['runs']} fresh `python3.13 -B -S` processes per row, rows interleaved "
        f"(interpreter: `{cs.get('python')}`)"
        + (", measured first in the run, before its own process holds the other parts' tables" if
           cs.get("phase") == "first" else "") + ". \"Import\" is the handler module's import (the app and "
        "its routes built); \"with first invocation\" adds the first call of lambda_handler with the event "
        "named, against the embedded DynamoDB over loopback; \"process\" is the whole process as the parent saw it "
        "(interpreter start and exit included). The ratios are of CPU time (the process's, measured inside it): "
        "on this shared machine a process also waits for a CPU, the longer it runs the more, so wall-time ratios "
        "(beside) grow with the machine's load; on an idle machine the two agree.", "",
        table(["what", "import s (CPU / wall)", "ratio to `import boto3`", "import + first invocation s (CPU / wall)",
               "ratio to the bare handler", "wall-time ratios (import / first invocation)", "process s (wall)"],
              rows), "",
        *([f"Not measured: {'; '.join(failed)}.", ""] if failed else []),
        "What was built (`make build-<Function> ARTIFACTS_DIR=<tmp>`), and what had to change to run it here:", "",
        table(["function", "build s", "replaced for this machine (same version)", "modules without 3.13 bytecode",
               "bytecode files by tag"], builds), "",
        "A module without bytecode for the runtime's Python is compiled at every cold start (Lambda's file "
        "system is read-only, so nothing is cached). botocore clients existing right after the import (counted "
        f"in the fresh process): {clients}; what is not built at init is built by the first invocation, which "
        "is why it is timed with the import.", "",
        *([f"template.yaml deploys with SnapStart (ApplyOn: {cs['snapstart']}): an environment then starts by "
           "restoring a snapshot taken after this init (and after the functions' before-snapshot hook), which "
           "cannot be emulated here; what is measured is the init itself, paid once per published version and by "
           "any environment started without a snapshot.", ""] if cs.get("snapstart") and cs["snapstart"] != "None"
          else []),
        "The earlier figure, kept for comparison: imports in the development virtualenv (bytecode cached, no "
        "tracing unless stated):", "",
        table(["import (fresh process)", "median s", "ratio to `import boto3`"],
              [["boto3", cs.get("boto3_median_s"), "1.00"], *legacy]),
        "" if own is None else f"\nThe project's modules and routes add {own} s to the stack floor in that setting.",
    ])


def output_section(r: dict[str, Any]) -> str:
    out = r.get("function_output") or {}
    if not out:
        return ""
    levels = ", ".join(f"{level} {count}" for level, count in sorted(out.get("log_records_by_level", {}).items()))
    metrics = ", ".join(f"{name} {count}" for name, count in sorted(out.get("metric_documents_by_name", {}).items()))
    errors = "; ".join(out.get("first_errors") or [])
    return (f"What the functions printed during the run (CloudWatch Logs when deployed; a file here): "
            f"{out.get('lines', 0):,} lines, {out.get('bytes', 0):,} bytes; log records by level: {levels or 'none'}; "
            f"EMF metric documents by metric: {metrics or 'none'}." + (f" First errors: {errors}." if errors else ""))


def tracing_section(r: dict[str, Any]) -> str:
    log = r.get("tracing_log") or {}
    if not log.get("records"):
        return "The X-Ray SDK logged nothing during the run."
    cases = ", ".join(f"`{name}` ({count})" for name, count in sorted(log["by_case"].items()))
    messages = "; ".join(f"\"{message}\" × {count}" for message, count in log["messages"].items())
    notes = []
    if any("Message too long" in message for message in log["messages"]):
        notes.append("\"Message too long\" means a trace segment outgrew a UDP datagram (64 KB) and was dropped: "
                     "Powertools' Tracer records the handler's response in the segment (`capture_response`), so a "
                     "large response loses its trace, and the request pays for the failed send.")
    if any("No subsegment to end" in message for message in log["messages"]):
        notes.append("\"No subsegment to end\" comes from calls made outside any invocation's segment, as a "
                     "maintenance job continuing on a background thread of the process makes them (deployed, a job "
                     "continues in an invocation of its own).")
    return (f"The X-Ray SDK logged {log['records']} warnings or errors during the run: {messages}. By case: {cases}. "
            + " ".join(notes))


def feed_section(r: dict[str, Any]) -> str:
    feed = r.get("feed") or {}
    if "write_units" not in feed:
        return "Not measured in this run."
    tp, delay = feed.get("throughput") or {}, feed.get("delay_ms") or {}
    rows = [[f"`{name}`", num(w["wru_before"]), num(w["wru_after"]),
             "–" if w["added"] is None else f"**{w['added']:+d}**"]
            for name, w in feed["write_units"].items() if w["wru_before"] or w["wru_after"]]
    reads = [name for name, w in feed["write_units"].items() if not w["wru_before"] and not w["wru_after"]]
    added = [w["added"] for w in feed["write_units"].values() if w["added"]]
    return f"""Measured by `{feed.get('command', r['command'])}` (1-minute load average {feed.get('load_average', '–')}).

* **Publisher, one shard**: **{num(feed['events_per_second'], 1)} events/s** ({num(tp.get('records_per_second'), 1)} records/s,
  {tp.get('events')} events in {tp.get('invocations')} invocations of {tp.get('batch_size')} records): the publisher's
  invocations one after another, as one shard's are, publishing to moto's EventBridge with a rule to an
  SQS queue (every event checked to have arrived). The publisher's own code alone (moto's bus
  replaced by a client that accepts at once): {num(tp.get('publisher_code_events_per_second'), 1)} events/s. Reading the
  stream (the event source mapping's work, moto's slowest part) is not in these figures: with it,
  {num(tp.get('with_stream_reads_seconds'), 3)} s for the {tp.get('events')} events.
* **Commit to the embedded bus** in the local run (`python -m local.server`, what `make run` starts):
  **p50 {num(delay.get('p50'), 1)} ms, p99 {num(delay.get('p99'), 1)} ms** over {delay.get('samples')} writes (max {num(delay.get('max'), 1)} ms),
  from PutItem's reply to the event's arrival at a `GET /local/events` client: it includes the idle
  shard's polling (4 times a second, as Lambda polls), the invocation, PutEvents, and the local run's
  own watcher of the bus (every 50 ms) and SSE push.
* **Write units per operation**, before the feed (recorded on commit
  `{feed.get('write_units_baseline_commit')}`, the code before it: bench/feed_costs_before.json) and with it, both counted
  by scripts/costs.py from what each operation writes (item sizes, transactions at twice the units,
  index entries); in results.json as `operations.<op>.write_units_added_by_feed`. Operations that
  write nothing are left out ({len(reads)} reads: no change).

{table(["operation", "WRU before", "WRU with the feed", "added"], rows)}

The feed adds {min(added) if added else 0} to {max(added) if added else 0} write units where it adds any, and no operation writes an
extra item: ends of tasks and states and their attached data now write the service item they only
checked (its two owner-index entries), and `ev` makes the item larger until the next event replaces
it (docs/DESIGN.md, Change feed: costs per operation).
"""


def _cpu_parts(r: dict[str, Any]) -> str:
    """The sentence saying that the CPU-time parts were measured again (`bench.run --only cpu`)."""
    cpu = r.get("cpu_parts")
    if not cpu:
        return ""
    load = cpu.get("load_average") or []
    return (f"\n\nThe cold start, the framework floor and its profile were measured again on "
            f"{cpu['measured_at']} by `{cpu['command']}` ({cpu['seconds']} s, load average "
            f"{' to '.join(str(x) for x in load)}), after a change that moved CPU time and no call; every other "
            "figure (calls, items, chains, growth, maintenance, feed, throughput) is the run's above.")


def render(r: dict[str, Any]) -> str:
    machine = r["machine"]
    production = (r.get("settings") or {}).get("production") or {}
    settings = r.get("settings") or {}
    load = machine.get("load_average")
    rule = r.get("rule") or ""
    rule_text = rule.split("The rule:", 1)[-1].split("`TOUCHES`", 1)[0].strip()
    sizes = " / ".join(str(s) for s in settings.get("growth_sizes", []))
    return f"""# Benchmarks

One run of `{r['command']}` ({r['mode']} mode) on {machine['cpus']} CPUs shared with other work (1-minute load
average {' at start, '.join(str(x) for x in load) + ' at the end' if load else 'not recorded'}), Python {machine['python']},
{r['seconds']} s: `python -m bench.run` writes `bench/results.json`, `python -m bench.report` renders this page;
nothing here is typed by hand. Ratios compare figures measured in the same run, interleaved; absolute times
are printed beside the run's own units.{_cpu_parts(r)}

## Summary: targets, figures, misses

{summary_section(r)}

The full tables follow: latency, the framework floor, cold starts, load, then every operation and growth
case with the rule's minimum, and how everything is measured.

## Latency: round trips a caller waits

{latency_section(r)}

## The framework floor

{floor_section(r)}

{floor_profile_section(r)}

## Cold start: the stack floor

{cold_floor_section(r)}

### What the import loads that no request uses

{unused_imports_section(r)}

### Cold start of the deployed package

{cold_section(r)}

## Load: the local server under 1, 8 and 32 clients

{load_section(r)}

## Scale on paper: where 10,000 starts a second land

{scale_section(r)}

## Misses

{misses_section(r)}

## Round trips above the minimum: proofs and open cases

Every operation or growth case whose chain is above the rule's minimum (rule 4), with either a proof that
the contract makes the minimum unreachable or, marked open, why the extra round trips are a choice of the
code and what would remove them (bench/above_minimum.py). A benchmark run whose list differs (an extra
round trip not argued, more than an argument covers, or an argument for an operation now at its minimum)
fails.

{arguments_section(r)}

## Operations: calls, latency, items read, handler overhead

{ops_section(r)}

## Where the added time goes

{profile_section(r)}

## Lists: items read per item returned (target ≤ 1.1)

{lists_section(r)}

## Growth: conversations of {sizes} states and tasks, customers of as many services

{growth_section(r)}

## Scaling with unrelated data

{scaling_section(r)}

## Maintenance: export and purge

{maintenance_section(r)}

## Import from export files

{import_section(r)}

## Change feed

{feed_section(r)}

## Authorization lookup

{authorization_section(r)}

## Tracing and function output

{tracing_section(r)}

{output_section(r)}

## How it measures

Machine: {machine['platform']}. `make test` runs `python -m bench.run --quick` (smaller sizes, fewer
repetitions, every part exercised) so the script cannot rot; no test asserts a time.

* **Production settings.** The deployed functions' environment is emulated in the process
  (bench/harness.py): template.yaml's variables ({', '.join(f'{k}={v}' for k, v in
  (production.get('environment_from_template') or {}).items())}), metrics {production.get('metrics')},
  log level {production.get('log_level')}, tracing {production.get('tracing')}, access mode
  {production.get('access_mode')} (every request made as `{production.get('caller')}`, API Gateway's IAM
  identity, granted Administrator of every tenant with scripts/grants.py in every table the handlers
  read). Not emulated: {production.get('not_emulated')}. Lambda is recognised by
  `AWS_LAMBDA_FUNCTION_NAME` (lib/observability builds the Tracer only then) and by the X-Ray SDK from
  `LAMBDA_TASK_ROOT`; each request gets a fresh `_X_AMZN_TRACE_ID`, as Lambda sets one per invocation;
  X-Ray segments go to the usual UDP address, where nothing listens.
* **What is timed.** Only the `lambda_handler` call: the API Gateway event is built before the clock
  starts and the reply read after it (bench/harness.TimedApi); the garbage collector is paused around
  each timed call (for both sides of every comparison), and what survives data loading is frozen
  (moto's tables live in this process, DynamoDB's do not live in a Lambda).
* **Which clock.** In the benchmark's process nothing runs but the request (the handler, the store's
  reader threads, botocore, and moto or the recording answering them), all of it CPU work, so its
  times are the process's CPU time: on an idle machine that is the wall time; on this shared one the
  wall time also holds the waits for a CPU that other work imposes, which would decide the comparisons
  more than the code. The wall-time figures are in results.json beside every CPU figure (`*_wall_*`).
  Cold starts are compared by CPU time as well (measured inside each fresh process), wall time beside.
* **Calibration.** Every absolute time is printed beside a unit measured in the same run
  (bench/calibration.py): CPU times beside one bare GetItem (botocore alone, answered at once), cold
  starts beside `import boto3`, the load runs beside one client alone; a fixed Python workload timed at
  the start and the end of the run shows how fast the machine ran and how much that drifted.
* **Calls.** Every AWS API call of every botocore client created in the process (the project's,
  Powertools', any other: bench/calls.py wraps botocore's client creation and hooks each new client),
  with the HTTP attempts beside them (a retried call sends more than one). Deterministic. The rule's
  minimum counts calls.
* **Latency round trips.** The chain a caller waits, under a simulated round trip per call: see
  "Latency" above (bench/latency.py). It replaces the earlier count of calls submitted to the store's
  pool together (`sequential_round_trips` in results.json, kept for tools that read it; not latency: a
  pool of 8 threads makes 200 calls in about 25 waves, not one).
* **Items read.** `ScannedCount` of Query and Scan (what DynamoDB reads before filtering), the items a
  GetItem / BatchGetItem / TransactGetItems returned. **Items returned**: services, states and tasks
  in the response, embedded ones included (for a start: the ids it answers).
* **Handler overhead, zero latency**: each request is made through `lambda_handler` on the in-process
  moto once, its DynamoDB responses recorded; then, with moto switched off, the same request through
  `lambda_handler` and the same DynamoDB calls made directly with botocore (a plain client, without
  the X-Ray SDK's patches) are both answered from the recording by a botocore `before-send` hook, at
  once. "Added" is the median handler time minus the median bare time, "ratio" their quotient;
  {settings.get('repetitions')} repetitions × {settings.get('zero_latency_runs_per_repetition')} pairs, the order of each pair alternating.
* **Handler overhead, moto** (kept from before): the request through `lambda_handler` on moto, then
  the same calls made directly with boto3 from the same table state (the table copied before, put back
  before the direct calls, untimed). moto takes milliseconds per call, so this ratio understates what
  the handler adds.
* **Backend**: moto's DynamoDB in process, with local/embedded_dynamodb's fidelity patches (atomic
  calls, all-or-nothing oversized updates, Query and transactions that only look at what they name);
  moto applies DynamoDB's 1 MB Query page.
* **Growth**: sizes {', '.join(str(s) for s in settings.get('growth_sizes', []))}; pages of `limit={settings.get('growth_page_limit')}`; the data built
  through the handlers in {settings.get('growth_build_seconds')} s, one pair of tables per size swapped into moto, requests
  that write run on a copy; sizes alternate request by request, {settings.get('growth_repetitions')} timed rounds after one warm-up (once
  for a case whose warm-up round took over 20 s); latency is the summed handler time of the requests a
  case makes; the chain under a simulated round trip is measured for every size after the timed rounds.

## The rule for the minimum

{rule_text}

bench/rule.py holds the rule and, per operation, only what the contract makes it read and change
(`TOUCHES`, never how the code does it); the minimum is computed from that and from the measured
answer. Every operation or growth case above it is a miss, listed above with the reason recorded for
it in bench/reasons.py (kept current by whoever changes the code it explains).

Rerun: `make bench` (both steps), or `python -m bench.run --quick --output /tmp/quick.json` for the
smoke run.
"""


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "BENCHMARKS.md"
    target.write_text(render(json.loads(source.read_text())))


if __name__ == "__main__":
    main()
