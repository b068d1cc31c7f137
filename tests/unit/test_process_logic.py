"""The hot path (process.logic.HotPath) against the in-memory store with DynamoDB's semantics: no AWS."""

from __future__ import annotations

import itertools

from process.logic import HotPath
from streamrec_core.backoff import WriteRetries
from streamrec_core.features.codec import key_of
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.dynamodb import decoded
from streamrec_core.features.keys import USERS, Key, user_key
from streamrec_core.features.memory_store import MemoryStore
from streamrec_core.features.store import WRITTEN
from streamrec_core.features.user_fold import UserRow
from streamrec_core.kinesis import REASON_NOT_BASE64, KinesisRecord, parse_kinesis_event, to_event

from tests.feature_kit import (
    SHARD,
    ListDeadLetters,
    assert_same,
    comparable,
    event,
    kinesis_event,
    kinesis_record,
    reference_rows,
)

CFG = FeatureConfig(user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=600_000)


def ts(second: int) -> str:
    return f"2024-05-01T12:{second // 60:02d}:{second % 60:02d}.000Z"


def records_for(events: list[dict], start: int = 1) -> list[KinesisRecord]:
    return parse_kinesis_event(kinesis_event(kinesis_record(e, start + i) for i, e in enumerate(events)))


def many_events(n: int, users: int = 7, items: int = 40) -> list[dict]:
    return [
        event(i, user=f"u{i % users}", item=f"i{(i * 7) % items}", ts=ts(i), category=f"c{i % 5}")
        for i in range(n)
    ]


def hot_path(store: MemoryStore, letters: ListDeadLetters | None = None, **options) -> HotPath:
    return HotPath(store, letters or ListDeadLetters(), CFG, sleep=lambda s: None, **options)


def users_only(store: MemoryStore) -> dict:
    return comparable({k: v for k, v in store.rows().items() if k.table == USERS})


def expected_users(records: list[KinesisRecord]) -> dict:
    fold = reference_rows(CFG, (to_event(r) for r in records))
    return comparable({k: v for k, v in fold.rows().items() if k.table == USERS})


def test_a_batch_writes_each_user_row_once_and_nothing_else() -> None:
    # GIVEN 300 events of 7 users
    store = MemoryStore()
    records = records_for(many_events(300))
    # WHEN processed as one batch
    result = hot_path(store).process(records)
    # THEN every event is applied, with one conditional write per user, and only user rows exist
    assert result.failed_sequence_number is None and result.applied == 300
    assert store.bill.puts == result.users_written == 7
    assert {key.table for key in store.items} == {USERS}
    assert_same(users_only(store), expected_users(records))


def test_a_redelivered_batch_changes_nothing_and_writes_nothing() -> None:
    store = MemoryStore()
    records = records_for(many_events(50))
    hot_path(store).process(records)
    before, puts = store.rows(), store.bill.puts
    result = hot_path(store).process(records)
    assert result.seen == 50 and result.applied == 0
    assert store.rows() == before and store.bill.puts == puts


def test_a_client_resend_in_the_same_batch_is_counted_once() -> None:
    store = MemoryStore()
    first = event(1, item="a", ts=ts(1))
    result = hot_path(store).process(records_for([first, event(2, item="b", ts=ts(2)), dict(first)]))
    assert (result.applied, result.duplicates) == (2, 1)
    user = store.row(user_key("u1"))
    assert isinstance(user, UserRow) and user.counts == {"view": 2}


def test_persistent_throttling_reports_the_first_record_of_a_user_not_written() -> None:
    # GIVEN a store that refuses every write of user u1 (its records are 1, 3, 5, ...)
    store = MemoryStore(fault=lambda op, key: "throttle" if op == "write" and key == user_key("u1") else None)
    records = records_for([event(i, user=f"u{i % 2}", item=f"i{i}", ts=ts(i)) for i in range(10)])
    result = hot_path(store, retries=WriteRetries(max_throttles=2)).process(records)
    # THEN u0 is written, u1 is not, and the mapping resumes at u1's first record
    assert result.failed_sequence_number == "2"
    assert user_key("u0") in store.items and user_key("u1") not in store.items
    assert result.throttles == 3 and result.applied == 5
    # AND the retry from there applies u1 exactly once and u0's records are seen
    store.fault = lambda op, key: None
    retry = hot_path(store).process([r for r in records if r.seq >= 2])
    assert retry.failed_sequence_number is None and (retry.applied, retry.seen) == (5, 4)
    assert_same(users_only(store), expected_users(records))


