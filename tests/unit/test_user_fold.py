"""The user fold (features.user_fold): what one user's events do to their row. No AWS."""

from __future__ import annotations

import dataclasses

import pytest
from streamrec_core.features.config import HOUR_MS, MINUTE_MS, FeatureConfig
from streamrec_core.features.events import Event, event_digest
from streamrec_core.features.user_fold import (
    APPLY,
    DUPLICATE,
    EXPERIMENT_EFFECT,
    ITEM_EFFECT,
    LATE,
    SEEN,
    HistoryEntry,
    UserRow,
    fold,
    redrive_uncertain,
    release,
)

CFG = FeatureConfig(user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=10 * MINUTE_MS)
T0 = 1_714_564_800_000  # 2024-05-01T12:00:00Z
SHARD = "shardId-000000000000"


def ev(
    n: int,
    *,
    item: str | None = "i1",
    etype: str = "view",
    at: int = 0,
    category: str = "c1",
    received: int | None = None,
    shard: str = SHARD,
    seq: int | None = None,
    event_id: str | None = None,
    variant: str | None = None,
    arrival: int | None = None,
) -> Event:
    """Event n at T0 + `at` seconds (sequence number n unless given)."""
    time_ms = T0 + at * 1000
    sequence = n if seq is None else seq
    return Event(
        event_id or f"e{n}",
        etype,
        "u1",
        item,
        category,
        time_ms,
        time_ms if received is None else T0 + received * 1000,
        shard,
        str(sequence),
        sequence,
        time_ms if arrival is None else arrival,
        "exp" if variant else None,
        variant,
    )


def folded(*events: Event, cfg: FeatureConfig = CFG) -> tuple[UserRow, list[str]]:
    row = UserRow("u1")
    return row, [fold(row, e, cfg) for e in events]


def test_history_keeps_the_latest_item_events_oldest_first_and_is_capped() -> None:
    cfg = dataclasses.replace(CFG, history_cap=3)
    row, _ = folded(
        *(ev(n, item=f"i{n}", at=n) for n in range(1, 6)), ev(6, item=None, etype="search", at=6), cfg=cfg
    )
    assert [h.item for h in row.history] == ["i3", "i4", "i5"]
    assert row.counts == {"view": 5, "search": 1}
    assert row.last_event_ms == T0 + 6000


def test_an_out_of_order_event_within_the_lateness_is_inserted_in_event_time_order() -> None:
    row, verdicts = folded(ev(1, item="a", at=100), ev(2, item="b", at=50, received=101))
    assert verdicts == [APPLY, APPLY]
    assert [h.item for h in row.history] == ["b", "a"]


def test_purchases_are_remembered_latest_last_and_capped() -> None:
    cfg = dataclasses.replace(CFG, bought_cap=2)
    row, _ = folded(*(ev(n, item=f"i{n % 3}", etype="purchase", at=n) for n in range(1, 6)), cfg=cfg)
    assert row.bought == ["i1", "i2"]


def test_a_sequence_number_at_or_below_the_watermark_is_seen_and_changes_nothing() -> None:
    row, _ = folded(ev(5, at=1))
    before = dataclasses.replace(row, history=list(row.history), counts=dict(row.counts))
    assert fold(row, ev(5, at=1), CFG) == SEEN
    assert fold(row, ev(4, event_id="other", at=2), CFG) == SEEN
    assert row.history == before.history and row.counts == before.counts


def test_watermarks_are_per_shard_and_compared_as_integers() -> None:
    # "9" > "10" as strings; AWS sequence numbers have 56 digits and must compare as numbers
    row, verdicts = folded(
        ev(9, at=1), ev(10, event_id="x", at=2), ev(3, event_id="y", at=3, shard="shardId-1")
    )
    assert verdicts == [APPLY, APPLY, APPLY]
    assert row.watermark(SHARD) == 10 and row.watermark("shardId-1") == 3


def test_watermarks_of_shards_idle_beyond_the_horizon_are_dropped() -> None:
    cfg = dataclasses.replace(CFG, watermark_horizon_ms=HOUR_MS, allowed_lateness_ms=10 * HOUR_MS)
    row, _ = folded(ev(1, shard="old", arrival=T0), ev(2, shard="new", arrival=T0 + 2 * HOUR_MS), cfg=cfg)
    assert set(row.watermarks) == {"new"}


