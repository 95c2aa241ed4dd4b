"""The import (contract §11) of N conversations from export files into moto's DynamoDB: items written
per write request and conversations a second (`import.items_per_write_request`,
`import.conversations_per_second` in bench/results.json).

Set-up (not measured): export files of N conversations (a service, two states, two tasks, one of them
in a state, attached data; half of them completed), each record written by the code the export uses
(the views of lib.rules.conversation, the names of lib.rules.maintenance), so the files are what §8
writes. Measured: `cs-import`'s run (lib.migration.run) of those files into an empty tenant. Requests
and items are counted on the DynamoDB client itself (botocore's before-parameter-build events), not
taken from the importer's own report; every item is accounted for, and a sample of 20 conversations
is read back whole and compared with what was exported.

    python -m bench.imports [--conversations 10000]      (standalone: its own moto table)
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

ITEMS_PER_CONVERSATION = 5


def _conversation(tenant: str, number: int, now: int) -> tuple[Any, list[Any]]:
    """A service with two states and two tasks, as the API stores them."""
    from lib.clock import format_ms
    from lib.store.items import Expiry, ServiceItem, StateItem, TaskItem

    start = now - 86_400_000 + number * 1000
    service_id = str(((start - 1_577_836_800_000) << 21) | (number % 2_000_000 + 1))
    expiry = Expiry(now + 400 * 86_400_000, True)
    done = number % 2 == 0

    def event(ms: int) -> dict[str, Any]:
        return {"timestamp": format_ms(ms), "interaction_id": f"i-{number}", "media_type": "voice"}

    ends = {"completed": event(start + 60_000), "completed_ms": start + 60_000, "disposition": "ok"} if done else {}
    service = ServiceItem(tenant=tenant, service_id=service_id, customer_id=f"customer-{number % 997}",
                          service_type="billing", started=event(start), started_ms=start, last_write_ms=now,
                          expires_ms=expiry.expires_ms, expiry_explicit=True, expire_at=expiry.ttl(now),
                          children_ttl=expiry.children_ttl(now), state_seq=2, task_seq=2, cascading={},
                          ext={"channel": json.dumps("ivr"), "order": json.dumps({"id": number, "lines": [1, 2]})},
                          **ends)
    common = {"tenant": tenant, "service_id": service_id, "expire_at": service.children_ttl}
    children = [
        StateItem(state_id=1, state_type="identify", started=event(start + 1000), started_ms=start + 1000,
                  completed=event(start + 2000), completed_ms=start + 2000, attached=1,
                  ext={"step": "1"}, **common),
        StateItem(state_id=2, state_type="solve", previous_state_id=1, started=event(start + 2000),
                  started_ms=start + 2000, **common),
        TaskItem(task_id=1, task_type="lookup", state_id=1, started=event(start + 1500), started_ms=start + 1500,
                 completed=event(start + 1800), completed_ms=start + 1800, ext={"tool": json.dumps("crm")}, **common),
        TaskItem(task_id=2, task_type="survey", started=event(start + 3000), started_ms=start + 3000, **common),
    ]
    return service, children


def _source_files(conversations: int, folder: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """Export files of N conversations in `folder`, written as the export writes them (each record is
    the view lib.rules.conversation shows, with all its attached data; the names of
    lib.rules.maintenance.file_names); returns the lines of each file and a sample of conversations."""
    from lib import clock
    from lib.rules.conversation import Conversation
    from lib.rules.maintenance import ATTACHED, file_names

    now = clock.now_ms()
    names = file_names(now, "json")
    handles = {kind: (folder / name).open("w", encoding="utf-8") for kind, name in names.items()}
    sample: dict[str, Any] = {}
    for number in range(conversations):
        service, children = _conversation(SOURCE, number, now)
        conversation = Conversation(service, now).add(children)
        handles["services"].write(json.dumps(conversation.service_view(ATTACHED), ensure_ascii=False) + "\n")
        for child in children:
            kind = "states" if child.KIND == "state" else "tasks"
            handles[kind].write(json.dumps(conversation.view(child, ATTACHED), ensure_ascii=False) + "\n")
        if number % max(1, conversations // 20) == 0:
            sample[service.service_id] = (service, children)
    for handle in handles.values():
        handle.close()
    return {name.rsplit("_", 1)[1]: sum(1 for _ in (folder / name).open()) for name in names.values()}, sample


def measure(conversations: int) -> dict[str, Any]:
    """Export N conversations to files, import them into an empty tenant, count and time it."""
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
        lines, sample = _source_files(conversations, Path(folder))
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
    assert t.imported == conversations and written["items"] == conversations * ITEMS_PER_CONVERSATION, \
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