def test_transient_throttling_is_retried_with_backoff() -> None:
    calls = itertools.count()
    store = MemoryStore(fault=lambda op, key: "throttle" if op == "write" and next(calls) < 2 else None)
    slept: list[float] = []
    result = HotPath(store, ListDeadLetters(), CFG, sleep=slept.append).process(
        records_for(many_events(3, users=1))
    )
    assert result.failed_sequence_number is None and result.applied == 3
    assert slept == [0.05, 0.1]


def test_a_concurrent_writer_is_re_read_and_re_folded_never_overwritten() -> None:
    # GIVEN a user row that a zombie invocation rewrites between our read and our write
    store = MemoryStore()
    hot_path(store).process(records_for([event(1, item="a", ts=ts(1))]))
    conflicts = iter([True])
    store.fault = lambda op, key: "conflict" if op == "write" and next(conflicts, False) else None
    # WHEN the next batch is processed
    result = hot_path(store).process(records_for([event(2, item="b", ts=ts(2))], start=2))
    # THEN it lost the race once, re-read and applied its event once on top of the other writer's row
    assert result.conflicts == 1 and result.failed_sequence_number is None
    user = store.row(user_key("u1"))
    assert isinstance(user, UserRow) and [h.item for h in user.history] == ["a", "b"]
    assert user.version == 3  # ours, the intruder's, ours


class LaggingReplica(MemoryStore):
    """Eventually consistent reads answer the row as it was before its latest write (a replica one write
    behind); consistent reads answer the stored row. Reads are recorded as (consistent, keys)."""

    def __init__(self) -> None:
        super().__init__()
        self.before_last_write: dict[Key, dict | None] = {}
        self.reads: list[bool] = []

    def get_many(self, keys, *, consistent):
        self.reads.append(consistent)
        found = super().get_many(keys, consistent=consistent)
        if not consistent:
            for key in found:
                if key in self.before_last_write:
                    stale = self.before_last_write[key]
                    found[key] = None if stale is None else decoded(key, stale)
        return found

    def put_many(self, rows, *, conditional=True):
        before = {key_of(row): self.items.get(key_of(row)) for row in rows}
        outcomes = super().put_many(rows, conditional=conditional)
        for key, outcome in outcomes.items():
            if outcome == WRITTEN:
                self.before_last_write[key] = before[key]
        return outcomes


def test_reads_are_eventually_consistent_first_and_a_stale_row_is_never_written_over() -> None:
    # GIVEN a store whose cheap reads lag one write behind
    store = LaggingReplica()
    records = records_for(many_events(30, users=3))
    hot = hot_path(store)
    # WHEN consecutive batches reach the same users
    results = [hot.process(records[i : i + 5]) for i in range(0, 30, 5)]
    # THEN every read starts eventually consistent; a stale copy loses its conditional write, the retry
    # reads consistently, and each record is applied exactly once
    assert store.reads[0] is False and True in store.reads
    assert sum(r.conflicts for r in results) > 0
    assert all(r.failed_sequence_number is None for r in results)
    assert sum(r.applied for r in results) == 30
    assert users_only(store) == expected_users(records)
    # and redrive reads consistently from the first read
    store.reads.clear()
    hot.process(records[:5], redrive=True)
    assert store.reads == [True]


def test_conflicts_beyond_the_retry_budget_report_a_failure() -> None:
    store = MemoryStore(fault=lambda op, key: "conflict" if op == "write" else None)
    result = hot_path(store, retries=WriteRetries(max_conflicts=2)).process(
        records_for(many_events(3, users=1))
    )
    assert result.failed_sequence_number == "1" and result.conflicts == 3


def test_conflict_retries_back_off_with_full_jitter() -> None:
    store = MemoryStore(fault=lambda op, key: "conflict" if op == "write" else None)
    slept: list[float] = []
    draws = iter([0.5, 0.25, 1.0])
    HotPath(
        store,
        ListDeadLetters(),
        CFG,
        sleep=slept.append,
        retries=WriteRetries(max_conflicts=3, jitter=lambda: next(draws)),
    ).process(records_for(many_events(1)))
    assert slept == [0.5 * 0.05, 0.25 * 0.1, 1.0 * 0.2]


