"""The emulator's moto fixes keep AWS semantics: TransactWriteItems is still all-or-nothing with
per-item rollback, after a reshard writes go to the open children while the parent keeps its records,
and concurrent Kinesis writers and readers lose nothing and fail nothing."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.cloudwatch.models import cloudwatch_backends
from moto.kinesis.models import Shard

from local_emulator import moto_patches
from local_emulator.metrics import RETENTION_S, MetricStore
from tests.integration.conftest import FEATURES_TABLE

TABLE = FEATURES_TABLE


def _put(pk, version):
    return {"Put": {"TableName": TABLE, "Item": {"pk": {"S": pk}, "v": {"N": str(version)}}}}


def _value(dynamodb, pk):
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")
    return None if item is None else int(item["v"]["N"])


def test_failed_transaction_rolls_back_every_item_it_touched(patched_aws):
    """All or nothing: when one condition fails, the actions before it are undone."""
    dynamodb = patched_aws["dynamodb"]
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "untouched"}, "v": {"N": "7"}})
    failing = {
        "Update": {
            "TableName": TABLE,
            "Key": {"pk": {"S": "c"}},
            "UpdateExpression": "SET v = :v",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":v": {"N": "3"}},
        }
    }

    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=[_put("a", 2), _put("b", 2), failing])

    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert (_value(dynamodb, "a"), _value(dynamodb, "b"), _value(dynamodb, "c")) == (1, None, None)
    assert _value(dynamodb, "untouched") == 7


def test_successful_transaction_applies_every_action(patched_aws):
    dynamodb = patched_aws["dynamodb"]
    dynamodb.transact_write_items(TransactItems=[_put("a", 1), _put("b", 2)])
    assert (_value(dynamodb, "a"), _value(dynamodb, "b")) == (1, 2)


def test_after_a_split_writes_go_to_the_children_and_the_parent_keeps_its_records(patched_aws):
    """As in AWS: the closed parent keeps its records; new records land in the open child shards."""
    kinesis = patched_aws["kinesis"]
    kinesis.create_stream(StreamName="s", ShardCount=1)
    kinesis.put_record(StreamName="s", PartitionKey="k", Data=b"before")
    kinesis.split_shard(StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))

    shard_ids = {
        kinesis.put_record(StreamName="s", PartitionKey=f"k{i}", Data=b"after")["ShardId"] for i in range(20)
    }

    assert shard_ids == {"shardId-000000000001", "shardId-000000000002"}
    iterator = kinesis.get_shard_iterator(
        StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]] == [b"before"]


# --- Kinesis under concurrent callers (the ingest workers put while the event source mapping reads) ----
STREAM = "events"


@pytest.fixture
def fast_thread_switching():
    """Switch threads every 10 µs instead of every 5 ms, so the interleavings that a busy moto server
    sees now and then happen in every run."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


class _Producers:
    """Threads putting uniquely numbered records; remembers where each acknowledged record was stored."""

    def __init__(self) -> None:
        self.acked: dict[bytes, tuple[str, int]] = {}
        self.errors: list[str] = []
        self.first_ack = threading.Event()
        self._lock = threading.Lock()

    def put_records(self, name: str, calls: int, per_call: int) -> Callable[[], None]:
        kinesis = boto3.client("kinesis", region_name="us-east-1")

        def run() -> None:
            for call in range(calls):
                records: list[dict[str, Any]] = [
                    {"Data": f"{name}-{call}-{n}".encode(), "PartitionKey": f"{name}-{n % 7}"}
                    for n in range(per_call)
                ]
                answer = kinesis.put_records(StreamName=STREAM, Records=records)
                self._ack([(r["Data"], a) for r, a in zip(records, answer["Records"], strict=True)])

        return run

    def put_record(self, name: str, calls: int) -> Callable[[], None]:
        kinesis = boto3.client("kinesis", region_name="us-east-1")

        def run() -> None:
            for call in range(calls):
                data = f"{name}-{call}".encode()
                self._ack([(data, kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey=name))])

        return run

    def _ack(self, answers: list[tuple[bytes, dict]]) -> None:
        with self._lock:
            for data, answer in answers:
                if "SequenceNumber" in answer:
                    self.acked[data] = (answer["ShardId"], int(answer["SequenceNumber"]))
        self.first_ack.set()


