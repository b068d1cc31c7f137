"""Process logic (process.logic.BatchProcessor) against an in-memory store: no AWS."""

from __future__ import annotations

import pytest
from process.logic import (
    REASON_NOT_BASE64,
    REASON_OVERSIZED,
    BatchProcessor,
    KinesisRecord,
    parse_kinesis_event,
)
from streamrec_core import constants as c
from streamrec_core.features import (
    FeatureConfig,
    MemoryFeatures,
    event_from_record,
    item_key,
    new_row,
    other_slot,
    slot_for_shard,
    trending_key,
    user_key,
)

from tests.feature_kit import (
    SHARD,
    CrashAfterWrites,
    ListDeadLetters,
    MemoryStore,
    assert_same_rows,
    event,
    kinesis_event,
    kinesis_record,
    readers_view,
)

CFG = FeatureConfig(
    user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=600_000, trending_slots=2
)


def ts(second: int) -> str:
    return f"2024-05-01T12:{second // 60:02d}:{second % 60:02d}.000Z"


def records_for(events: list[dict], start: int = 1) -> list[KinesisRecord]:
    return parse_kinesis_event(kinesis_event(kinesis_record(e, start + i) for i, e in enumerate(events)))


def many_events(n: int, users: int = 7, items: int = 40) -> list[dict]:
    return [
        event(i, user=f"u{i % users}", item=f"i{(i * 7) % items}", ts=ts(i), category=f"c{i % 5}")
        for i in range(n)
    ]


def processor(store: MemoryStore, letters: ListDeadLetters | None = None, **options) -> BatchProcessor:
    return BatchProcessor(store, letters or ListDeadLetters(), CFG, sleep=lambda s: None, **options)


def reference(records: list[KinesisRecord]) -> dict:
    """Each distinct event applied once, in order, in memory, with the same feature logic."""
    memory = MemoryFeatures(CFG)
    for record in records:
        from process.logic import decode

        body, _ = decode(record)
        if body is not None:
            memory.apply_event(
                event_from_record(
                    body,
                    shard_id=record.shard_id,
                    sequence_number=record.sequence_number,
                    arrival_ms=record.arrival_ms,
                )
            )
    return memory.rows


def without_versions(rows: dict) -> dict:
    return {k: {a: v for a, v in row.items() if a != c.ATTR_VERSION} for k, row in rows.items() if row}


def assert_same_state(actual_rows: dict, expected_rows: dict) -> None:
    """Equal as readers see them (trending slots merged), versions aside."""
    half_life = CFG.trending_half_life_hours
    assert_same_rows(
        readers_view(without_versions(actual_rows), half_life),
        readers_view(without_versions(expected_rows), half_life),
    )


def test_a_batch_is_applied_with_writes_coalesced_into_transactions_of_at_most_100_rows():
    # GIVEN 300 events touching ~7 users, 40 items and trending rows
    store = MemoryStore()
    records = records_for(many_events(300))
    # WHEN processed as one batch
    result = processor(store).process(records)
    # THEN everything is applied, every transaction holds <= 100 rows, far fewer writes than events
    assert result.failed_sequence_number is None and result.applied == 300
    assert store.largest_commit <= 100
    assert store.commit_calls == result.chunks < 300 / 5
    assert_same_state(store.rows(), reference(records))


def test_chunks_respect_a_smaller_transaction_limit():
    store = MemoryStore()
    result = processor(store, transact_max_items=10).process(records_for(many_events(60)))
    assert result.applied == 60 and store.largest_commit <= 10 and store.commit_calls > 6


