"""Event source mapping rules across shards: a parent shard is finished before its children are read,
and ParallelizationFactor processes concurrent batches per shard while keeping per-key order."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from local_emulator import moto_patches
from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import FUNCTION_ARN, ScriptedFunction, create_stream, function_error, put

STREAM = "events"


@pytest.fixture
def kinesis():
    # moto_patches: writes after a reshard go to the open children and the parent keeps its records,
    # as in AWS (moto alone keeps writing to the closed parent).
    with mock_aws(), moto_patches.patched():
        yield boto3.client("kinesis", region_name="us-east-1")


def _shard_of(record):
    return record["eventID"].split(":")[0]


def test_child_shards_are_processed_only_after_the_parent_is_finished(kinesis):
    """Rule: after a reshard, Lambda finishes the parent shard before it reads the children."""
    # Given records on a one-shard stream, and a function that fails its first two invocations
    arn = create_stream(kinesis, STREAM)
    for i in range(3):
        put(kinesis, STREAM, f"user-{i}", f"before-{i}")
    fn = ScriptedFunction().respond(function_error(), function_error())
    poller = EsmPoller(kinesis, EsmConfig(arn, FUNCTION_ARN, batch_size=10), invoke=fn)
    poller.poll_once()  # the parent's batch is read and fails once

    # When the shard is split and new records land in the children while the parent is unfinished
    parent = "shardId-000000000000"
    kinesis.split_shard(StreamName=STREAM, ShardToSplit=parent, NewStartingHashKey=str(2**127))
    for i in range(6):
        put(kinesis, STREAM, f"user-{i}", f"after-{i}")
    poller.run_until_idle()

    # Then every invocation of the parent precedes every invocation of a child
    shards = [_shard_of(call["Records"][0]) for call in fn.calls]
    assert shards[:3] == [parent, parent, parent]
    assert parent not in shards[3:]
    assert set(shards[3:]) == {"shardId-000000000001", "shardId-000000000002"}
    assert poller.is_idle()


def test_parallelization_factor_keeps_order_per_partition_key(kinesis):
    """Rule: with ParallelizationFactor > 1, records of one partition key are still delivered in order,
    one batch at a time, while other keys are processed concurrently."""
    # Given interleaved records of 6 users and a parallelization factor of 3
    arn = create_stream(kinesis, STREAM)
    written: dict[str, list[int]] = {}
    for i in range(30):
        key = f"user-{i % 6}"
        written.setdefault(key, []).append(put(kinesis, STREAM, key, f"e{i}"))
    fn = ScriptedFunction()
    config = EsmConfig(arn, FUNCTION_ARN, batch_size=4, parallelization_factor=3)
    poller = EsmPoller(kinesis, config, invoke=fn)

    # When one polling round runs
    first_round = poller.poll_once()

    # Then more than one batch of the same shard was in flight in that round
    assert first_round > 1

    # When drained
    poller.run_until_idle()

    # Then each key's records were delivered exactly once and in stream order
    seen: dict[str, list[int]] = {}
    for call in fn.calls:
        for record in call["Records"]:
            seen.setdefault(record["kinesis"]["partitionKey"], []).append(
                int(record["kinesis"]["sequenceNumber"])
            )
    assert seen == written


def test_parallelization_factor_lets_other_keys_pass_a_failing_key(kinesis):
    """Rule: with ParallelizationFactor > 1 a failing key blocks only its own lane, never its own order."""
    # Given two keys that hash to different lanes, one of them always failing with infinite retries
    arn = create_stream(kinesis, STREAM)
    config = EsmConfig(arn, FUNCTION_ARN, batch_size=10, parallelization_factor=2)
    lane_probe = EsmPoller(kinesis, config, invoke=ScriptedFunction())
    keys = [f"user-{i}" for i in range(20)]
    bad_key = keys[0]
    good_key = next(k for k in keys if lane_probe._lane_of(k) != lane_probe._lane_of(bad_key))
    bad = [put(kinesis, STREAM, bad_key, f"b{i}") for i in range(2)]
    good = [put(kinesis, STREAM, good_key, f"g{i}") for i in range(2)]

    def respond(event):
        failing = any(r["kinesis"]["partitionKey"] == bad_key for r in event["Records"])
        return function_error()(event) if failing else (None, None)

    fn = ScriptedFunction(default=respond)
    poller = EsmPoller(kinesis, config, invoke=fn)

    # When polled a few rounds
    for _ in range(4):
        poller.poll_once()

    # Then the good key was processed once, the bad key only retried, and the shard checkpoint
    # stays before the bad key's first record
    good_calls = [c for c in fn.calls if c["Records"][0]["kinesis"]["partitionKey"] == good_key]
    assert [[int(r["kinesis"]["sequenceNumber"]) for r in c["Records"]] for c in good_calls] == [good]
    assert poller.checkpoints()["shardId-000000000000"] is None
    assert all(
        int(c["Records"][0]["kinesis"]["sequenceNumber"]) == bad[0] for c in fn.calls if c not in good_calls
    )


def test_parallelization_factor_lanes_run_concurrently_with_an_executor(kinesis):
    """Rule: ParallelizationFactor processes several batches of one shard at the same time."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    # Given two keys in different lanes, and a function that only returns once two calls are in flight
    arn = create_stream(kinesis, STREAM)
    config = EsmConfig(arn, FUNCTION_ARN, batch_size=10, parallelization_factor=2)
    probe = EsmPoller(kinesis, config, invoke=ScriptedFunction())
    first = "user-0"
    second = next(f"user-{i}" for i in range(1, 50) if probe._lane_of(f"user-{i}") != probe._lane_of(first))
    put(kinesis, STREAM, first, "a")
    put(kinesis, STREAM, second, "b")
    both_in_flight = threading.Barrier(2, timeout=30)

    def invoke(event):
        both_in_flight.wait()  # raises BrokenBarrierError (a function error) if calls were sequential
        return None, None

    with ThreadPoolExecutor(max_workers=2) as executor:
        poller = EsmPoller(kinesis, config, invoke=invoke, executor=executor)

        # When one round runs
        invoked = poller.poll_once()

    # Then both lanes were invoked at once and both batches succeeded
    assert invoked == 2
    assert poller.is_idle()