def test_a_client_resend_is_a_duplicate_that_only_moves_the_watermark() -> None:
    row, verdicts = folded(ev(1, at=1), ev(2, event_id="e1", at=1, received=30))
    assert verdicts == [APPLY, DUPLICATE]
    assert row.counts == {"view": 1} and len(row.history) == 1
    assert row.watermark(SHARD) == 2


def test_resends_are_recognised_within_the_dedup_window_and_always_the_latest_ids() -> None:
    cfg = dataclasses.replace(CFG, dedup_window_ms=60_000, dedup_min=2, dedup_cap=4)
    # four events within a minute: all four ids kept (cap 4)
    row, _ = folded(*(ev(n, at=n) for n in range(1, 5)), cfg=cfg)
    assert [r.digest for r in row.recent] == [event_digest(f"e{n}") for n in range(1, 5)]
    # ten minutes later: ids older than the window go, but the latest two stay
    fold(row, ev(5, at=600), cfg)
    assert [r.digest for r in row.recent] == [event_digest("e4"), event_digest("e5")]
    assert fold(row, ev(6, event_id="e4", at=601), cfg) == DUPLICATE
    assert fold(row, ev(7, event_id="e1", at=602), cfg) == APPLY  # beyond the horizon: a new event


def test_a_late_event_changes_the_user_but_has_no_item_effect() -> None:
    row, verdicts = folded(ev(1, at=0, received=601))
    assert verdicts == [LATE]
    assert row.counts == {"view": 1} and [h.item for h in row.history] == ["i1"]
    assert row.outbox == []


def test_an_event_exactly_at_the_allowed_lateness_is_on_time() -> None:
    row, verdicts = folded(ev(1, at=0, received=600))
    assert verdicts == [APPLY] and row.outbox[0].flags == ITEM_EFFECT


def test_the_outbox_names_each_item_event_and_its_session_partner() -> None:
    row, _ = folded(
        ev(1, item="a", at=0, category="ca", arrival=T0),
        ev(2, item="a", etype="add_to_cart", at=10, arrival=T0),  # same item: its partner is not itself
        ev(3, item="b", at=20, category="cb", arrival=T0),
        ev(4, item="c", at=20 + 31 * 60, category="cc", arrival=T0),  # a new session: no partner
    )
    assert [(e.seqtag, e.category, e.pred, e.pred_category) for e in row.outbox] == [
        (1, "ca", "", ""),
        (2, "c1", "", ""),
        (3, "cb", "a", "c1"),
        (4, "cc", "", ""),
    ]


def test_an_event_without_category_takes_the_category_the_history_gives_its_item() -> None:
    row, _ = folded(
        ev(1, item="a", category="shoes", at=0), ev(2, item="b", at=1), ev(3, item="a", category="", at=2)
    )
    assert row.history[-1].category == "shoes" and row.outbox[-1].category == "shoes"


def test_attributed_impressions_clicks_and_purchases_are_marked_for_the_experiment_branch() -> None:
    row, verdicts = folded(
        ev(1, item=None, etype="impression", variant="a", at=0),
        ev(2, etype="click", variant="a", at=1),
        ev(3, etype="view", variant="a", at=2),  # views are not counted per variant
        ev(4, etype="click", variant="b", at=0, received=700),  # late: still counted, no item effect
    )
    assert verdicts == [APPLY, APPLY, APPLY, LATE]
    assert [(e.seqtag, e.flags) for e in row.outbox] == [
        (1, EXPERIMENT_EFFECT),
        (2, ITEM_EFFECT | EXPERIMENT_EFFECT),
        (3, ITEM_EFFECT),
        (4, EXPERIMENT_EFFECT),
    ]


def test_the_outbox_keeps_entries_for_the_retention_then_raises_its_floor() -> None:
    cfg = dataclasses.replace(CFG, outbox_retention_ms=60_000, outbox_cap=3)
    row, _ = folded(ev(1, at=0), ev(2, item="b", at=10), cfg=cfg)
    assert row.outbox_floor_ms == 0 and len(row.outbox) == 2
    fold(row, ev(3, item="c", at=100), cfg)  # 100 s later: the first two are past the retention
    assert [e.seqtag for e in row.outbox] == [3]
    assert row.outbox_floor_ms == T0 + 10_000 + 1
    for n in range(4, 8):  # more than the cap within the retention: the oldest go
        fold(row, ev(n, item=f"i{n}", at=100 + n), cfg)
    assert [e.seqtag for e in row.outbox] == [5, 6, 7]
    assert row.outbox_floor_ms == T0 + 104_000 + 1


