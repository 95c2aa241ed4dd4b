"""`make bench`: what each operation costs, how cost grows, and what a cold start costs. See
docs/BENCHMARKS.md (rendered from the JSON this writes by bench/report.py).

First the cold start of the built packages and of the stack floor in fresh python3.13 processes,
with what their import loads and never runs (bench/coldstart.py, bench/imports.py), while this
process is still small. Then one process, the deployed functions' settings emulated
(bench/harness.py): the operations on the
in-process moto, on recorded responses at zero latency and under a simulated round trip per call
(bench/operations.py, bench/latency.py); the framework floor beside three of them and where the
time goes (bench/floor.py, bench/profile.py); the growth cases (bench/growth.py), scaling against
unrelated data (bench/scaling.py), maintenance and authorization slots (bench/maintenance.py,
bench/authorization.py), where the writes land (bench/partitions.py); and the local server under 1,
8 and 32 clients (bench/load.py). What is measured so far is written to `<output>.partial.json` at
each phase (removed when the run ends), so a run that fails late keeps its earlier parts. Every AWS call of the process is counted (bench/calls.py); the minimum is
bench/rule.py's; absolute times are printed beside the run's units (bench/calibration.py).

    python -m bench.run [--quick] [--output bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LISTS_TARGET = 1.1
# Fresh processes per subject in the full run: the median of 21 (interleaved rounds), as the first phase.
# (9 left a function's ratio to its floor 0.1 apart between two runs of the same code, minutes apart.)
COLD_START_RUNS = 21
PROFILED = ("get_service", "start_state", "list_customer_services_all")


def throughput(quick: bool) -> dict[str, Any]:
    """`make run`'s server on a free port in one process, bench/load.py's conversations of mixed
    operations from another: 1, 8 and 32 concurrent clients (the quick run: 1 and 32)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from bench.harness import ORIGINAL_ENVIRONMENT

    # The local server as `make run` starts it: the environment the benchmark was started with.
    env = {k: v for k, v in (ORIGINAL_ENVIRONMENT or os.environ).items()
           if not k.startswith(("AWS_ENDPOINT_URL", "AWS_LAMBDA", "LAMBDA_TASK_ROOT", "_X_AMZN", "POWERTOOLS_"))
           and k not in ("ACCESS_MODE", "AUTH", "GRANTS_FILE", "TABLE_NAME", "PAGE_TOKEN_SECRET")}
    env.update(PORT=str(port), TABLE_NAME="bench-throughput")
    # What the server prints goes to a file: a pipe nobody reads would stop it once full.
    log = tempfile.NamedTemporaryFile("w+", prefix="bench-server-", suffix=".log", delete=False)
    server = subprocess.Popen([sys.executable, "-m", "local.server"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while "Context Services API on" not in Path(log.name).read_text(errors="replace"):
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the local server did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.2)
        def load(clients: int, conversations: int) -> dict[str, Any]:
            output = subprocess.run(
                [sys.executable, "-m", "bench.load", "--url", f"http://127.0.0.1:{port}", "--clients", str(clients),
                 "--conversations", str(conversations), "--max-seconds", "60" if quick else "240"],
                cwd=ROOT, capture_output=True, text=True, check=True, env=env)
            return json.loads(output.stdout.strip().splitlines()[-1])

        report = {}
        # One client first: its latencies are the calibration the loaded runs are read against.
        report["1_clients"] = load(1, 1 if quick else 10)
        if not quick:
            # The server grows each function's pool of processes (up to 4) when requests overlap, each
            # new process a cold start: an untimed burst first, so that the runs measure warm pools.
            load(16, 1)
            report["8_clients"] = load(8, 5)
        report["32_clients"] = load(32, 1 if quick else 5)
        return report
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        os.unlink(log.name)


def feed_part(quick: bool) -> dict[str, Any]:
    """The change feed (docs/BENCHMARKS.md, Change feed): the publisher's events per second on one
    shard and the commit-to-bus delay of the local run (bench/feed.py), and the write units of every
    operation before the feed and with it (bench/feed_costs.py). Each in processes of its own, started
    with the environment the benchmark was started with (moto's state and the emulated production
    settings stay out of them)."""
    from bench import feed
    from bench.harness import ORIGINAL_ENVIRONMENT

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(ORIGINAL_ENVIRONMENT or saved)
    try:
        figures = feed.measure(quick)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "POWERTOOLS_"))}
        child = subprocess.run([sys.executable, "-m", "bench.feed_costs", "--json"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=1800)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if child.returncode != 0:
        raise RuntimeError(f"bench.feed_costs failed:\n{child.stderr[-4000:]}")
    costs = json.loads(child.stdout.strip().splitlines()[-1])
    return {**figures, "write_units": costs["operations"], "write_units_baseline_commit": costs["baseline"]}


def attach_feed_costs(results: dict[str, Any]) -> None:
    """`operations.<op>.write_units_added_by_feed` (and the write units before and with the feed) for
    every operation of the benchmark; the writes it leaves out stay in feed.write_units."""
    for name, row in (results.get("feed") or {}).get("write_units", {}).items():
        entry = results["operations"].get(name)
        if entry is not None:
            entry.update(write_units_before_feed=row["wru_before"], write_units_with_feed=row["wru_after"],
                         write_units_added_by_feed=row["added"])


def only_feed(quick: bool, output: Path) -> None:
    """`--only feed`: measure the feed part alone and put it into an existing results file (the rest
    of it is left as its own run measured it; feed.command says how this part was run)."""
    sys.path.insert(0, str(ROOT))
    results = json.loads(output.read_text())
    results["feed"] = feed_part(quick)
    results["feed"]["command"] = f"python -m bench.run --only feed{' --quick' if quick else ''}"
    results["feed"]["load_average"] = round(os.getloadavg()[0], 2)
    attach_feed_costs(results)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({key: results["feed"][key] for key in ("events_per_second", "delay_ms")}))
    print("\n".join(f"{name}: {row['wru_before']} -> {row['wru_after']} ({row['added']:+d})"
                    for name, row in results["feed"]["write_units"].items()
                    if row["added"] is not None and (row["wru_before"] or row["wru_after"])))


