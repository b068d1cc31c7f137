"""The aggregate branches (aggregate.logic) against the in-memory store, after the real hot path. No AWS."""

from __future__ import annotations

import dataclasses
import gc
from typing import Any

import pytest
from aggregate.logic import ExperimentCounter, ItemAggregator
from process.logic import HotPath
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.item_aggregates import ItemRow
from streamrec_core.features.keys import (
    ITEMS,
    experiment_key,
    item_key,
    kind_of,
    partial_key,
    trending_key,
    user_key,
)
from streamrec_core.features.memory_store import MemoryStore
from streamrec_core.features.trending import TrendingList
from streamrec_core.features.user_fold import UserRow
from streamrec_core.kinesis import KinesisRecord, parse_kinesis_event, to_event

from tests.feature_kit import (
    SHARD,
    ListDeadLetters,
    assert_same,
    comparable,
    event,
    expected_rows,
    kinesis_event,
    kinesis_record,
    reference_rows,
)

CFG = FeatureConfig(user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=600_000)


def ts(second: int) -> str:
    return f"2024-05-01T12:{second // 60:02d}:{second % 60:02d}.000Z"


def records_for(events: list[dict], start: int = 1, shard: str = SHARD) -> list[KinesisRecord]:
    return parse_kinesis_event(
        kinesis_event(kinesis_record(e, start + i, shard=shard) for i, e in enumerate(events))
    )