def test_affinity_decays_with_event_time_is_kept_in_exact_steps_and_capped() -> None:
    cfg = dataclasses.replace(CFG, affinity_cap=2, affinity_half_life_ms=HOUR_MS)
    row, _ = folded(
        ev(1, category="a", at=0),
        ev(2, category="b", etype="purchase", at=3600),  # one half-life later: a is halved
        ev(3, category="c", at=3600),  # three categories, cap two: the weakest goes
        cfg=cfg,
    )
    assert row.affinity == {"b": 4.0, "c": 1.0}
    assert all(score * 256 == int(score * 256) for score in row.affinity.values())


def test_user_ttl_follows_the_latest_receipt_time() -> None:
    row, _ = folded(ev(1, at=100), ev(2, item="b", at=50, received=101))
    assert row.expires_at == (T0 + 101_000) // 1000 + CFG.user_ttl_seconds


def test_redrive_applies_a_record_below_the_watermark_unless_its_id_was_applied() -> None:
    row, _ = folded(ev(10, at=10))
    skipped = ev(5, event_id="skipped", item="x", at=5)
    assert fold(row, skipped, CFG) == SEEN  # normal mode: below the watermark
    assert fold(row, skipped, CFG, redrive=True) == APPLY
    assert fold(row, skipped, CFG, redrive=True) == DUPLICATE


def test_redrive_of_a_record_older_than_the_kept_ids_is_flagged_uncertain() -> None:
    cfg = dataclasses.replace(CFG, dedup_window_ms=1000, dedup_min=1, dedup_cap=1)
    row, _ = folded(ev(10, at=10), ev(11, item="j", at=20), cfg=cfg)
    assert redrive_uncertain(row, ev(3, event_id="old", at=1), cfg)
    assert not redrive_uncertain(row, ev(30, event_id="new", at=30), cfg)


def test_history_and_digest_times_are_kept_to_the_second() -> None:
    # (a row stores them in seconds: 1-3 bytes each instead of 3-5)
    row, _ = folded(ev(1, item="a")._replace(time_ms=T0 + 1_999, received_ms=T0 + 2_500))
    assert row.history[0].time_ms == T0 + 1_000 and row.recent[0].received_ms == T0 + 2_000
    # a redriven record received in the oldest kept digest's second may be the one pruned before it
    cfg = dataclasses.replace(CFG, dedup_window_ms=1000, dedup_min=1, dedup_cap=1)
    assert redrive_uncertain(row, ev(1, event_id="x")._replace(received_ms=T0 + 2_100), cfg)
    assert not redrive_uncertain(row, ev(1, event_id="x")._replace(received_ms=T0 + 3_000), cfg)


def test_history_entries_are_named_tuples_readers_unpack() -> None:
    row, _ = folded(ev(1, item="a", at=0))
    item, event_type, time_ms, category = row.history[0]
    assert (
        row.history[0]
        == HistoryEntry(item, event_type, time_ms, category)
        == HistoryEntry("a", "view", T0, "c1")
    )


def test_config_rejects_inconsistent_bounds() -> None:
    for bad in ({"covisit_keep": 50}, {"partial_keep": 0}, {"dedup_min": 100}, {"outbox_cap": 0}):
        with pytest.raises(ValueError):
            dataclasses.replace(CFG, **bad)


def test_outbox_entries_are_released_once_every_branch_that_needs_them_has_consumed_them() -> None:
    row, _ = folded(
        ev(1, item="a", at=0, arrival=T0),
        ev(2, item="b", etype="click", variant="v", at=1, arrival=T0 + 5_000),
        ev(3, item="c", at=2, arrival=T0 + 9_000),
    )
    assert [e.seqtag for e in row.outbox] == [1, 2, 3]
    # the item branch is past all three (with the margin), the experiment branch has not reported yet
    release(row, {(ITEM_EFFECT, SHARD): T0 + 11_000})
    assert [e.seqtag for e in row.outbox] == [2]  # the click still waits for its counter
    release(row, {(ITEM_EFFECT, SHARD): T0 + 11_000, (EXPERIMENT_EFFECT, "other-shard"): T0 + 60_000})
    assert [e.seqtag for e in row.outbox] == [2]  # another shard's progress says nothing about this one
    release(row, {(ITEM_EFFECT, SHARD): T0 + 11_000, (EXPERIMENT_EFFECT, SHARD): T0 + 6_000})
    assert row.outbox == []