class FunctionOutput:
    """What the functions print (Powertools' JSON logs, EMF metrics) goes to a file, as Lambda sends it
    to CloudWatch; the terminal keeps the progress (stderr) and the summary. `close()` puts stdout
    back and returns the file's path (the caller reads it, then removes it)."""

    def __init__(self) -> None:
        self.sink = tempfile.NamedTemporaryFile("w+b", prefix="bench-stdout-", suffix=".log", delete=False)
        sys.stdout.flush()
        self.terminal = os.dup(1)
        os.dup2(self.sink.fileno(), 1)

    def close(self) -> Path:
        sys.stdout.flush()
        os.dup2(self.terminal, 1)
        self.sink.close()
        return Path(self.sink.name)


def cold_start_part(quick: bool) -> dict[str, Any]:
    """The cold start of the built packages and of the stack floor (bench/coldstart.py), measured
    first, while this process is small; the earlier figure (imports in the development virtualenv)
    only in the full run."""
    from bench import coldstart

    cold = {} if quick else coldstart.dev_venv_imports(7)
    cold.update(coldstart.measure(1 if quick else COLD_START_RUNS, ["ServicesFunction"] if quick else None))
    cold["phase"] = "first"
    return cold


def floor_subjects(api: Any, recorded: dict[str, Any], quick: bool) -> dict[str, Any]:
    """What the framework floor is measured beside: get_service and start_state as recorded, and a list
    page of 100 services (20 in the quick run), a customer of its own."""
    from bench import floor, harness

    subjects = {"get_service": recorded["get_service"], "start_state": recorded["start_state"],
                "list_customer_services_all": floor.hundred_service_page(api, 20 if quick else 100)}
    harness.settle()
    return subjects


def floor_part(api: Any, subjects: dict[str, Any], runs: int) -> dict[str, Any]:
    from bench import floor, harness

    floors = {}
    for name, (op, calls, ctx, reply) in subjects.items():
        harness.label_case(f"floor.{name}")
        floors[name] = floor.measure(api, op, ctx, calls, reply, runs)
    return floors


def profile_part(api: Any, subjects: dict[str, Any], floors: dict[str, Any], runs: int) -> dict[str, Any]:
    from bench import profile

    return {name: profile.split(api, subjects[name][0], subjects[name][1], runs, floors[name]["handler_us"],
                                floors[name]["bare_us"], floors[name]["floor_us"]) for name in PROFILED}