def test_chunks_stay_within_the_4_mb_a_transaction_may_hold():
    # GIVEN 60 items whose stored profiles are ~100 KB each (long neighbour ids and categories)
    store = MemoryStore()
    big = {f"n{n:03d}-" + "x" * 120: [1, "c" * 900] for n in range(100)}
    seeded = {}
    for n in range(60):
        key = item_key(f"big{n}")
        seeded[key] = {**new_row(key), c.ITEM_CATEGORY: "c1", c.ITEM_COVISIT: dict(big), c.ATTR_VERSION: 1}
        store.items[key] = store._to_item(seeded[key])
    # ... and a batch in which 60 new users each view one of them (~4 rows per event: 100 rows > 4 MB)
    records = records_for([event(n, user=f"new{n}", item=f"big{n}", ts=ts(n)) for n in range(60)])
    # WHEN processed
    result = processor(store).process(records)
    # THEN every event is applied once, in transactions DynamoDB accepts (MemoryStore refuses > 4 MB)
    assert result.failed_sequence_number is None and result.applied == 60
    expected = MemoryFeatures(CFG)
    expected.rows.update({key: {**row} for key, row in seeded.items()})
    for record in records:
        expected.apply_event(_parsed(record))
    assert_same_state(store.rows(), expected.rows)


def _parsed(record: KinesisRecord):
    from process.logic import decode

    body, _ = decode(record)
    return event_from_record(
        body, shard_id=record.shard_id, sequence_number=record.sequence_number, arrival_ms=record.arrival_ms
    )


def test_redelivered_batch_changes_nothing():
    store = MemoryStore()
    records = records_for(many_events(50))
    processor(store).process(records)
    before = store.rows()
    result = processor(store).process(records)
    assert result.seen == 50 and result.applied == 0
    assert store.rows() == before


def test_client_resend_in_the_same_batch_is_counted_once():
    store = MemoryStore()
    first = event(1, item="a", ts=ts(1))
    records = records_for([first, event(2, item="b", ts=ts(2)), dict(first)])
    result = processor(store).process(records)
    assert (result.applied, result.duplicates) == (2, 1)
    assert store.rows()[user_key("u1")][c.USER_COUNTS] == {"view": 2}


def test_persistent_throttling_reports_the_first_record_not_applied():
    # GIVEN a store that throttles every commit after the first
    store = MemoryStore(plan=lambda n: "throttle" if n >= 2 else None)
    records = records_for(many_events(300))
    # WHEN processed with small transactions
    result = processor(store, transact_max_items=20, max_throttle_retries=2).process(records)
    # THEN the failure points at the first record of the second chunk, and the first chunk is applied
    assert result.failed_sequence_number is not None
    failed = int(result.failed_sequence_number)
    applied = [r for r in records if r.seq < failed]
    assert 0 < len(applied) < 300 and result.applied == len(applied)
    assert_same_state(store.rows(), reference(applied))
    # AND the retry from there completes the batch exactly once
    store.plan = lambda n: None
    retry = processor(store).process([r for r in records if r.seq >= failed])
    assert retry.failed_sequence_number is None
    assert_same_state(store.rows(), reference(records))


def test_transient_throttling_is_retried_with_backoff():
    store = MemoryStore(plan=lambda n: "throttle" if n in (1, 2) else None)
    sleeps: list[float] = []
    result = BatchProcessor(
        store, ListDeadLetters(), CFG, sleep=sleeps.append, max_throttle_retries=3
    ).process(records_for(many_events(20)))
    assert result.failed_sequence_number is None and result.throttles == 2
    assert sleeps == [0.05, 0.1]


def test_a_conflicting_writer_is_re_read_and_merged_not_overwritten():
    # GIVEN an item another lane wrote between our read and our commit
    store = MemoryStore()
    processor(store).process(records_for([event(1, user="other", item="a", ts=ts(1))]))

    class Interloper(MemoryStore):
        pass

    calls = {"n": 0}
    original_commit = store.commit

    def commit_with_interloper(writes):
        calls["n"] += 1
        if calls["n"] == 1:  # the concurrent lane commits first
            BatchProcessor(store, ListDeadLetters(), CFG).process(
                records_for([event(50, user="lane2", item="a", ts=ts(3))], start=50)
            )
        return original_commit(writes)

    store.commit = commit_with_interloper  # type: ignore[method-assign]
    result = processor(store).process(records_for([event(2, user="u1", item="a", ts=ts(2))], start=2))
    # THEN our write conflicted once, was re-folded on the fresh row, and both lanes' views count
    assert result.conflicts == 1 and result.applied == 1
    assert store.rows()[item_key("a")][c.ITEM_COUNTS] == {"view": 3}


