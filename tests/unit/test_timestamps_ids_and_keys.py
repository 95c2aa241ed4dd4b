"""Pure rules: the clock codec, ids, paging tokens, key builders, the attached-data selection."""

from __future__ import annotations

import pytest

from lib import clock, ids, paging
from lib.errors import ValidationError
from lib.rules.conversation import Selection
from lib.store import keys as store


@pytest.mark.parametrize("text, expected", [
    ("2026-11-27T21:07:00Z", "2026-11-27T21:07:00.000Z"),
    ("2026-11-27T22:07:00.123+01:00", "2026-11-27T21:07:00.123Z"),
    ("2026-11-27T21:07:00.123456-00:30", "2026-11-27T21:37:00.123Z"),
    ("2026-11-27T21:07:00", "2026-11-27T21:07:00.000Z"),  # no offset: UTC
    ("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"),
])
def test_timestamps_normalise_to_utc_milliseconds(text, expected):
    assert clock.format_ms(clock.parse_timestamp(text)) == expected


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01T00:00:00Z", "2026-11-27 25:00"])
def test_bad_timestamps_are_validation_errors(text):
    with pytest.raises(ValidationError):
        clock.parse_timestamp(text)


def test_sortable_timestamps_order_like_the_times_they_encode():
    times = ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z", "2026-11-27T21:07:00Z",
             "9999-12-31T23:59:59.999Z"]
    encoded = [clock.sortable_ms(clock.parse_timestamp(t)) for t in times]
    assert encoded == sorted(encoded) and len({len(e) for e in encoded}) == 1


@pytest.mark.parametrize("text, seconds", [("5y", 5 * 365 * 86400), ("30d", 2_592_000), ("2w", 1_209_600),
                                           ("3M", 3 * 30 * 86400), ("90m", 5400), ("15s", 15), ("1h", 3600)])
def test_durations(text, seconds):
    assert clock.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5", "y", "5x", "-1d", "1.5h"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        clock.parse_duration(text)


def test_service_ids_are_positive_63_bit_and_grow_with_time(monkeypatch):
    now = [1_800_000_000_000]
    monkeypatch.setattr(clock, "now_ms", lambda: now[0])
    first = ids.new_service_id()
    now[0] += 1
    second = ids.new_service_id()
    assert 0 < int(first) < int(second) < 2**63
    # 42 bits of milliseconds since 2020, then 21 random bits.
    monkeypatch.setattr(ids.secrets, "randbits", lambda bits: (1 << bits) - 1)
    made = int(ids.new_service_id())
    assert made >> 21 == now[0] - 1_577_836_800_000 and made & ((1 << 21) - 1) == (1 << 21) - 1


def test_page_tokens_are_bound_to_their_query():
    token = paging.encode({"PK": "a", "SK": "b"}, "scope-1")
    assert paging.decode(token, "scope-1") == {"PK": "a", "SK": "b"}
    assert paging.decode(None, "scope-1") is None
    for bad, scope in ((token, "scope-2"), (token[:-1] + ("A" if token[-1] != "A" else "B"), "scope-1"),
                       ("not-a-token", "scope-1"), ("", "scope-1")):
        with pytest.raises(ValidationError):
            paging.decode(bad, scope)


def test_tenant_keys_never_collide():
    pairs = [(None, None), ("a", None), (None, "a"), ("a", "b"), ("a.b", None), ("a", "b.c")]
    assert len({store.tenant_key(*pair) for pair in pairs}) == len(pairs)


def test_conversation_keys_sort_service_then_states_then_tasks():
    keys = [store.child_sk("task", 2), store.child_sk("state", 10), store.SERVICE_SK, store.child_sk("state", 9),
            store.child_sk("task", 1)]
    assert sorted(keys) == [store.SERVICE_SK, store.child_sk("state", 9), store.child_sk("state", 10),
                            store.child_sk("task", 1), store.child_sk("task", 2)]


def test_a_state_sorts_before_its_tasks_in_the_state_tasks_index():
    keys = [store.state_tasks_sk(2), store.state_tasks_sk(1, 7), store.state_tasks_sk(1), store.state_tasks_sk(10, 1)]
    assert sorted(keys) == [store.state_tasks_sk(1), store.state_tasks_sk(1, 7), store.state_tasks_sk(2),
                            store.state_tasks_sk(10, 1)]


def test_extension_selection_parses_levels():
    selection = Selection.parse([" a", " *", "State.s ", "Task.*", ""], active_states=True)
    assert selection.own == {"a", "*"} and selection.state == {"s"} and selection.task == {"*"}
    assert selection.embeds_states and not selection.embeds_tasks
    bare = Selection.parse(["State", "Task"])
    assert bare.state == {"*"} and bare.task == {"*"} and not bare.own