def only_cpu(quick: bool, output: Path) -> None:
    """`--only cpu`: the parts that time the code's own CPU work (the cold start, the framework floor and
    its profile) measured again and put into an existing results file, the rest of which (counts,
    growth, maintenance, feed, throughput) is left as its own run measured it. For a change that moves
    CPU time and no call (`cpu_parts` says when and how these parts were run, `notes` says so too)."""
    sys.path.insert(0, str(ROOT))
    from bench import harness

    harness.production_environment()  # before anything imports the project
    results = json.loads(output.read_text())
    printed = FunctionOutput()
    from bench.calls import TRACKER

    TRACKER.install()
    from bench import authorization, calibration

    TRACKER.side = authorization.is_grant_lookup
    from moto import mock_aws

    from bench import operations
    from local import embedded_dynamodb, template

    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    began, load = time.time(), [round(os.getloadavg()[0], 2)]
    reference = calibration.python_reference_us()
    print("[bench] cold start", file=sys.stderr, flush=True)
    cold = cold_start_part(quick)
    print("[bench] framework floor", file=sys.stderr, flush=True)
    with mock_aws():
        template.create_table(harness.raw_client(), harness.TABLE, stream=False)
        harness.grant(harness.TABLE)
        api = harness.TimedApi()
        found = operations.build(api)
        harness.settle()
        recorded = {}
        for op in operations.operations(api, found):
            if op.name in ("get_service", "start_state"):
                _, calls, reply, ctx = operations.measure(api, op, 1, 2, 1)
                recorded[op.name] = (op, calls, ctx, reply)
        subjects = floor_subjects(api, recorded, quick)
        floors = floor_part(api, subjects, 20 if quick else 400)
        print("[bench] profile", file=sys.stderr, flush=True)
        profiles = profile_part(api, subjects, floors, 20 if quick else 300)
    printed.close().unlink()
    load.append(round(os.getloadavg()[0], 2))
    results["cold_start"], results["floor"], results["profile"] = cold, floors, profiles
    results["cpu_parts"] = {
        "command": f"python -m bench.run --only cpu{' --quick' if quick else ''}",
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(began)),
        "seconds": round(time.time() - began, 1), "load_average": load,
        "python_reference_us": {"start": reference, "end": calibration.python_reference_us()}}
    results["calibration"]["bare_get_item_us"] = floors["get_service"]["bare_us"]
    notes = results.get("notes")
    results["notes"] = (notes if isinstance(notes, list) else [notes] if notes else []) + [
        f"cold_start, floor and profile were measured again by `{results['cpu_parts']['command']}` "
        f"({results['cpu_parts']['measured_at']}, after a change of CPU time only); the rest is this run's."]
    output.write_text(json.dumps(results, indent=2) + "\n")
    for name, entry in floors.items():
        print(f"floor {name}: {entry['handler_to_floor']}")
    for name, entry in cold.items():
        if isinstance(entry, dict) and "first_invocation_to_floor" in entry:
            print(f"cold start {name} / stack floor: {entry['first_invocation_to_floor']}")


class Phases:
    """Progress on stderr, and the seconds each part took (results["phase_seconds"]). At each new
    phase, what the run has measured so far is written to `partial` (a run that fails late keeps its
    earlier parts there; bench/run.py removes it when the run ends)."""

    def __init__(self, partial: Path, results: dict[str, Any]) -> None:
        self.seconds: dict[str, float] = {}
        self.current: str | None = None
        self.began = time.time()
        self.partial, self.results = partial, results

    def __call__(self, name: str) -> None:
        now = time.time()
        if self.current is not None:
            self.seconds[self.current] = round(now - self.began, 1)
            self.save()
        self.current, self.began = name, now
        print(f"[bench] {name}", file=sys.stderr, flush=True)

    def save(self) -> None:
        snapshot = {**self.results, "partial": {"finished_phases": self.seconds, "next_phase": self.current}}
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        self.partial.write_text(json.dumps(snapshot, indent=2, default=str) + "\n")

    def done(self) -> None:
        self.partial.unlink(missing_ok=True)


def function_output(path: Path) -> dict[str, Any]:
    """What the functions printed during the run: lines, Powertools log records by level, EMF
    metric documents by metric name."""
    levels: dict[str, int] = {}
    metrics: dict[str, int] = {}
    lines = 0
    errors: list[str] = []
    with path.open(errors="replace") as handle:
        for line in handle:
            lines += 1
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if "_aws" in record:
                for metric in record["_aws"].get("CloudWatchMetrics", [{}])[0].get("Metrics", []):
                    metrics[metric["Name"]] = metrics.get(metric["Name"], 0) + 1
            elif "level" in record:
                levels[record["level"]] = levels.get(record["level"], 0) + 1
                if record["level"] in ("ERROR", "CRITICAL") and len(errors) < 5:
                    errors.append(f"{record.get('message')}: {record.get('exception_name', '')} "
                                  f"{str(record.get('exception', ''))[-300:]}")
    return {"lines": lines, "bytes": path.stat().st_size, "log_records_by_level": levels,
            "metric_documents_by_name": metrics, "first_errors": errors}