def test_conflicts_beyond_the_retry_budget_report_a_failure():
    store = MemoryStore(plan=lambda n: "conflict")
    result = processor(store, max_conflict_retries=2).process(records_for(many_events(5)))
    assert result.failed_sequence_number == "1" and result.conflicts == 3


def test_conflict_retries_back_off_with_full_jitter_so_colliding_lanes_do_not_retry_in_lockstep():
    # GIVEN a store whose first two commits conflict (another lane wrote the same rows)
    store = MemoryStore(plan=lambda n: "conflict" if n <= 2 else None)
    slept: list[float] = []
    # WHEN the batch is processed with a fixed jitter draw of 0.5
    result = BatchProcessor(
        store, ListDeadLetters(), CFG, sleep=slept.append, jitter=lambda: 0.5, backoff_base_s=0.1
    ).process(records_for(many_events(5)))
    # THEN each retry waited a jittered, doubling share of the base before re-reading, and it succeeded
    assert slept == [0.05, 0.1]
    assert result.conflicts == 2 and result.failed_sequence_number is None


def global_slots_written(store: MemoryStore, slots: int) -> list[int]:
    return [slot for slot in range(slots) if trending_key(None, slot) in store.items]


def test_without_conflicts_a_shard_keeps_writing_its_own_trending_slot():
    # GIVEN one lane of one shard, three batches
    store = MemoryStore()
    proc = processor(store)
    for start in (1, 10, 20):
        proc.process(records_for(many_events(5), start))
    # THEN every contribution of the shard went into the shard's slot (its item shares stay whole)
    assert global_slots_written(store, CFG.trending_slots) == [slot_for_shard(SHARD, CFG.trending_slots)]


def test_after_a_version_conflict_the_shard_moves_to_another_trending_slot_and_stays_there():
    # GIVEN a store whose first commit conflicts (another lane of the shard wrote its slot row first)
    store = MemoryStore(plan=lambda n: "conflict" if n == 1 else None)
    proc = processor(store, jitter=lambda: 0.0)
    first, second = records_for(many_events(5)), records_for(many_events(5), start=10)
    # WHEN two batches of the shard are processed by the same (warm) processor
    result = proc.process(first)
    proc.process(second)
    # THEN the first retried on the other slot, the second started there, and readers see each event once
    moved = other_slot(slot_for_shard(SHARD, CFG.trending_slots), CFG.trending_slots, 0.0)
    assert result.conflicts == 1 and result.failed_sequence_number is None
    assert global_slots_written(store, CFG.trending_slots) == [moved]
    assert_same_state(store.rows(), reference(first + second))


def test_other_slot_never_picks_the_slot_that_conflicted_and_can_reach_every_other_one():
    for slots in (2, 3, 8):
        for slot in range(slots):
            reached = {other_slot(slot, slots, draw / 100) for draw in range(100)}
            assert reached == set(range(slots)) - {slot}
    assert other_slot(0, 1, 0.7) == 0  # a single slot has nowhere else to go


def test_a_crash_after_some_writes_leaves_whole_events_applied_and_a_retry_completes_exactly_once():
    store = MemoryStore(plan=lambda n: "crash" if n == 3 else None)
    records = records_for(many_events(200))
    with pytest.raises(CrashAfterWrites):
        processor(store, transact_max_items=20).process(records)
    partial = store.rows()
    assert partial  # two transactions landed
    store.plan = lambda n: None
    result = processor(store, transact_max_items=20).process(records)
    assert result.seen > 0 and result.failed_sequence_number is None
    assert_same_state(store.rows(), reference(records))


