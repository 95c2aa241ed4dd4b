"""INDEX_SHARDS and DUE_SHARDS (docs/DESIGN.md, Scale): writes spread a service's time-index and
due-work entries over the configured number of shards, and once the counts are raised on a table
that holds data (the safe direction), the reads that span the shards (the export window, purge
candidates, due work) still find every service, old and new, also when paging resumes with a cursor
made before the change."""

from __future__ import annotations

import random

from lib import clock, ids, settings
from lib.store import keys as K
from lib.store.due import due
from lib.store.windows import COMPLETED_EVENTS, STARTED, purge_candidates, window

TENANT = K.tenant_key(None, None)
FAR = clock.parse_timestamp("9000-01-01T00:00:00Z")
JUNE = clock.parse_timestamp("2026-06-01T00:00:00Z")  # the old services started before, the new ones after


def _shards(monkeypatch, index: int, due_count: int) -> None:
    monkeypatch.setenv("INDEX_SHARDS", str(index))
    monkeypatch.setenv("DUE_SHARDS", str(due_count))
    settings.settings.cache_clear()


def _services(items) -> dict[str, dict]:
    return {K.split_conversation_pk(item["PK"])[1]: item for item in items() if item["SK"] == K.SERVICE_SK}


def _window_ids(high: int, cursor=None, limit=4, events=STARTED, now=None) -> list[str]:
    found = []
    while True:
        page, cursor = window(TENANT, events, 0, high, now or clock.now_ms(), cursor, limit)
        found += [service_id for service_id, _ in page]
        if cursor is None:
            return found


def test_raised_shard_counts_are_written_and_every_service_is_still_found(api, items, monkeypatch):
    # Service ids end in random bits, which pick the shards: drawn from a fixed seed here, so which
    # shards the services land in is the same every run (it failed one run in thousands otherwise).
    monkeypatch.setattr(ids.secrets, "randbits", random.Random(2026).getrandbits)
    _shards(monkeypatch, 3, 2)
    old = [api.start(customer_id=f"old{i}", auto_complete_after=60,
                     timestamp=f"2026-01-01T00:00:0{i}.000Z") for i in range(8)]
    for service_id, item in _services(items).items():
        assert item["GSI3PK"] == f"{TENANT}#S#{int(service_id) % 3}"
        assert item["GSI5PK"] == f"DUE#A#{int(service_id) % 2}"
    first_page, cursor = window(TENANT, STARTED, 0, JUNE, clock.now_ms(), None, 3)  # 3 shards in the cursor
    assert len(cursor["keys"]) == 3

    _shards(monkeypatch, 12, 16)  # raised on the live table
    new = [api.start(customer_id=f"new{i}", auto_complete_after=60,
                     timestamp=f"2026-07-01T00:00:{i:02d}.000Z") for i in range(30)]
    stored = _services(items)
    for service_id in new:
        assert stored[service_id]["GSI3PK"] == f"{TENANT}#S#{int(service_id) % 12}"
        assert stored[service_id]["GSI5PK"] == f"DUE#A#{int(service_id) % 16}"
    # Not vacuous: some new services sit in shards the old counts (3 and 2) never had, as far out as the
    # last third of the 12 index shards and the last quarter of the 16 due shards.
    assert any(int(s) % 12 >= 8 for s in new) and any(int(s) % 16 >= 12 for s in new)

    everyone = sorted(old + new)
    assert sorted(_window_ids(FAR)) == everyone  # paged over all 12 shards, no duplicate
    # A cursor made on the 3-shard table, over a window that closed before the change, goes on under 12.
    resumed = [service_id for service_id, _ in first_page] + _window_ids(JUNE, cursor)
    assert sorted(resumed) == sorted(old)
    candidates, rest = purge_candidates(TENANT, "purge.service.all", FAR, clock.now_ms(), None, 100)
    assert sorted(candidates) == everyone and rest is None
    # Completed in a window: none ended, every one past its auto-complete deadline an hour later, found
    # through the due index (16 shards) after the end index (12), the cursor crossing from one to the other.
    later = clock.now_ms() + 3_600_000
    assert sorted(_window_ids(FAR, events=COMPLETED_EVENTS, now=later)) == everyone
    overdue = due(K.AUTO_COMPLETE, clock.now_ms() + 3_600_000, 100)
    assert sorted(K.split_conversation_pk(item["PK"])[1] for item in overdue) == everyone