def session(n: int, users: int = 4, items: int = 9) -> list[dict]:
    return [
        event(i, user=f"u{i % users}", item=f"i{(i * 5) % items}", ts=ts(i), category=f"c{i % 3}")
        for i in range(n)
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def branches(store: MemoryStore, cfg: FeatureConfig = CFG, clock: Clock | None = None):
    options: dict[str, Any] = {"sleep": lambda s: None, "not_ready_wait_s": 0.0}
    return (
        HotPath(store, ListDeadLetters(), cfg, sleep=lambda s: None),
        ItemAggregator(store, cfg, clock=clock or Clock(), **options),
        ExperimentCounter(store, cfg, **options),
    )


def item_rows(store: MemoryStore) -> dict:
    return comparable(
        {k: v for k, v in store.rows().items() if k.table == ITEMS and k.pk.startswith("item#")}
    )


def expected_items(records: list[KinesisRecord], cfg: FeatureConfig = CFG) -> dict:
    fold = reference_rows(cfg, (to_event(r) for r in records))
    return comparable({k: v for k, v in fold.rows().items() if k.pk.startswith("item#")})


def test_the_item_branch_writes_both_rows_of_each_session_pair_as_the_reference_does() -> None:
    store = MemoryStore()
    hot, items, _ = branches(store)
    records = records_for(session(60))
    hot.process(records)
    result = items.process(records)
    assert result.failed_sequence_number is None and result.unresolved == 0
    assert_same(item_rows(store), expected_items(records))
    # one write per touched row: every item that has a neighbour, plus this shard's trending partial
    assert result.rows_written == len(item_rows(store)) + 1


def test_a_redelivered_aggregate_batch_changes_nothing() -> None:
    store = MemoryStore()
    hot, items, _ = branches(store)
    records = records_for(session(40))
    hot.process(records)
    items.process(records)
    before = {k: v for k, v in store.rows().items() if k != trending_key()}
    again = items.process(records[5:])  # a retry from a checkpoint, after a crash that lost the answer
    assert again.failed_sequence_number is None
    assert {k: v for k, v in store.rows().items() if k != trending_key()} == before


def test_records_the_hot_path_has_not_processed_stop_the_batch_there() -> None:
    # GIVEN the hot path has processed only the first 10 records
    store = MemoryStore()
    hot, items, _ = branches(store)
    records = records_for(session(30))
    hot.process(records[:10])
    # WHEN the item branch gets all 30
    result = items.process(records)
    # THEN it applies the first 10 and asks for the rest again from record 11
    assert result.failed_sequence_number == "11" and result.not_ready == 20
    # AND once the hot path caught up, the retry completes the reference state exactly
    hot.process(records[10:])
    assert items.process(records[10:]).failed_sequence_number is None
    assert_same(item_rows(store), expected_items(records))


def test_an_item_row_that_cannot_be_written_is_where_the_batch_resumes() -> None:
    # GIVEN u1 looks at a then b (pair at record 2), u2 at c then d (pair at record 4)
    store = MemoryStore()
    hot, items, _ = branches(store)
    records = records_for(
        [
            event(1, user="u1", item="a", ts=ts(1)),
            event(2, user="u1", item="b", ts=ts(2)),
            event(3, user="u2", item="c", ts=ts(3)),
            event(4, user="u2", item="d", ts=ts(4)),
        ]
    )
    hot.process(records)
    # WHEN c's row cannot be written (throttled past the retries)
    store.fault = lambda op, key: "throttle" if op == "write" and key == item_key("c") else None
    result = items.process(records)
    # THEN the batch resumes at the first record touching c; a, b and d are written
    assert result.failed_sequence_number == "4"
    assert {item_key(i) for i in "abd"} <= set(store.items) and item_key("c") not in store.items
    # AND the retry from there completes the reference state exactly once
    store.fault = lambda op, key: None
    assert items.process(records[3:]).failed_sequence_number is None
    assert_same(item_rows(store), expected_items(records))


def test_a_row_another_shards_aggregator_wrote_meanwhile_is_re_read_and_re_applied() -> None:
    store = MemoryStore()
    hot, items, _ = branches(store)
    one = records_for([event(1, user="a", item="x", ts=ts(1)), event(2, user="a", item="y", ts=ts(2))])
    two = records_for(
        [event(3, user="b", item="x", ts=ts(3)), event(4, user="b", item="y", ts=ts(4))],
        shard="shardId-000000000001",
    )
    hot.process(one)
    hot.process(two)
    items.process(two)
    conflicts = iter([True])
    store.fault = lambda op, key: (
        "conflict" if op == "write" and key == item_key("x") and next(conflicts, False) else None
    )
    result = items.process(one)
    assert result.conflicts == 1 and result.failed_sequence_number is None
    row = store.row(item_key("x"))
    assert isinstance(row, ItemRow) and row.neighbours["y"].score == 2  # both shards' pairs, once each
    assert set(row.watermarks) == {SHARD, "shardId-000000000001"}


def test_records_whose_outbox_entry_expired_are_counted_never_guessed() -> None:
    cfg = dataclasses.replace(CFG, outbox_retention_ms=60_000)
    store = MemoryStore()
    hot, items, _ = branches(store, cfg)
    early = records_for([event(1, item="a", ts=ts(1)), event(2, item="b", ts=ts(2))])
    late_arrival = parse_kinesis_event(
        kinesis_event([kinesis_record(event(3, item="c", ts=ts(3)), 3, arrival=1_714_564_800.0 + 600)])
    )
    hot.process(early + late_arrival)  # the third arrives ten minutes later: the first two expire
    result = items.process(early + late_arrival)
    assert result.unresolved == 2 and result.failed_sequence_number is None


def test_trending_partials_are_merged_into_the_lists_serve_reads_when_due() -> None:
    store, clock = MemoryStore(), Clock()
    hot, items, _ = branches(store, clock=clock)
    first = records_for(session(20))
    hot.process(first)
    assert items.process(first).merged
    merged = store.row(trending_key())
    assert isinstance(merged, TrendingList) and merged.items
    second = records_for(session(40)[20:], start=21)
    hot.process(second)
    assert not items.process(second).merged  # within the interval: not due
    clock.now += CFG.merge_interval_ms / 1000
    assert items.merge_if_due()
    expected = expected_rows(reference_rows(CFG, (to_event(r) for r in first + second)))[trending_key()]
    actual = store.row(trending_key())
    assert isinstance(actual, TrendingList) and isinstance(expected, TrendingList)
    assert_same(actual.items, expected.items)
    category = store.row(trending_key("c0"))
    assert isinstance(category, TrendingList) and {t.category for t in category.items} == {"c0"}
    assert store.row(partial_key(SHARD)) is not None


def test_an_aggregator_that_loses_the_race_to_merge_writes_no_list() -> None:
    store, clock = MemoryStore(), Clock()
    hot, items, _ = branches(store, clock=clock)
    records = records_for(session(10))
    hot.process(records)
    items.process(records)
    clock.now += 60
    before = {k: v for k, v in store.items.items() if k.pk.startswith("trending#cat#")}
    # another aggregator writes the global list between this one's read and write
    store.fault = lambda op, key: "conflict" if op == "write" and key == trending_key() else None
    assert not items.merge_if_due()
    assert {k: v for k, v in store.items.items() if k.pk.startswith("trending#cat#")} == before


def test_experiment_counters_count_each_attributed_event_once() -> None:
    store = MemoryStore()
    hot, _, experiments = branches(store)

    def attributed(n: int, etype: str, variant: str) -> dict:
        return event(
            n,
            item=None if etype == "impression" else "i1",
            etype=etype,
            ts=ts(n),
            attribution={"request_id": "r", "variant": variant, "experiment_id": "exp"},
        )

    bodies = [attributed(1, "impression", "a"), attributed(2, "click", "a"), attributed(3, "impression", "b")]
    bodies.append(dict(bodies[1], received_at=ts(9)))  # a client resend of the click
    bodies.append(event(5, ts=ts(5)))  # not attributed
    records = records_for(bodies)
    hot.process(records)
    result = experiments.process(records)
    assert result.failed_sequence_number is None
    assert result.counted == {
        ("exp", "a", "impression"): 1,
        ("exp", "a", "click"): 1,
        ("exp", "b", "impression"): 1,
    }
    a = store.row(experiment_key("exp", "a"))
    assert isinstance(a, CounterRow) and (a.impressions, a.clicks, a.purchases) == (1, 1, 0)
    experiments.process(records)  # redelivered
    a = store.row(experiment_key("exp", "a"))
    assert isinstance(a, CounterRow) and (a.impressions, a.clicks) == (1, 1)


def test_records_redrive_applied_get_their_aggregates_from_redrive_once_and_never_from_the_branches() -> None:
    # GIVEN the hot path's mapping gave up on u1's second event (b); later records moved on
    store = MemoryStore()
    hot, items, _ = branches(store)
    records = records_for(
        [
            event(1, user="u1", item="a", ts=ts(1)),
            event(2, user="u1", item="b", ts=ts(2)),
            event(3, user="u1", item="c", ts=ts(3)),
        ]
    )
    given_up, rest = records[1:2], [records[0], records[2]]
    hot.process(rest)
    items.process(records)  # the branch passes b: the hot path has not applied it, so no effect yet
    # WHEN redrive applies b to the user row, then its aggregates (only the records it applied now)
    applied = hot.process(given_up, redrive=True).applied_records
    assert applied == [(SHARD, "2")]
    redriven = items.process(
        [r for r in given_up if (r.shard_id, r.sequence_number) in applied], redriven=True
    )
    # THEN b's pair is counted once: redelivering the range to the branch or redriving it again adds nothing
    assert redriven.effects == 1
    items.process(records)
    assert hot.process(given_up, redrive=True).applied_records == []
    row = store.row(item_key("b"))
    assert isinstance(row, ItemRow) and row.neighbours["a"].score == 1


def test_a_batch_without_any_effect_writes_nothing_and_is_done() -> None:
    store = MemoryStore()
    hot, items, experiments = branches(store)
    records = records_for([event(1, item=None, etype="search", ts=ts(1))])
    hot.process(records)
    assert items.process(records).failed_sequence_number is None
    assert experiments.process(records).failed_sequence_number is None
    assert {kind_of(key) for key in store.items} == {"user", "progress"}


def test_the_hot_path_releases_outbox_entries_the_branches_have_consumed() -> None:
    store = MemoryStore()
    hot, items, experiments = branches(store)

    def arriving(n: int, item: str, second: float) -> dict:
        return kinesis_record(event(n, item=item, ts=ts(n)), n, arrival=1_714_564_800.0 + second)

    first = parse_kinesis_event(kinesis_event([arriving(1, "a", 0), arriving(2, "b", 5)]))
    hot.process(first)
    user = store.row(user_key("u1"))
    assert isinstance(user, UserRow) and len(user.outbox) == 2
    items.process(first)  # consumed up to the second record's arrival
    experiments.process(first)  # nothing attributed: nothing of these is waiting for it
    hot.process(parse_kinesis_event(kinesis_event([arriving(3, "c", 60)])))
    user = store.row(user_key("u1"))
    # the first is released; the second arrived within the margin of what the branch consumed
    assert isinstance(user, UserRow) and [e.seqtag for e in user.outbox] == [2, 3]


def test_every_consumer_folds_its_batch_with_the_collector_paused_and_leaves_it_running() -> None:
    # The collector is paused per batch (streamrec_core.gc_pause) for speed; a warm container reused for
    # the next invocation must get it back, also when the batch ends in an exception.
    store = MemoryStore()
    consumers = branches(store)
    records = records_for(session(12))
    seen: list[bool] = []
    store.fault = lambda op, key: seen.append(gc.isenabled())
    for consumer in consumers:
        consumer.process(records)
        assert seen and not any(seen), type(consumer).__name__
        assert gc.isenabled()
        seen.clear()

    def broken(op: str, key: object) -> None:
        raise RuntimeError("store broke")

    store.fault = broken
    for consumer in consumers:
        with pytest.raises(RuntimeError):
            consumer.process(records_for(session(12), start=100))
        assert gc.isenabled(), type(consumer).__name__
