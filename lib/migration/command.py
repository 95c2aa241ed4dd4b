"""`cs-import` (also `make import ARGS="…"` and `python -m lib.migration`): import conversations from
export files or a running Context Services into a tenant and group of the local run or of a deployed
table. README, "Importing conversations", has examples; `cs-import --help` lists every option.

Exit status: 0 finished, nothing refused; 1 finished, with bad records, conflicts or failures (see the
report); 2 the import could not start (options, source, target, checkpoint); 3 stopped by a fault
(resumable); 130 interrupted (Ctrl-C or SIGTERM; resumable).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from lib.api.params import TENANT_HEADER_PATTERN
from lib.clock import format_ms, now_ms, parse_duration, parse_timestamp
from lib.errors import ValidationError

TENANT = re.compile(TENANT_HEADER_PATTERN)  # what the API accepts in ContactCenterId / GroupId (§1)
LOCAL_RUN_DIR = ".local-run"  # where `make run` writes <port>.json (local/server.py)
STREAM_FROM = "1970-01-01T00:00:00.000Z"


class Refused(Exception):
    """The import cannot start: the message says why."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cs-import", description="Import conversations (services with their states, tasks and attached data) "
        "from export files or a running Context Services into a tenant of this project's store (contract §11).",
        epilog="Running the same command again resumes an interrupted import from its checkpoint; after a finished "
        "one it imports nothing twice (conversations already there are counted as such).")
    source = p.add_argument_group("source (one of)")
    one = source.add_mutually_exclusive_group(required=True)
    one.add_argument("--files", metavar="PATH", help="export files in JSON Lines: a folder, one file of the set, "
                     "or s3://bucket/prefix")
    one.add_argument("--url", metavar="BASE_URL", help="a running Context Services (…/genesys/1/cs): its export stream")
    source.add_argument("--set", metavar="PREFIX", help="which export set of the folder (default: the newest)")
    source.add_argument("--source-contact-center", metavar="ID", help="ContactCenterId sent to the source")
    source.add_argument("--source-group", metavar="ID", help="GroupId sent to the source")
    source.add_argument("--time-from", default=STREAM_FROM, help=f"stream window start (default {STREAM_FROM})")
    source.add_argument("--time-to", help="stream window end (default: when the import starts)")
    source.add_argument("--filter-events", choices=("any", "started", "completed"), default="any")
    source.add_argument("--batch", "--page-size", dest="batch", type=int, default=100, metavar="N",
                        help="conversations read and checked at a time: a stream page, or lines of the services "
                        "file (1-1000, default 100); the checkpoint moves a batch at a time")
    sign = source.add_mutually_exclusive_group()
    sign.add_argument("--sign", action="store_true", default=None, help="sign stream requests with SigV4 "
                      "(default: when the URL is an execute-api host)")
    sign.add_argument("--no-sign", dest="sign", action="store_false")
    source.add_argument("--source-profile", help="AWS profile for S3 files and SigV4 signing")
    source.add_argument("--source-region", help="AWS region for S3 files and SigV4 signing")

    target = p.add_argument_group("target (default: the local run on --local-port)")
    target.add_argument("--contact-center", metavar="ID", help="ContactCenterId to import into (default: none)")
    target.add_argument("--group", metavar="ID", help="GroupId to import into (default: none)")
    target.add_argument("--local-port", type=int, default=int(os.environ.get("PORT", "3000")),
                        help="the local run (make run) on this port (default $PORT or 3000)")
    target.add_argument("--table", help="a deployed table (with the usual AWS settings: AWS_PROFILE, AWS_REGION, ...)")
    target.add_argument("--region", help="AWS region of --table")
    target.add_argument("--profile", help="AWS profile for --table")
    target.add_argument("--endpoint-url", help="DynamoDB endpoint for --table (default: AWS's)")

    how = p.add_argument_group("how")
    how.add_argument("--dry-run", action="store_true", help="write nothing; report what would be written")
    how.add_argument("--rate", type=float, metavar="ITEMS", help="write at most ITEMS items a second (default: as "
                     "fast as the table takes them; throttling always slows the import down)")
    how.add_argument("--auto-complete-after", metavar="SECONDS|never", help="for imported active services "
                     "(the representation does not carry it; default: the target's AUTO_COMPLETE_AFTER)")
    how.add_argument("--sliding-expiration", action="store_true", help="expirations slide with later writes "
                     "(default: kept as imported, explicit)")
    how.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (default: .cs-import/checkpoint-<key>.json)")
    how.add_argument("--restart", action="store_true", help="ignore an unfinished checkpoint and start over")
    how.add_argument("--report", metavar="FILE", help="also write the report as JSON to FILE")
    how.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto")
    how.add_argument("--emit-events", action="store_true", help="have the change feed publish each imported "
                     "conversation's history (its starts and ends; default: imports publish nothing)")
    return p


