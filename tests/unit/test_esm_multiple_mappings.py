"""Event source mapping rules for several mappings on one stream (streamrec's hot path and its two
aggregate branches) and for the filtered mapping: each mapping reads every shard on its own, with its own
checkpoints, batch size, batching window, retries and filter."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import FakeClock, ScriptedFunction, create_stream, function_error, put

STREAM = "events"
SHARD = "shardId-000000000000"
HOT = "arn:aws:lambda:us-east-1:123456789012:function:process"
ITEMS = "arn:aws:lambda:us-east-1:123456789012:function:items"
EXPERIMENTS = "arn:aws:lambda:us-east-1:123456789012:function:experiments"
ATTRIBUTED = {"Filters": [{"Pattern": '{"data": {"attribution": {"variant": [{"exists": true}]}}}'}]}


@pytest.fixture
def kinesis():
    with mock_aws():
        yield boto3.client("kinesis", region_name="us-east-1")


def _event(i: int, attributed: bool) -> str:
    event: dict[str, object] = {"event_id": f"e{i}", "user_id": f"u{i % 3}", "event_type": "click"}
    if attributed:
        event["attribution"] = {"request_id": f"r{i}", "variant": "control"}
    return json.dumps(event)


def _mapping(arn: str, function_arn: str, **settings: object) -> EsmConfig:
    return EsmConfig.from_api({"EventSourceArn": arn, "FunctionArn": function_arn, **settings})


def test_three_mappings_on_one_stream_each_deliver_every_record_with_their_own_settings(kinesis):
    # Given six records, every other one attributed, and the three mappings of the stack on the stream
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, f"u{i % 3}", _event(i, attributed=i % 2 == 0)) for i in range(6)]
    clock = FakeClock()
    hot, items, experiments = ScriptedFunction(), ScriptedFunction(), ScriptedFunction()
    pollers = {
        "hot": EsmPoller(kinesis, _mapping(arn, HOT, BatchSize=4), invoke=hot, clock=clock),
        "items": EsmPoller(
            kinesis,
            _mapping(arn, ITEMS, BatchSize=100, MaximumBatchingWindowInSeconds=5),
            invoke=items,
            clock=clock,
        ),
        "experiments": EsmPoller(
            kinesis,
            _mapping(arn, EXPERIMENTS, BatchSize=2, FilterCriteria=ATTRIBUTED),
            invoke=experiments,
            clock=clock,
        ),
    }

    # When each mapping polls (the items branch first inside its batching window, then after it)
    for poller in pollers.values():
        poller.run_until_idle()
    assert items.calls == [] and pollers["items"].checkpoints() == {SHARD: None}
    clock.advance(5)
    pollers["items"].run_until_idle()

    # Then each function got every record it is meant to get, in batches of its own size
    assert hot.all_sequence_numbers() == [seqs[0:4], seqs[4:6]]
    assert items.all_sequence_numbers() == [seqs]
    assert experiments.all_sequence_numbers() == [[seqs[0], seqs[2]], [seqs[4]]]
    # And every mapping checkpointed the whole shard, the filtered one past the records it skipped
    for poller in pollers.values():
        assert poller.checkpoints() == {SHARD: seqs[-1]}


def test_a_failing_mapping_holds_back_only_itself(kinesis):
    # Given a branch whose function fails every batch, retried at most twice, next to the hot path
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", _event(i, attributed=True)) for i in range(3)]
    failing = ScriptedFunction(default=function_error())
    on_failure: list[dict] = []
    branch = EsmPoller(
        kinesis,
        _mapping(
            arn,
            ITEMS,
            BatchSize=10,
            MaximumRetryAttempts=2,
            DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:on-failure"}},
        ),
        invoke=failing,
        send_on_failure=on_failure.append,
    )
    hot_fn = ScriptedFunction()
    hot = EsmPoller(kinesis, _mapping(arn, HOT, BatchSize=10), invoke=hot_fn)

    # When the branch has failed once and the hot path polls
    branch.poll_once()
    hot.run_until_idle()

    # Then the hot path is done while the branch still holds the batch for its retries
    assert hot.checkpoints() == {SHARD: seqs[-1]}
    assert branch.checkpoints() == {SHARD: None} and not branch.is_idle()
    # And once its retries are exhausted the branch's batch goes to its destination, naming its function
    branch.run_until_idle()
    assert len(failing.calls) == 3
    [message] = on_failure
    assert message["requestContext"]["functionArn"] == ITEMS
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == str(seqs[0])
    assert branch.checkpoints() == {SHARD: seqs[-1]}
    assert len(hot_fn.calls) == 1


def test_the_filter_applies_before_batching_so_batch_size_counts_matching_records_only(kinesis):
    # Given ten records of which every other one is attributed, and a filtered mapping of BatchSize 2
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", _event(i, attributed=i % 2 == 0)) for i in range(10)]
    fn = ScriptedFunction()
    poller = EsmPoller(kinesis, _mapping(arn, EXPERIMENTS, BatchSize=2, FilterCriteria=ATTRIBUTED), invoke=fn)

    # When it drains the shard
    poller.run_until_idle()

    # Then each invocation holds two matching records (never a matching one and a skipped one)
    assert fn.all_sequence_numbers() == [[seqs[0], seqs[2]], [seqs[4], seqs[6]], [seqs[8]]]
    assert poller.checkpoints() == {SHARD: seqs[-1]}


def test_the_batching_window_starts_with_the_first_matching_record(kinesis):
    # Given a filtered mapping with a 2 s window and a stream that first holds only unattributed records
    arn = create_stream(kinesis, STREAM)
    clock = FakeClock()
    fn = ScriptedFunction()
    config = _mapping(
        arn, EXPERIMENTS, BatchSize=10, MaximumBatchingWindowInSeconds=2, FilterCriteria=ATTRIBUTED
    )
    poller = EsmPoller(kinesis, config, invoke=fn, clock=clock)
    skipped = put(kinesis, STREAM, "u", _event(0, attributed=False))
    poller.run_until_idle()
    clock.advance(10)

    # When an attributed record arrives long after the skipped one
    matching = put(kinesis, STREAM, "u", _event(1, attributed=True))
    poller.run_until_idle()

    # Then it waits its own full window (skipped records never open one) ...
    assert fn.calls == []
    assert poller.checkpoints() == {SHARD: skipped}
    clock.advance(1.9)
    poller.run_until_idle()
    assert fn.calls == []
    # ... and is delivered once that window has passed
    clock.advance(0.1)
    poller.run_until_idle()
    assert fn.all_sequence_numbers() == [[matching]]


def test_a_tail_of_records_matching_no_filter_is_checkpointed_without_any_invocation(kinesis):
    # Given only unattributed records and a non-JSON one on the stream
    arn = create_stream(kinesis, STREAM)
    put(kinesis, STREAM, "u", _event(0, attributed=False))
    last = put(kinesis, STREAM, "u", b"\x00 not json")
    fn = ScriptedFunction()
    poller = EsmPoller(
        kinesis, _mapping(arn, EXPERIMENTS, BatchSize=10, FilterCriteria=ATTRIBUTED), invoke=fn
    )

    # When the filtered mapping drains the shard
    poller.run_until_idle()

    # Then the function never ran, and the mapping is idle and checkpointed at the last record
    assert fn.calls == []
    assert poller.is_idle()
    assert poller.checkpoints() == {SHARD: last}
