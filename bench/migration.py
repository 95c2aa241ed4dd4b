"""The import (contract §11) of N conversations from export files into moto's DynamoDB: items written
per write request and conversations a second (`import.items_per_write_request`,
`import.conversations_per_second` in bench/results.json).

Set-up (not measured): export files of N conversations (a service, two states, two tasks, one of them
in a state, attached data; half of them completed), each record written by the code the export uses
(the views of lib.rules.conversation, the names of lib.rules.runs), so the files are what §8
writes. Measured: `cs-import`'s run (lib.migration.run) of those files into an empty tenant. Requests
and items are counted on the DynamoDB client itself (botocore's before-parameter-build events), not
taken from the importer's own report; every item is accounted for, and a sample of 20 conversations
is read back whole and compared with what was exported.

    python -m bench.migration [--conversations 10000]      (standalone: its own moto table)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

SOURCE, TARGET = "bench-import-source|", "bench-import-target|"



def measure(conversations: int) -> dict[str, Any]:
    """Export N conversations to files, import them into an empty tenant, count and time it."""
    from bench import varied
    from lib.migration import files
    from lib.migration.mapping import Policy, shown
    from lib.migration.pace import Pace
    from lib.migration.report import Report
    from lib.migration.run import Job, run
    from lib.store import imported, table

    calls: Counter[str] = Counter()
    written: Counter[str] = Counter()

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:  # the API parameters
        calls[model.name] += 1
        if model.name == "BatchWriteItem":
            written["items"] += sum(len(requests) for requests in params["RequestItems"].values())

    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        lines, sample = varied.write_export(Path(folder), conversations, SOURCE)
        client = table.client()
        client.meta.events.register("before-parameter-build.dynamodb", count)
        try:
            source = files.FileSource(files.locate(folder))
            report = Report(source.description, TARGET)
            job = Job(source, TARGET, Policy("bench", None), report, pace=Pace())
            began = time.perf_counter()
            run(job)
            seconds = time.perf_counter() - began
        finally:
            client.meta.events.unregister("before-parameter-build.dynamodb", count)
    requests = calls["BatchWriteItem"]
    t = report.tally
    assert t.imported == conversations and written["items"] == conversations * varied.ITEMS_PER_CONVERSATION, \
        (t.as_dict(), written)
    now = _now()
    stored = imported.stored_conversations(TARGET, list(sample))
    for service_id, (service, children) in sample.items():  # what arrived is what was exported
        assert shown(*stored[service_id], now) == shown(service, children, now), service_id
    return {
        "conversations": conversations,
        "items_written": written["items"],
        "write_requests": requests,
        "items_per_write_request": round(written["items"] / requests, 2),
        "conversations_per_second": round(conversations / seconds, 1),
        "seconds": round(seconds, 2),
        "read_requests": {name: n for name, n in calls.items() if name != "BatchWriteItem"},
        "source_file_lines": lines,
        "checked_whole": len(sample),
        "throttled": report.writes.get("throttled", 0),
        "target": "moto in process (embedded DynamoDB's engine; local.embedded_dynamodb patches applied)",
    }


def _now() -> int:
    from lib import clock

    return clock.now_ms()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=10_000)
    args = parser.parse_args()
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      TABLE_NAME="bench-import", PAGE_TOKEN_SECRET="bench-import-secret")
    os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    from moto import mock_aws

    from lib.store import table
    from local import embedded_dynamodb, template

    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    with mock_aws():
        template.create_table(table.reset_client(), "bench-import")
        print(json.dumps(measure(args.conversations), indent=2))


if __name__ == "__main__":
    main()