def calibrate(results: dict[str, Any], reference_at_start: float, reference_at_end: float) -> dict[str, Any]:
    """The run's units (bench/calibration.py): what every absolute time of the report is printed beside."""
    bare = (results.get("floor") or {}).get("get_service", {}).get("bare_us") \
        or results["operations"]["get_service"]["zero_latency_bare_us"]
    one = (results.get("throughput") or {}).get("1_clients") or {}
    return {"bare_get_item_us": bare,
            "python_reference_us": {"start": reference_at_start, "end": reference_at_end},
            "import_boto3_cpu_s": (results.get("cold_start") or {}).get("import_boto3_cpu_s"),
            "one_client_p50_ms": one.get("p50_ms"),
            "note": "bare GetItem: CPU µs of one GetItem made directly with botocore, answered at once; python "
                    "reference: CPU µs of a fixed JSON workload at the run's start and end (bench/calibration.py)"}


def misses(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation and growth case above the rule's minimum, with its reason."""
    found = []
    places = [(f"operations.{name}", entry) for name, entry in results["operations"].items()]
    places += [(f"growth.{case}.{size}", entry) for case, sizes in results["growth"].items()
               for size, entry in sizes.items()]
    for where, entry in places:
        if entry.get("missed"):
            found.append({"where": where, "missed": entry["missed"],
                          "round_trips": entry["round_trips"], "minimum_round_trips": entry["minimum_round_trips"],
                          "latency_round_trips": entry.get("latency_round_trips"),
                          "minimum_latency_round_trips": entry.get("minimum_latency_round_trips"),
                          "items_read": entry["items_read"], "items_read_allowed": entry.get("items_read_allowed"),
                          "because": entry.get("above_minimum_because"), "reason_key": entry.get("reason_key")})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="small run that exercises every part (smaller sizes, fewer repetitions)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out while working on the "
                        "benchmark itself: cold_start, throughput, feed (never for committed results)")
    parser.add_argument("--only", choices=["feed", "cpu"],
                        help="measure this part alone into the existing --output (cpu: cold start, floor, profile)")
    args = parser.parse_args()
    if args.only == "feed":
        only_feed(args.quick or os.environ.get("BENCH_QUICK") == "1", Path(args.output))
        return
    if args.only == "cpu":
        only_cpu(args.quick or os.environ.get("BENCH_QUICK") == "1", Path(args.output))
        return
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    sys.path.insert(0, str(ROOT))

    from bench import harness

    production = harness.production_environment()  # before anything imports the project
    printed = FunctionOutput()

    from bench.calls import TRACKER

    TRACKER.install()  # before any client exists

    from bench import authorization, calibration

    TRACKER.side = authorization.is_grant_lookup  # the access check's lookups: apart from the operations

    from moto import mock_aws

    from bench import (
        above_minimum,
        growth,
        latency,
        maintenance,
        migration,
        operations,
        partitions,
        reasons,
        rule,
        scaling,
    )
    from local import embedded_dynamodb, template

    reps = 1 if quick else 15
    zero_per_rep = 2 if quick else 5
    sizes = (1, 3, 12) if quick else (1, 100, 1000)
    limit = 5 if quick else 100
    growth_reps = 1 if quick else 3
    unrelated_count = 200 if quick else 10_000
    maintenance_sizes = (10, 30) if quick else (1000, 10_000)
    profile_runs = 20 if quick else 300
    latency_runs = 1 if quick else 3
    floor_runs = 20 if quick else 400

    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    started = time.time()
    reference_at_start = calibration.python_reference_us()
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": [round(os.getloadavg()[0], 2)]},
        "mode": "quick" if quick else "full",
        "command": "make bench" if not quick else "python -m bench.run --quick",
        "settings": {"production": production, "repetitions": reps, "zero_latency_runs_per_repetition": zero_per_rep,
                     "growth_sizes": list(sizes), "growth_page_limit": limit, "growth_repetitions": growth_reps,
                     "profile_runs": profile_runs, "latency_rtt_ms": latency.RTT_S * 1000,
                     "latency_runs": latency_runs, "floor_runs": floor_runs},
        "operations": {}, "lists": {}, "cold_start": {}, "scaling": {}, "throughput": {},
    }
    phase = Phases(Path(args.output).with_suffix(".partial.json"), results)
    # The cold start first: fresh processes timed while this one is small and the machine is as quiet as
    # the run will find it (after the growth and maintenance phases this process holds gigabytes of moto
    # tables, and the children were measured beside it).
    phase("cold start")
    if "cold_start" in skip:
        results["cold_start"] = {"status": "skipped (--skip)"}
    else:
        results["cold_start"] = cold_start_part(quick)
    with mock_aws():
        phase("operations")
        template.create_table(harness.raw_client(), harness.TABLE, stream=False)
        harness.grant(harness.TABLE)
        api = harness.TimedApi()
        found = operations.build(api)
        harness.settle()
        recorded: dict[str, Any] = {}
        for op in operations.operations(api, found):
            entry, calls, reply, ctx = operations.measure(api, op, reps, zero_per_rep, latency_runs)
            results["operations"][op.name] = entry
            recorded[op.name] = (op, calls, ctx, reply)
            if op.list_route:
                results["lists"][op.name] = operations.lists_entry(entry)
                ratio = results["lists"][op.name]["items_read_per_returned"]
                if ratio is not None and ratio > LISTS_TARGET:
                    results["lists"][op.name]["above_target_because"] = reasons.reason(op.name)
        phase("framework floor")
        subjects = floor_subjects(api, recorded, quick)
        results["floor"] = floor_part(api, subjects, floor_runs)
        phase("profile")
        results["profile"] = profile_part(api, subjects, results["floor"], profile_runs)

        phase("growth: building")
        began = time.time()
        worlds = growth.build(harness.TimedApi(sampled=False), sizes)  # untimed: unsampled traces cost less
        results["settings"]["growth_build_seconds"] = round(time.time() - began, 1)
        phase("growth: measuring")
        results["growth"], results["growth_cases"] = growth.measure(api, worlds, limit, growth_reps,
                                                                    latency_runs=latency_runs)
        del worlds

        phase("scaling")
        active = found["active"]["service_id"]
        paths = {
            "list_customer_services_all": "/customers/bench-customer/services?limit=100",
            "list_anonymous_services_all": "/services/anonymous/bench-contact?limit=100",
            "get_service_embedded": f"/services/{active}?{operations.EVERYTHING}",
        }
        results["scaling"] = scaling.scaling(api, paths, reps * 2, unrelated_count)
        for name in paths:
            if name in results["lists"]:
                for key in ("scaling_latency_ratio", "scaling_round_trips_equal"):
                    results["lists"][name][key] = results["scaling"][name][key]

        phase("maintenance and authorization")
        harness.label_case("maintenance")
        results["maintenance"] = maintenance.maintenance(harness.TimedApi, maintenance_sizes)
        for name, case in (("export_window", "export_stream"), ("purge", "purge")):
            results["scaling"][name] = {"status": results["maintenance"][case]["status"]}
        purge = results["maintenance"]["purge"].get(str(maintenance_sizes[-1])) or {}
        results["purge"] = {"write_requests_per_deleted_item": purge.get("write_requests_per_deleted_item"),
                            "status": results["maintenance"]["purge"]["status"]}
        harness.label_case("authorization")
        results["authorization"] = authorization.measure(api, f"/services/{active}", reps)
        phase("scale on paper")
        harness.label_case("scale")
        results["scale"] = partitions.measure(harness.TimedApi)
        phase("import")  # bench/migration.py: cs-import of export files into an empty tenant
        results["import"] = migration.measure(300 if quick else 10_000)

    results["calls_hooked_clients"] = TRACKER.clients
    results["grant_lookups"] = {"total": TRACKER.side_total,
                                "note": "the access check's cached grant lookups, kept apart from the operations' calls"}
    results["tracing_log"] = harness.TRACING_LOG.report()
    phase("change feed")
    results["feed"] = {"status": "skipped (--skip)"} if "feed" in skip else feed_part(quick)
    attach_feed_costs(results)
    phase("throughput")
    results["throughput"] = {} if "throughput" in skip else throughput(quick)
    if skip:
        results["skipped"] = sorted(skip)
    phase("done")
    results["calibration"] = calibrate(results, reference_at_start, calibration.python_reference_us())
    results["phase_seconds"] = phase.seconds
    results["misses"] = misses(results)
    # Every round trip above the minimum is argued in bench/above_minimum.py or the run fails (below).
    results["above_minimum_disagreements"] = above_minimum.disagreements(results)
    used = {miss["reason_key"] for miss in results["misses"]}
    results["reasons_unused"] = sorted(key for key in reasons.REASONS if key not in used)
    results["rule"] = rule.__doc__
    results["seconds"] = round(time.time() - started, 1)
    results["machine"]["load_average"].append(round(os.getloadavg()[0], 2))
    shutil.rmtree(os.environ["EXPORT_DIR"], ignore_errors=True)
    output_file = printed.close()
    results["function_output"] = function_output(output_file)
    output_file.unlink()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Whole or not at all: `make test` runs the in-process tests meanwhile, and tests/unit/test_bench.py
    # reads the quick run's file when it is there.
    written = output.with_name(output.name + ".partial")
    written.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(written, output)
    phase.done()
    print(render(results))
    if results["above_minimum_disagreements"]:
        print("round trips above the minimum that bench/above_minimum.py does not argue (or argues though "
              "met):\n  " + "\n  ".join(results["above_minimum_disagreements"]), file=sys.stderr)
        sys.exit(1)