def _tail(shard_id: str, stop: threading.Event, errors: list[str]) -> Callable[[], None]:
    """A consumer reading one shard from TRIM_HORIZON as the event source mapping does, until `stop`."""
    kinesis = boto3.client("kinesis", region_name="us-east-1")

    def run() -> None:
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while not stop.is_set():
            try:
                iterator = kinesis.get_records(ShardIterator=iterator, Limit=1000)["NextShardIterator"]
            except Exception as error:  # what the reader would have received as a 500
                errors.append(repr(error))

    return run


def _run(targets: list[Callable[[], None]], errors: list[str]) -> list[threading.Thread]:
    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    return threads


def _stored(kinesis) -> dict[bytes, list[tuple[str, int]]]:
    """Every record of every shard, read from TRIM_HORIZON: data -> [(shard id, sequence number), ...]."""
    stored: dict[bytes, list[tuple[str, int]]] = {}
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for record in answer["Records"]:
                stored.setdefault(record["Data"], []).append(
                    (shard["ShardId"], int(record["SequenceNumber"]))
                )
            if not answer["Records"]:
                break
            iterator = answer["NextShardIterator"]
    return stored


def test_concurrent_writers_and_readers_lose_no_acknowledged_record(patched_aws, fast_thread_switching):
    """Every record a PutRecords or PutRecord call acknowledged is in the stream exactly once, at the
    shard and sequence number its acknowledgement named, and concurrent GetRecords calls never fail."""
    # Given a two-shard stream, six PutRecords writers, two PutRecord writers and a reader per shard
    kinesis = patched_aws["kinesis"]
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    producers, stop = _Producers(), threading.Event()
    read_errors: list[str] = []
    writers = [producers.put_records(f"batch{n}", calls=10, per_call=100) for n in range(6)]
    writers += [producers.put_record(f"single{n}", calls=200) for n in range(2)]
    readers = [_tail(f"shardId-00000000000{n}", stop, read_errors) for n in range(2)]

    # When they all run at once
    reading = _run(readers, read_errors)
    for thread in _run(writers, producers.errors):
        thread.join()
    stop.set()
    for thread in reading:
        thread.join()

    # Then every call succeeded, and the stream holds exactly the acknowledged records, each once
    assert producers.errors == [] and read_errors == []
    assert len(producers.acked) == 6 * 10 * 100 + 2 * 200
    assert _stored(kinesis) == {data: [where] for data, where in producers.acked.items()}


def test_a_write_that_arrives_during_a_split_is_stored_where_its_acknowledgement_says(
    patched_aws, monkeypatch
):
    """A put while a split is under way waits for the split and lands in an open child; it is never
    numbered against the parent mid-split (which then moves it elsewhere) and never lost."""
    # Given a one-shard stream with one record, and a split paused while it creates the child shards
    kinesis = patched_aws["kinesis"]
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    kinesis.put_record(StreamName=STREAM, Data=b"before", PartitionKey="k")
    creating_children, resume = threading.Event(), threading.Event()
    create_shard = Shard.__init__

    def paused_create_shard(self, *args, **kwargs):
        creating_children.set()
        resume.wait(timeout=30)
        create_shard(self, *args, **kwargs)

    monkeypatch.setattr(Shard, "__init__", paused_create_shard)
    errors: list[str] = []
    [splitting] = _run(
        [
            lambda: kinesis.split_shard(
                StreamName=STREAM, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127)
            )
        ],
        errors,
    )
    assert creating_children.wait(timeout=30)

    # When a producer writes meanwhile (given time to finish if nothing holds it back), then the split ends
    producers = _Producers()
    [writing] = _run([producers.put_record("during", calls=1)], producers.errors)
    writing.join(timeout=1)
    resume.set()
    splitting.join()
    writing.join()

    # Then the record went to a child, at the sequence number its acknowledgement named, and the parent
    # still holds exactly its own record
    assert errors == [] and producers.errors == []
    assert producers.acked[b"during-0"][0] in {"shardId-000000000001", "shardId-000000000002"}
    assert _stored(kinesis) == {
        b"before": [("shardId-000000000000", 1)],
        b"during-0": [producers.acked[b"during-0"]],
    }