def test_poison_records_go_to_the_dead_letter_port_with_their_reason_and_never_block() -> None:
    raw = [
        kinesis_record(event(1, item="a", ts=ts(1)), 1),
        kinesis_record(b"not json", 2),
        kinesis_record(event(3, item=None, ts=ts(3)), 3),  # a view needs an item
        kinesis_record(event(4, item="b", ts=ts(4)), 4),
    ]
    raw[1]["kinesis"]["data"] = "%%%"  # not even base64
    letters = ListDeadLetters()
    result = hot_path(MemoryStore(), letters).process(parse_kinesis_event(kinesis_event(raw)))
    assert result.failed_sequence_number is None and result.applied == 2
    assert [(letter.record.sequence_number, letter.reason.split(":")[0]) for letter in letters.sent] == [
        ("2", "undecodable"),
        ("3", "invalid"),
    ]
    assert letters.sent[0].reason == REASON_NOT_BASE64
    assert result.reasons == {"undecodable": 1, "invalid": 1}


def test_a_batch_of_nothing_but_poison_records_is_done_once_they_are_dead_lettered() -> None:
    letters = ListDeadLetters()
    raw = [kinesis_record(b"{}", 1), kinesis_record(b"[]", 2)]
    result = hot_path(MemoryStore(), letters).process(parse_kinesis_event(kinesis_event(raw)))
    assert result.failed_sequence_number is None and len(letters.sent) == 2


def test_a_dead_letter_that_cannot_be_sent_is_the_failure_point() -> None:
    raw = [
        kinesis_record(event(1, ts=ts(1)), 1),
        kinesis_record(b"{}", 2),
        kinesis_record(event(3, ts=ts(3)), 3),
    ]
    result = hot_path(MemoryStore(), ListDeadLetters(fail=lambda letter: True)).process(
        parse_kinesis_event(kinesis_event(raw))
    )
    assert result.failed_sequence_number == "2" and result.dead_letter_failures == 1


def test_late_events_are_counted_and_change_only_the_user() -> None:
    late = event(1, item="a", ts=ts(0), received_at="2024-05-01T12:20:00.000Z")
    store = MemoryStore()
    result = hot_path(store).process(records_for([late]))
    assert result.late == 1 and result.applied == 0
    user = store.row(user_key("u1"))
    assert isinstance(user, UserRow) and user.outbox == [] and user.counts == {"view": 1}


def test_redrive_applies_records_the_mapping_skipped_below_a_later_watermark() -> None:
    store = MemoryStore()
    skipped = records_for([event(1, item="a", ts=ts(1))], start=1)
    hot_path(store).process(records_for([event(2, item="b", ts=ts(2))], start=5))  # the mapping moved on
    assert hot_path(store).process(skipped).seen == 1
    result = hot_path(store).process(skipped, redrive=True)
    assert result.applied == 1
    again = hot_path(store).process(skipped, redrive=True)
    assert again.duplicates == 1 and again.applied == 0


def test_a_record_without_event_id_redriven_twice_is_applied_once() -> None:
    body = event(1, item="a", ts=ts(1))
    del body["event_id"]
    store = MemoryStore()
    records = records_for([body])
    assert hot_path(store).process(records, redrive=True).applied == 1
    assert hot_path(store).process(records, redrive=True).duplicates == 1


def test_parse_kinesis_event_reads_shard_sequence_and_arrival() -> None:
    (record,) = parse_kinesis_event(kinesis_event([kinesis_record(event(1), 42, arrival=1_714_564_800.123)]))
    assert (record.shard_id, record.sequence_number, record.seq, record.arrival_ms) == (
        SHARD,
        "42",
        42,
        1_714_564_800_123,
    )
    assert record.partition_key == "u1" and to_event(record).event_id == "e1"


def test_users_of_several_shards_keep_their_own_watermarks() -> None:
    store = MemoryStore()
    hot_path(store).process(records_for([event(1, ts=ts(1))], start=9))
    other = parse_kinesis_event(
        kinesis_event([kinesis_record(event(2, ts=ts(2)), 3, shard="shardId-000000000001")])
    )
    assert hot_path(store).process(other).applied == 1  # 3 < 9, but another shard
    user = store.row(Key(USERS, "u1"))
    assert (
        isinstance(user, UserRow)
        and user.watermark(SHARD) == 9
        and user.watermark("shardId-000000000001") == 3
    )
