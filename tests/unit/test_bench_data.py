"""bench.common: records as ingest encodes them, keyed onto shards and cut into batches like Kinesis."""

from __future__ import annotations

from process.logic import decode, parse_kinesis_event

from bench.common import encode_events, generated_events, kinesis_batches, shard_of


def test_encoded_records_are_valid_for_the_process_function():
    records = encode_events(generated_events(50, users=5, items=20, seed=1))
    batch = kinesis_batches(records, batch_size=100, shards=1)[0]
    for record in parse_kinesis_event(batch.event):
        event, reason = decode(record)
        assert reason is None and event["received_at"] >= event["timestamp"]


def test_batches_hold_each_record_once_one_shard_each_in_sequence_order():
    records = encode_events(generated_events(300, users=40, items=50, seed=2))
    batches = kinesis_batches(records, batch_size=32, shards=3)
    assert all(len(b) <= 32 for b in batches)
    seen = [r for b in batches for r in b.event["Records"]]
    assert len(seen) == len(records)
    for batch in batches:
        shards = {r["eventID"].rsplit(":", 1)[0] for r in batch.event["Records"]}
        assert shards == {batch.shard_id}
        keys = {r["kinesis"]["partitionKey"] for r in batch.event["Records"]}
        assert {f"shardId-{shard_of(k, 3):012d}" for k in keys} == {batch.shard_id}
    by_shard: dict[str, list[int]] = {}
    for record in seen:
        by_shard.setdefault(record["eventID"].rsplit(":", 1)[0], []).append(
            int(record["kinesis"]["sequenceNumber"])
        )
    assert all(
        numbers == sorted(numbers) and len(set(numbers)) == len(numbers) for numbers in by_shard.values()
    )


def test_shard_of_splits_the_hash_range_evenly():
    assert shard_of("anything", 1) == 0
    counts = [0, 0, 0, 0]
    for n in range(4000):
        counts[shard_of(f"user-{n}", 4)] += 1
    assert min(counts) > 800