def _tenant(value: str | None, option: str) -> str | None:
    if value is not None and not TENANT.fullmatch(value):
        raise Refused(f"{option}: 1-64 characters of A-Z a-z 0-9 . _ - (as the ContactCenterId / GroupId headers)")
    return value


def local_run_state(port: int) -> dict[str, Any]:
    """What `make run` on `port` wrote about itself: its DynamoDB endpoint, table and settings."""
    folder = Path(os.environ.get("LOCAL_RUN_DIR") or Path(__file__).resolve().parents[2] / LOCAL_RUN_DIR)
    path = folder / f"{port}.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        raise Refused(f"no local run on port {port} ({path} not found): start one with `make run` "
                      f"(PORT={port}), or import into a deployed table with --table") from None
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        raise Refused(f"the local run on port {port} is not running any more ({path} is left from it)") from None
    return state


def configure_target(args: argparse.Namespace) -> str:
    """Point the store at the target (environment, then a fresh client); returns its description."""
    from lib import settings
    from lib.store import table

    if args.table:
        os.environ["TABLE_NAME"] = args.table
        for value, name in ((args.region, "AWS_DEFAULT_REGION"), (args.region, "AWS_REGION"),
                            (args.profile, "AWS_PROFILE"), (args.endpoint_url, "AWS_ENDPOINT_URL_DYNAMODB")):
            if value:
                os.environ[name] = value
        where = f"table {args.table}" + (f" at {args.endpoint_url}" if args.endpoint_url else "")
    else:
        state = local_run_state(args.local_port)
        os.environ.update(TABLE_NAME=state["table"], AWS_ENDPOINT_URL_DYNAMODB=state["dynamodb_endpoint"],
                          AWS_DEFAULT_REGION=state.get("region", "us-east-1"), AWS_ACCESS_KEY_ID="local",
                          AWS_SECRET_ACCESS_KEY="local")
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        for name, value in (state.get("settings") or {}).items():  # the local run's own defaults
            if value and name in ("DEFAULT_EXPIRATION", "AUTO_COMPLETE_AFTER"):
                os.environ.setdefault(name, str(value))
        where = f"local run on port {args.local_port} (table {state['table']} at {state['dynamodb_endpoint']})"
    settings.settings.cache_clear()
    table.reset_client()
    return where


def build_source(args: argparse.Namespace) -> Any:
    from lib.migration import files, stream
    from lib.store import imported

    if args.files:
        s3 = imported.s3_client(args.source_profile, args.source_region) if args.files.startswith("s3://") else None
        return files.FileSource(files.locate(args.files, args.set, s3), s3)
    try:
        time_from = format_ms(parse_timestamp(args.time_from, "--time-from"))
        time_to = format_ms(parse_timestamp(args.time_to, "--time-to") if args.time_to else now_ms())
    except ValidationError as error:
        raise Refused(error.message) from None
    tenancy = {name: value for name, value in (("ContactCenterId", _tenant(args.source_contact_center,
                                                                        "--source-contact-center")),
                                               ("GroupId", _tenant(args.source_group, "--source-group"))) if value}
    sign = stream.is_deployed_api(args.url) if args.sign is None else args.sign
    signer = stream.sigv4_signer(args.url, args.source_region, args.source_profile) if sign else None
    return stream.StreamSource(args.url, time_from, time_to, tenancy, args.filter_events, signer)


