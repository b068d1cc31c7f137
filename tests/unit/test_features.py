"""Feature fold (streamrec_core.features): small hand-built histories, no AWS."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from streamrec_core import constants as c
from streamrec_core.features import (
    APPLY,
    DUPLICATE,
    HOUR_MS,
    LATE,
    SEEN,
    Event,
    FeatureConfig,
    MemoryFeatures,
    apply_event,
    event_digest,
    experiment_key,
    item_key,
    merge_trending,
    new_row,
    plan_event,
    slot_for_shard,
    timestamp_ms,
    trending_key,
    user_key,
)

T0 = 1_700_000_000_000  # ms
SHARD = "shardId-000000000000"


def cfg(**overrides: object) -> FeatureConfig:
    base: dict[str, object] = {
        "user_ttl_seconds": 86_400,
        "item_ttl_seconds": 3_600,
        "allowed_lateness_ms": 600_000,
        "trending_slots": 4,
    }
    base.update(overrides)
    return FeatureConfig(**base)  # type: ignore[arg-type]


def ev(
    seq: int,
    item: str | None = "i1",
    *,
    user: str = "u1",
    etype: str = "view",
    t: int | None = None,
    received: int | None = None,
    category: str | None = "c1",
    eid: str | None = None,
    shard: str = SHARD,
    variant: str | None = None,
    experiment: str | None = None,
) -> Event:
    time_ms = T0 + seq * 1000 if t is None else t
    return Event(
        event_id=eid or f"e{seq}",
        event_type=etype,
        user_id=user,
        item_id=item,
        category=category,
        time_ms=time_ms,
        received_ms=time_ms if received is None else received,
        shard_id=shard,
        seq=seq,
        sequence_number=str(seq),
        arrival_ms=time_ms,
        experiment_id=experiment or (c.DEFAULT_EXPERIMENT_ID if variant else None),
        variant=variant,
    )


def fold(events: list[Event], config: FeatureConfig | None = None) -> MemoryFeatures:
    memory = MemoryFeatures(config or cfg())
    for event in events:
        memory.apply_event(event)
    return memory


# --- user history ---------------------------------------------------------------------------------
def test_history_keeps_the_latest_events_oldest_first_and_is_capped():
    # GIVEN 60 views of distinct items WHEN folded THEN the last 50 remain, in event-time order
    memory = fold([ev(i, f"i{i}") for i in range(1, 61)])
    history = memory.user("u1")[c.USER_HISTORY]
    assert len(history) == 50
    assert [h[0] for h in history] == [f"i{i}" for i in range(11, 61)]
    assert all(a[2] <= b[2] for a, b in zip(history, history[1:], strict=False))


def test_out_of_order_event_within_lateness_is_inserted_in_event_time_order():
    memory = fold([ev(1, "a", t=T0), ev(2, "b", t=T0 + 2000), ev(3, "c", t=T0 + 1000, received=T0 + 2000)])
    assert [h[0] for h in memory.user("u1")[c.USER_HISTORY]] == ["a", "c", "b"]


def test_counts_per_event_type_and_purchases_are_remembered():
    memory = fold(
        [
            ev(1, "a"),
            ev(2, "a", etype="add_to_cart"),
            ev(3, "a", etype="purchase"),
            ev(4, None, etype="search"),
        ]
    )
    user = memory.user("u1")
    assert user[c.USER_COUNTS] == {"view": 1, "add_to_cart": 1, "purchase": 1, "search": 1}
    assert user[c.USER_BOUGHT] == ["a"]
    assert user[c.USER_LAST_EVENT_AT] == T0 + 4000


def test_recent_ids_are_capped():
    memory = fold([ev(i, f"i{i % 7}") for i in range(1, 251)])
    ids = memory.user("u1")[c.USER_RECENT_IDS]
    assert len(ids) == 200
    assert ids[0] == event_digest("e51") and ids[-1] == event_digest("e250")
    assert len(ids[0]) == 11  # 64-bit digests, not the client's (up to 64-character) ids


def test_user_ttl_follows_the_latest_receipt_time():
    memory = fold([ev(1, received=T0 + 5_000)], cfg(user_ttl_seconds=100))
    assert memory.user("u1")[c.TTL_ATTRIBUTE] == (T0 + 5_000) // 1000 + 100


# --- verdicts ------------------------------------------------------------------------------------
def test_sequence_at_or_below_the_watermark_is_seen_and_changes_nothing():
    memory = fold([ev(5)])
    before = repr(memory.rows)
    assert memory.apply_event(ev(5)) == SEEN
    assert memory.apply_event(ev(3, eid="other")) == SEEN
    assert repr(memory.rows) == before


def test_client_resend_of_an_event_id_is_a_duplicate_that_only_moves_the_watermark():
    memory = fold([ev(1, "a")])
    assert memory.apply_event(ev(2, "a", eid="e1")) == DUPLICATE
    user = memory.user("u1")
    assert user[c.USER_COUNTS] == {"view": 1}
    assert user[c.USER_WATERMARKS][SHARD][0] == "2"
    assert memory.item("a")[c.ITEM_COUNTS] == {"view": 1}


def test_late_event_updates_only_the_user():
    memory = fold([ev(1, "a", t=T0, received=T0 + 600_001)])
    assert memory.verdicts[LATE] == 1
    assert memory.user("u1")[c.USER_COUNTS] == {"view": 1}
    assert memory.item("a") is None
    assert not any(key[1].startswith("trending") for key in memory.rows)


def test_event_exactly_at_the_allowed_lateness_is_on_time():
    memory = fold([ev(1, "a", t=T0, received=T0 + 600_000)])
    assert memory.verdicts[APPLY] == 1 and memory.item("a") is not None


def test_redrive_applies_a_record_below_the_watermark_unless_its_id_was_applied():
    config = cfg()
    memory = fold([ev(1, "a"), ev(9, "b")], config)
    skipped = ev(5, "c")
    assert plan_event(memory.rows, skipped, config).verdict == SEEN
    assert plan_event(memory.rows, skipped, config, redrive=True).verdict == APPLY
    assert plan_event(memory.rows, ev(1, "a"), config, redrive=True).verdict == DUPLICATE


def test_watermarks_are_kept_per_shard_and_compared_as_integers():
    memory = fold([ev(9, shard="s-a"), ev(10, "x", shard="s-a"), ev(2, "y", shard="s-b")])
    marks = memory.user("u1")[c.USER_WATERMARKS]
    assert marks["s-a"][0] == "10" and marks["s-b"][0] == "2"  # "9" > "10" as strings; not as integers
    assert memory.apply_event(ev(9, "z", shard="s-a", eid="new")) == SEEN


def test_watermarks_of_shards_idle_beyond_the_horizon_are_dropped():
    config = cfg(watermark_horizon_ms=10_000)
    memory = fold([ev(1, shard="old", t=T0), ev(2, "b", shard="new", t=T0 + 20_000)], config)
    assert set(memory.user("u1")[c.USER_WATERMARKS]) == {"new"}


def test_watermark_map_is_capped():
    config = cfg(watermark_cap=3)
    memory = fold([ev(i, f"i{i}", shard=f"s{i}") for i in range(1, 8)], config)
    assert set(memory.user("u1")[c.USER_WATERMARKS]) == {"s5", "s6", "s7"}


# --- co-visitation --------------------------------------------------------------------------------
def test_covisitation_pairs_the_latest_distinct_items_of_the_session_both_ways():
    memory = fold([ev(1, "a"), ev(2, "b"), ev(3, "a"), ev(4, "c", etype="purchase")])
    c_neighbours = memory.item("c")[c.ITEM_COVISIT]
    # c pairs with a and b (distinct, newest first), weighted by c's type (purchase = 4)
    assert c_neighbours == {"a": [4, "c1"], "b": [4, "c1"]}
    assert memory.item("a")[c.ITEM_COVISIT]["c"] == [4, "c1"]
    # b paired with a once (view), then a (second view) paired with b
    assert memory.item("a")[c.ITEM_COVISIT]["b"][0] == 2


def test_covisitation_ignores_items_outside_the_session_gap():
    config = cfg(session_gap_ms=60_000)
    memory = fold([ev(1, "a", t=T0), ev(2, "b", t=T0 + 61_000)], config)
    assert memory.item("b")[c.ITEM_COVISIT] == {}


def test_covisitation_uses_at_most_k_partners():
    config = cfg(covisit_partners=2)
    memory = fold([ev(1, "a"), ev(2, "b"), ev(3, "c"), ev(4, "d")], config)
    assert set(memory.item("d")[c.ITEM_COVISIT]) == {"b", "c"}


def test_covisitation_map_is_capped_to_the_best_neighbours():
    config = cfg(covisit_max=10, covisit_keep=5, covisit_partners=1)
    events = []
    seq = 0
    for n in range(12):  # hub "h" paired with 12 items; n_i paired (n+1) times
        for _ in range(n + 1):
            seq += 2
            events.append(ev(seq - 1, f"n{n}", user=f"u{seq}"))
            events.append(ev(seq, "h", user=f"u{seq}"))
    memory = fold(events, config)
    neighbours = memory.item("h")[c.ITEM_COVISIT]
    assert len(neighbours) <= 10
    assert {"n11", "n10", "n9", "n8", "n7"} <= set(neighbours)


# --- popularity and trending ----------------------------------------------------------------------
def test_popularity_buckets_by_event_hour_and_prunes_outside_the_window():
    config = cfg(popularity_window_hours=3, allowed_lateness_ms=10 * HOUR_MS)
    base = T0 - T0 % HOUR_MS
    memory = fold(
        [ev(1, "a", t=base), ev(2, "a", t=base + 1), ev(3, "a", t=base + 3 * HOUR_MS, etype="purchase")],
        config,
    )
    profile = memory.item("a")
    hour = base // HOUR_MS
    assert profile[c.ITEM_POPULARITY] == {str(hour + 3): 4}
    assert profile[c.ITEM_MAX_HOUR] == hour + 3
    assert profile[c.ITEM_COUNTS] == {"view": 2, "purchase": 1}


def test_popularity_buckets_do_not_depend_on_arrival_order():
    config = cfg(popularity_window_hours=4, allowed_lateness_ms=10 * HOUR_MS)
    base = T0 - T0 % HOUR_MS
    times = [base + h * HOUR_MS for h in (0, 5, 2, 3, 1, 6, 4)]
    rng = random.Random(7)
    results = set()
    for _ in range(5):
        order = times[:]
        rng.shuffle(order)
        memory = fold(
            [ev(i + 1, "a", user=f"u{i}", t=t, received=base + 7 * HOUR_MS) for i, t in enumerate(order)],
            config,
        )
        results.add(tuple(sorted(memory.item("a")[c.ITEM_POPULARITY].items())))
    assert len(results) == 1


def test_trending_slot_is_chosen_by_shard_and_merged_across_slots():
    config = cfg(trending_slots=4)
    memory = fold(
        [ev(1, "a", shard="s1"), ev(2, "a", user="u2", shard="s2"), ev(3, "b", user="u3", shard="s1")], config
    )
    slot1 = memory.rows[trending_key(None, slot_for_shard("s1", 4))]
    assert set(slot1[c.TRENDING_ENTRIES]) >= {"a", "b"}
    top = memory.trending()
    assert [item for item, _, _ in top] == ["a", "b"]
    assert top[0][1] == pytest.approx(2.0)
    assert [item for item, _, _ in memory.trending("c1")] == ["a", "b"]


def test_trending_slot_is_capped_to_the_best_items():
    config = cfg(trending_slots=1, trending_max=10, trending_keep=5)
    events = [ev(i + 1, f"i{i}", user=f"u{i}") for i in range(20)]
    events += [ev(100 + i, "hot", user=f"v{i}") for i in range(5)]
    memory = fold(events, config)
    entries = memory.rows[trending_key(None, 0)][c.TRENDING_ENTRIES]
    assert len(entries) <= 10 and "hot" in entries


def test_merge_trending_decays_older_hours():
    rows = [
        {c.ITEM_MAX_HOUR: 10, c.TRENDING_ENTRIES: {"old": [8.0, 4, ""], "new": [5.0, 10, "x"]}},
        None,
    ]
    merged = merge_trending(rows, half_life_hours=6.0)
    assert [m[0] for m in merged] == ["new", "old"]
    assert merged[1][1] == pytest.approx(4.0)


# --- affinity -------------------------------------------------------------------------------------
def test_category_affinity_decays_with_event_time_and_is_capped():
    config = cfg(affinity_half_life_ms=1000, affinity_cap=2)
    memory = fold(
        [
            ev(1, "a", t=T0, category="x"),
            ev(2, "b", t=T0 + 1000, category="y"),
            ev(3, "c", t=T0 + 2000, category="z", etype="purchase"),
        ],
        config,
    )
    affinity = memory.user("u1")[c.USER_AFFINITY]
    assert set(affinity) == {"y", "z"}
    assert affinity["z"] == pytest.approx(4.0) and affinity["y"] == pytest.approx(0.5)


def test_item_without_category_on_the_event_uses_the_profile_category():
    memory = fold([ev(1, "a", category="books"), ev(2, "a", user="u2", category=None)])
    assert memory.user("u2")[c.USER_HISTORY][0][3] == "books"


# --- experiments ----------------------------------------------------------------------------------
def test_attributed_impressions_clicks_and_purchases_count_per_variant():
    memory = fold(
        [
            ev(1, None, etype="impression", variant="b", experiment="exp"),
            ev(2, "a", etype="click", variant="b", experiment="exp"),
            ev(3, "a", etype="purchase", variant="b", experiment="exp"),
            ev(4, "a", etype="view", variant="b", experiment="exp"),  # views are not counted
            ev(5, "a", etype="click"),  # no attribution
        ]
    )
    row = memory.rows[experiment_key("exp", "b")]
    assert (row[c.EXPERIMENT_IMPRESSIONS], row[c.EXPERIMENT_CLICKS], row[c.EXPERIMENT_PURCHASES]) == (1, 1, 1)


# --- plumbing -------------------------------------------------------------------------------------
def test_plan_lists_the_user_row_first_and_every_row_it_touches():
    config = cfg()
    memory = fold([ev(1, "a")], config)
    plan = plan_event(memory.rows, ev(2, "b", etype="click", variant="v"), config)
    slot = slot_for_shard(SHARD, 4)
    assert plan.keys[0] == user_key("u1")
    assert set(plan.keys) == {
        user_key("u1"),
        experiment_key(c.DEFAULT_EXPERIMENT_ID, "v"),
        item_key("b"),
        item_key("a"),
        trending_key(None, slot),
        trending_key("c1", slot),
    }


def test_apply_creates_absent_rows_from_their_key():
    rows: dict = {}
    config = cfg()
    event = ev(1, "a")
    apply_event(rows, event, plan_event(rows, event, config), config)
    assert rows[item_key("a")][c.ITEM_ID_ATTR] == "a"
    assert new_row(user_key("x"))[c.ATTR_VERSION] == 0


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:34:56.789Z",
        "2017-11-24T16:00:17.000Z",
        "2024-02-29T00:00:00.001Z",
        "2024-05-01T12:00:00+02:00",
    ],
)
def test_timestamp_ms_matches_datetime(text: str):
    expected = int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp() * 1000)
    assert timestamp_ms(text) == expected


def test_config_rejects_inconsistent_caps():
    with pytest.raises(ValueError):
        cfg(covisit_keep=200)
    with pytest.raises(ValueError):
        cfg(trending_slots=0)