def render(results: dict[str, Any]) -> str:
    """A plain-text summary for the terminal (docs/BENCHMARKS.md is bench/report.py's)."""
    lines = [f"Context Services benchmark ({results['mode']}, Python {results['machine']['python']}, "
             f"{results['machine']['cpus']} CPUs, {results['seconds']} s)", ""]
    lines.append(f"{'operation':45} {'calls':>5} {'min':>4} {'chain':>5} {'min':>4} {'moto h/d ms':>15} {'ratio':>6} "
                 f"{'zero +us':>9} {'ratio':>6}")
    for name, op in results["operations"].items():
        flag = " MISS" if op.get("missed") else ""
        lines.append(f"{name:45} {op['round_trips']:>5} {str(op['minimum_round_trips']):>4} "
                     f"{op.get('latency_round_trips', '-'):>5} {str(op.get('minimum_latency_round_trips')):>4} "
                     f"{op['handler_median_ms']:>7.2f}/{op['direct_median_ms']:<7.2f} {op['overhead_ratio']:>6.2f} "
                     f"{op['zero_latency_added_us']:>9.0f} {op['zero_latency_ratio']:>6.2f}{flag}")
    lines += ["", f"{'growth case (calls, read per returned, time ratio)':45} "
              + " ".join(f"{'@ ' + str(size):>24}" for size in results["settings"]["growth_sizes"])]
    for case, sizes in results["growth"].items():
        cells = []
        for size in sizes.values():
            per = size["items_read_per_returned"]
            cells.append(f"{size['round_trips']:>6} {(f'{per:.2f}' if per is not None else '-'):>8} "
                         f"{size['latency_ratio']:>6.2f}{' *' if size.get('missed') else '  '}")
        lines.append(f"{case:45} " + " ".join(f"{cell:>24}" for cell in cells))
    lines += ["", f"misses: {len(results['misses'])} (see docs/BENCHMARKS.md)", ""]
    cs = results["cold_start"]
    for name, entry in cs.items():
        if isinstance(entry, dict) and "artifact_ratio_to_boto3" in entry:
            lines.append(f"cold start {name}: import {entry['import_cpu_s']:.3f} s CPU ({entry['artifact_ratio_to_boto3']:.2f} x "
                         f"import boto3), with first invocation {entry.get('first_invocation_cpu_s', float('nan')):.3f} s "
                         f"({entry.get('first_invocation_ratio', float('nan')):.2f} x bare GetItem handler)")
    if "status" in cs:
        lines.append(f"cold start: {cs['status']}")
    for name, entry in (results.get("floor") or {}).items():
        lines.append(f"floor {name}: handler {entry['handler_us']:.0f} us / floor {entry['floor_us']:.0f} us = "
                     f"{entry['handler_to_floor']:.2f} (target {entry['target_handler_to_floor']:.2f}); bare "
                     f"{entry['bare_us']:.0f} us")
    for name, entry in cs.items():
        if isinstance(entry, dict) and "first_invocation_to_floor" in entry:
            lines.append(f"cold start {name} / stack floor: {entry['first_invocation_to_floor']:.2f}")
    lines += ["", "local server under load (mixed operations)"]
    for name, entry in results["throughput"].items():
        lines.append(f"  {name:12} {entry['requests_per_second']:>7} req/s  p50 {entry['p50_ms']} ms  "
                     f"p99 {entry['p99_ms']} ms  errors {entry['errors']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