def _auto_complete(value: str | None) -> int | None:
    from lib.settings import settings

    if value is None:
        return settings().auto_complete_after_seconds
    if value.strip().lower() == "never":
        return None
    try:
        return int(value) if value.strip().isdigit() else parse_duration(value)
    except ValueError:
        raise Refused("--auto-complete-after: seconds, a duration like 30m, or never") from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # stop as Ctrl-C does: at a safe point, resumable
    try:
        return _main(args)
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _main(args: argparse.Namespace) -> int:
    from lib.migration import checkpoint as checkpoints
    from lib.migration.mapping import Policy
    from lib.migration.pace import Pace
    from lib.migration.progress import Progress
    from lib.migration.report import Report, Tally
    from lib.migration.run import Job, run
    from lib.migration.source import SourceError
    from lib.settings import settings
    from lib.store import imported
    from lib.store.keys import tenant_key

    try:
        contact_center = _tenant(args.contact_center, "--contact-center")
        group = _tenant(args.group, "--group")
        if not 1 <= args.batch <= 1000:
            raise Refused("--batch: 1-1000")
        if args.rate is not None and args.rate <= 0:
            raise Refused("--rate: a positive number of items a second")
        target = configure_target(args)
        problem = imported.table_problem()
        if problem:
            raise Refused(f"{target}: {problem}")
        source = build_source(args)
        target_identity = {"table": os.environ["TABLE_NAME"], "endpoint": os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"),
                           "tenant": tenant_key(contact_center, group)}
        key = checkpoints.key_of(source.identity, target_identity)
        point = None
        if not args.dry_run:
            path = Path(args.checkpoint) if args.checkpoint else checkpoints.default_path(key)
            point = checkpoints.Checkpoint.open(path, key, args.restart)
            if point.resumed and "time_to" in point.settings and not args.files:
                source.time_to = point.settings["time_to"]  # the window the first attempt fixed
            if point.resumed and bool(point.settings.get("events")) != args.emit_events:
                raise Refused(f"{point.path}: the interrupted import ran {'with' if point.settings.get('events') else 'without'}"
                              " --emit-events; resume it the same way, or start over with --restart")
            point.settings = {"time_to": getattr(source, "time_to", None), "events": args.emit_events}
            point.save()  # at once: a run stopped before its first batch is stored resumes with its token
        policy = Policy(point.token if point else "dry-run", _auto_complete(args.auto_complete_after),
                        args.sliding_expiration, settings().default_expiration_seconds, args.emit_events)
    except (Refused, SourceError, checkpoints.CheckpointError) as error:
        print(f"cs-import: {error}", file=sys.stderr)
        return 2
    tenancy = f"ContactCenterId {contact_center or '(none)'}, GroupId {group or '(none)'}"
    report = Report(source.description, f"{target}, {tenancy}", args.dry_run, args.emit_events,
                    Tally.from_dict(point.tally) if point else Tally())
    if point is not None:
        report.checkpoint = str(point.path)
        if point.resumed:
            report.resumed_from = f"{point.path} ({report.tally.read:,} conversations read before)"
            print(f"cs-import: resuming from {point.path}", file=sys.stderr)
    job = Job(source, tenant_key(contact_center, group), policy, report, point, args.dry_run, Pace(args.rate),
              Progress(mode=args.progress), batch=args.batch)
    code = 0
    try:
        run(job)
    except KeyboardInterrupt:
        report.stopped, code = "interrupted", 130
    except (SourceError, imported.WritesRefused) as error:
        report.stopped, code = str(error), 3
    except Exception as error:
        report.stopped, code = f"{type(error).__name__}: {error}", 3
    print(report.text())
    if args.report:
        Path(args.report).write_text(report.json())
    if code == 0 and not report.clean:
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
