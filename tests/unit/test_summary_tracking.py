"""How a write of the service item keeps the summary of active children (lib.store.recording.track):
kept exactly under the condition that it is still trusted, started when nothing was active, and
otherwise no longer trusted (docs/DESIGN.md, "Ends in one round trip")."""

from __future__ import annotations

from lib.store import recording, summary
from lib.store.expressions import Update
from lib.store.items import ServiceItem

STARTED = {"name": "TaskStarted", "at": 1_000, "data": {"task_id": 3, "task_type": "call", "state_id": 1}}
ENDED = {"name": "StateCompleted", "at": 2_000, "data": {"state_id": 1}}


def _service(**values) -> ServiceItem:
    return ServiceItem.trusted(tenant="t", service_id="1", **values)


def _clauses(known: ServiceItem | None, entries: list[dict], drop: bool = False) -> tuple[dict, list, str]:
    u = Update(key={"PK": "p", "SK": "s"})
    recording.track(u, known, entries, drop)
    request = u.request()
    return u.sets, u.removes, request.get("ConditionExpression", "")


def test_a_trusted_summary_is_kept_on_condition_that_it_still_is():
    sets, removes, condition = _clauses(_service(ax=True, act={"s1": {"m": 1}}, open=1), [ENDED, STARTED])
    assert sets == {("act", "t3"): {"m": 1_000, "y": "call", "s": 1}}
    assert removes == [("act", "s1")]
    assert "attribute_exists" in condition


def test_nothing_active_starts_a_summary_on_condition_that_still_nothing_is():
    sets, removes, condition = _clauses(_service(open=0), [STARTED])
    assert sets == {"act": {"t3": {"m": 1_000, "y": "call", "s": 1}}, "ax": True}
    assert removes == [] and "attribute_not_exists" in condition


def test_a_summary_not_trusted_when_read_is_given_up_by_the_write():
    """A start that read `open` 1 without `ax`: a start that found nothing active (after an end in
    between) may have started a summary since, which would miss this write's child."""
    for known in (_service(open=1), _service(open=None), None):
        sets, removes, _ = _clauses(known, [STARTED])
        assert sets == {} and removes == [summary.EXACT], known


def test_a_summary_past_its_size_or_a_big_state_end_is_given_up():
    big = {f"t{n}": {"m": 1, "y": "x" * 20} for n in range(100)}
    assert _clauses(_service(ax=True, act=big, open=100), [STARTED])[1] == [summary.EXACT]
    assert _clauses(_service(ax=True, act={"s1": {"m": 1}}, open=1), [ENDED], drop=True)[1] == [summary.EXACT]
    assert _clauses(_service(ax=True, act={}, open=0), [])[:2] == ({}, [])  # no child moves: untouched
