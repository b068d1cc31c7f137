"""Item aggregates, trending and counters (features.item_aggregates, .trending, .counters). No AWS."""

from __future__ import annotations

import dataclasses
import math

from streamrec_core.features.config import MINUTE_MS, FeatureConfig
from streamrec_core.features.counters import CounterRow, count
from streamrec_core.features.events import Event
from streamrec_core.features.item_aggregates import (
    NOT_READY,
    READY,
    UNRESOLVED,
    ItemRow,
    Neighbour,
    add_pair,
    apply_update,
    effect_of,
    mark_applied,
    pair_updates,
    pending,
    resolve,
)
from streamrec_core.features.trending import PartialRow, Trend, add, merge
from streamrec_core.features.user_fold import EXPERIMENT_EFFECT, ITEM_EFFECT, UserRow, fold

CFG = FeatureConfig(user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=10 * MINUTE_MS)
T0 = 1_714_564_800_000
SHARD = "shardId-000000000000"
HOUR0 = T0 // 3_600_000


def ev(
    n: int, item: str | None = "i1", *, at: int = 0, etype: str = "view", arrival: int | None = None
) -> Event:
    time_ms = T0 + at * 1000
    return Event(f"e{n}", etype, "u1", item, "c1", time_ms, time_ms, SHARD, str(n), n, arrival or time_ms)


# --- resolving records against the user row ----------------------------------------------------------
def test_a_record_the_hot_path_applied_resolves_to_its_outbox_entry() -> None:
    user = UserRow("u1")
    first, second = ev(1, "a", at=0), ev(2, "b", at=5)
    fold(user, first, CFG)
    fold(user, second, CFG)
    outcome, effect = resolve(user, second)
    assert outcome == READY and effect is not None
    assert (effect.item, effect.pred, effect.weight, effect.flags) == ("b", "a", 1, ITEM_EFFECT)


def test_a_record_the_hot_path_has_not_processed_is_not_ready() -> None:
    user = UserRow("u1")
    fold(user, ev(1, "a"), CFG)
    assert resolve(user, ev(2, "b"))[0] == NOT_READY
    assert resolve(None, ev(1, "a"))[0] == NOT_READY


def test_a_processed_record_without_an_entry_has_no_effect() -> None:
    user = UserRow("u1")
    fold(user, ev(1, "a"), CFG)
    resend = Event("e1", "view", "u1", "a", "c1", T0, T0 + 5000, SHARD, "2", 2, T0 + 5000)
    fold(user, resend, CFG)  # a client resend: a duplicate, no entry
    assert resolve(user, resend) == (READY, None)


def test_a_record_whose_entry_expired_is_unresolved_never_guessed() -> None:
    cfg = dataclasses.replace(CFG, outbox_retention_ms=60_000)
    user = UserRow("u1")
    old = ev(1, "a", at=0)
    fold(user, old, cfg)
    fold(user, ev(2, "b", at=600), cfg)  # ten minutes later: the first entry is past the retention
    assert resolve(user, old) == (UNRESOLVED, None)


# --- co-visitation rows -----------------------------------------------------------------------------
def test_a_pair_updates_both_items_rows_with_the_later_events_weight() -> None:
    effect = effect_of(ev(2, "b", etype="add_to_cart"), "cb", "a", "ca", ITEM_EFFECT)
    rows = {update.item: ItemRow(update.item) for update in pair_updates(effect)}
    for update in pair_updates(effect):
        apply_update(rows[update.item], update, effect, CFG)
    assert rows["a"].neighbours == {"b": Neighbour(3, "cb")} and rows["a"].category == "ca"
    assert rows["b"].neighbours == {"a": Neighbour(3, "ca")} and rows["b"].category == "cb"
    assert rows["a"].expires_at == T0 // 1000 + CFG.item_ttl_seconds


def test_an_event_without_a_session_partner_changes_no_item_row() -> None:
    assert pair_updates(effect_of(ev(1, "a"), "ca", "", "", ITEM_EFFECT)) == ()
    assert pair_updates(effect_of(ev(1, "a"), "ca", "b", "", EXPERIMENT_EFFECT)) == ()


def test_neighbour_maps_are_cut_to_the_best_when_they_grow_past_the_cap() -> None:
    cfg = dataclasses.replace(CFG, covisit_max=4, covisit_keep=2)
    row = ItemRow("x")
    for n, weight in enumerate([1, 4, 2, 3]):
        add_pair(row, f"n{n}", "", weight, cfg)
    add_pair(row, "n1", "", 1, cfg)  # an existing neighbour: summed, no cut
    assert len(row.neighbours) == 4 and row.neighbours["n1"].score == 5
    add_pair(row, "n9", "", 1, cfg)  # the fifth: cut to the best two
    assert row.neighbours == {"n1": Neighbour(5, ""), "n3": Neighbour(3, "")}


def test_a_row_applies_each_shards_record_once() -> None:
    row = ItemRow("x")
    first, second = ev(5), ev(7)
    assert pending(row.watermarks, first)
    mark_applied(row.watermarks, second, CFG)
    assert not pending(row.watermarks, first) and not pending(row.watermarks, second)
    assert pending(row.watermarks, ev(8))
    other_shard = Event("e", "view", "u", "i", "", T0, T0, "shardId-000000000001", "1", 1, T0)
    assert pending(row.watermarks, other_shard)


# --- trending -----------------------------------------------------------------------------------------
def test_a_partial_decays_each_items_score_in_event_time_hours() -> None:
    cfg = dataclasses.replace(CFG, trending_half_life_hours=1.0)
    partial = PartialRow("s")
    add(partial, "a", "c", HOUR0, 4, cfg)
    add(partial, "a", "c", HOUR0 + 1, 1, cfg)  # one half-life later: 4 -> 2, plus 1
    add(partial, "a", "c", HOUR0, 2, cfg)  # an older event adds its decayed weight
    assert math.isclose(partial.entries["a"].score, 4.0) and partial.entries["a"].hour == HOUR0 + 1


def test_merging_partials_sums_every_shards_share_decayed_to_the_newest_hour() -> None:
    cfg = dataclasses.replace(CFG, trending_half_life_hours=1.0)
    one, two = PartialRow("s1"), PartialRow("s2")
    add(one, "a", "shoes", HOUR0, 4, cfg)
    add(two, "a", "", HOUR0 + 1, 1, cfg)
    add(two, "b", "hats", HOUR0 + 1, 2, cfg)
    overall, by_category = merge([two, one], cfg)
    assert overall == [Trend("a", 3.0, "shoes"), Trend("b", 2.0, "hats")]
    assert by_category == {"shoes": [Trend("a", 3.0, "shoes")], "hats": [Trend("b", 2.0, "hats")]}


def test_a_partial_is_cut_to_its_best_items_and_lists_to_their_sizes() -> None:
    cfg = dataclasses.replace(CFG, partial_max=3, partial_keep=2, global_list_size=1, category_list_size=1)
    partial = PartialRow("s")
    for n, weight in enumerate([1, 5, 3, 2]):
        add(partial, f"i{n}", "c", HOUR0, weight, cfg)
    assert set(partial.entries) == {"i1", "i2"}
    overall, by_category = merge([partial], cfg)
    assert [t.item for t in overall] == ["i1"] and [t.item for t in by_category["c"]] == ["i1"]


# --- counters -----------------------------------------------------------------------------------------
def test_counters_count_impressions_clicks_and_purchases() -> None:
    row = CounterRow("exp", "a")
    for event_type in ("impression", "impression", "click", "purchase", "view"):
        count(row, event_type)
    assert (row.impressions, row.clicks, row.purchases) == (2, 1, 1)