def test_poison_records_go_to_the_dead_letter_port_with_their_reason_and_never_block():
    letters = ListDeadLetters()
    store = MemoryStore()
    raw = [
        kinesis_record(event(1, ts=ts(1)), 1),
        kinesis_record(b"\xff\xfe not json", 2),
        kinesis_record({"event_type": "view"}, 3),
        kinesis_record(b"x" * 9000, 4),
        kinesis_record(event(5, ts=ts(5)), 5),
    ]
    raw.append(kinesis_record(event(6, ts=ts(6)), 6))
    raw[-1]["kinesis"]["data"] = "%%% not base64"
    result = processor(store, letters).process(parse_kinesis_event(kinesis_event(raw)))
    assert result.failed_sequence_number is None and result.applied == 2 and result.dead_lettered == 4
    reasons = {letter.record.sequence_number: letter.reason for letter in letters.sent}
    assert reasons["2"].startswith("undecodable")
    assert reasons["3"].startswith("invalid: ") and "user_id: is required" in reasons["3"]
    assert reasons["4"] == REASON_OVERSIZED
    assert reasons["6"] == REASON_NOT_BASE64
    assert result.reasons == {"undecodable": 2, "invalid": 1, "oversized": 1}


def test_a_dead_letter_that_cannot_be_sent_is_reported_as_the_failure_point():
    letters = ListDeadLetters(fail=lambda letter: True)
    records = parse_kinesis_event(
        kinesis_event(
            [
                kinesis_record(event(1, ts=ts(1)), 1),
                kinesis_record(b"junk", 2),
                kinesis_record(event(3, ts=ts(3)), 3),
            ]
        )
    )
    result = processor(MemoryStore(), letters).process(records)
    assert result.failed_sequence_number == "2" and result.applied == 2


def test_late_events_are_counted_and_touch_only_the_user():
    store = MemoryStore()
    late = event(1, item="a", ts=ts(0))
    late[c.RECORD_RECEIVED_AT] = "2024-05-01T13:00:00.000Z"
    result = processor(store).process(records_for([late]))
    assert result.late == 1
    assert set(store.rows()) == {user_key("u1")}


def test_redrive_applies_records_the_mapping_skipped_below_a_later_watermark():
    store = MemoryStore()
    skipped = records_for([event(1, item="a", ts=ts(1)), event(2, item="b", ts=ts(2))], start=1)
    later = records_for([event(3, item="c", ts=ts(3))], start=3)
    processor(store).process(later)  # the mapping gave up on 1..2 and went on
    assert processor(store).process(skipped).seen == 2  # a normal redelivery would skip them
    result = processor(store).process(skipped, redrive=True)
    assert result.applied == 2
    again = processor(store).process(skipped, redrive=True)
    assert again.applied == 0 and again.duplicates == 2
    assert store.rows()[user_key("u1")][c.USER_COUNTS] == {"view": 3}


def test_a_record_without_event_id_redriven_twice_is_applied_once():
    """A record written around ingest may carry no event_id; its id comes from its place in the stream,
    so redrive mode (which trusts ids, not watermarks) recognises it the second time."""
    store = MemoryStore()
    body = event(1, item="a", ts=ts(1))
    del body["event_id"]
    records = records_for([body])
    assert processor(store).process(records, redrive=True).applied == 1
    again = processor(store).process(records, redrive=True)
    assert again.applied == 0 and again.duplicates == 1
    assert store.rows()[user_key("u1")][c.USER_COUNTS] == {"view": 1}


def test_parse_kinesis_event_reads_shard_sequence_and_arrival():
    (record,) = parse_kinesis_event(
        kinesis_event(
            [
                kinesis_record(
                    event(1), "49590338271490256608559692538361571095921575989136588898", arrival=1.5
                )
            ]
        )
    )
    assert record.shard_id == SHARD and record.seq == 49590338271490256608559692538361571095921575989136588898
    assert record.arrival_ms == 1500 and record.partition_key == "u1"