def test_get_records_from_the_iterators_position_returns_what_moto_returns_scanning_the_shard(patched_aws):
    """Patch 7: GetRecords reads from the iterator's position in a densely numbered shard; the answer is
    moto's own (records, next position, millis behind latest) for every position and limit."""
    kinesis = patched_aws["kinesis"]
    kinesis.create_stream(StreamName="reads", ShardCount=1)
    for i in range(40):
        kinesis.put_record(StreamName="reads", PartitionKey=f"p{i % 3}", Data=f"r{i}".encode())
    from moto.backends import get_backend

    shard = next(iter(get_backend("kinesis")["123456789012"]["us-east-1"].streams["reads"].shards.values()))
    scan = moto_patches._ORIGINALS["shard_get_records"]
    for after in (0, 1, 17, 39, 40, 99):
        for limit in (1, 5, 40, 10_000):
            fast = shard.get_records(str(after), limit)
            slow = scan(shard, str(after), limit)
            assert [r.sequence_number for r in fast[0]] == [r.sequence_number for r in slow[0]], (
                after,
                limit,
            )
            assert fast[1:] == slow[1:], (after, limit)
    # And the shard's sequence-number range, read in O(1), is moto's
    assert (shard.get_min_sequence_number(), shard.get_max_sequence_number()) == (1, 40)
    # And through the API: an iterator after record 17 yields 18.. in order
    iterator = kinesis.get_shard_iterator(
        StreamName="reads",
        ShardId=shard.shard_id,
        ShardIteratorType="AFTER_SEQUENCE_NUMBER",
        StartingSequenceNumber="17",
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator, Limit=5)["Records"]
    assert [r["Data"] for r in records] == [f"r{i}".encode() for i in range(17, 22)]


def test_get_records_falls_back_to_moto_on_a_shard_with_a_gap(patched_aws):
    kinesis = patched_aws["kinesis"]
    kinesis.create_stream(StreamName="gappy", ShardCount=1)
    for i in range(6):
        kinesis.put_record(StreamName="gappy", PartitionKey="p", Data=f"r{i}".encode())
    from moto.backends import get_backend

    shard = next(iter(get_backend("kinesis")["123456789012"]["us-east-1"].streams["gappy"].shards.values()))
    del shard.records[3]  # not something moto does today; the fast path must not assume it away
    records, last, _ = shard.get_records("1", 10)
    assert [r.sequence_number for r in records] == [2, 4, 5, 6] and last == 6


def test_cloudwatch_keeps_the_mirrored_metrics_as_one_statistic_set_per_second_and_drops_old_ones(
    patched_aws,
):
    """A pipeline left running must not grow moto's memory by a datum per metric per request forever."""
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    backend = cloudwatch_backends["123456789012"]["us-east-1"]
    now = float(int(time.time()))  # a whole second: the mirror's sets are per second
    store = MetricStore(clock=lambda: now, mirror=cloudwatch)
    # Given 100 latencies in one second and one in the next, mirrored
    for n in range(100):
        store.put("NS", "Latency", {"fn": "f"}, float(n), "Milliseconds", timestamp=now - 10)
    store.put("NS", "Latency", {"fn": "f"}, 500.0, "Milliseconds", timestamp=now - 9)
    store.flush_mirror()
    # Then moto holds two data, and CloudWatch's statistics over them are those of the 101 values
    assert len(backend.metric_data) == 2
    (point,) = cloudwatch.get_metric_statistics(
        Namespace="NS",
        MetricName="Latency",
        Dimensions=[{"Name": "fn", "Value": "f"}],
        StartTime=datetime.fromtimestamp(now - 60, UTC),
        EndTime=datetime.fromtimestamp(now, UTC),
        Period=60,
        Statistics=["SampleCount", "Sum", "Maximum", "Minimum"],
    )["Datapoints"]
    assert (point["SampleCount"], point["Sum"], point["Minimum"], point["Maximum"]) == (
        101,
        sum(range(100)) + 500.0,
        0.0,
        500.0,
    )
    # And data older than the retention are dropped
    moto_patches.trim_metric_data(backend, now + RETENTION_S - 9.5)
    assert len(backend.metric_data) == 1
    moto_patches.trim_metric_data(backend, now + RETENTION_S)
    assert backend.metric_data == []
