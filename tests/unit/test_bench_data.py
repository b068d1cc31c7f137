"""bench.common: records as ingest encodes them, keyed onto shards and cut into batches like Kinesis."""

from __future__ import annotations

from streamrec_core.kinesis import decode_batch, parse_kinesis_event

from bench.common import encode_events, generated_events, kinesis_batches, shard_of, stream_records


def test_encoded_records_are_valid_for_the_functions():
    records = encode_events(generated_events(50, users=5, items=20, seed=1))
    batch = kinesis_batches(records, batch_size=100, shards=1)[0]
    events, letters = decode_batch(parse_kinesis_event(batch.event))
    assert not letters and len(events) == 50
    assert all(e.received_ms >= e.time_ms for e in events)


def test_stream_records_number_one_shard_in_arrival_order():
    records = encode_events(generated_events(30, users=5, items=20, seed=2))
    numbered = stream_records(records)
    assert [r.seq for r in numbered] == sorted(r.seq for r in numbered)
    assert len({r.seq for r in numbered}) == 30
    assert [r.arrival_ms for r in numbered] == [round(r.arrival * 1000) for r in records]
    events, letters = decode_batch(numbered)
    assert not letters and [e.user_id for e in events] == [r.partition_key for r in records]


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
