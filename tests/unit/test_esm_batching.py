"""Event source mapping rules: batch size, batching window, and the event shape Lambda delivers."""

from __future__ import annotations

import base64

import boto3
import pytest
from moto import mock_aws

from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import FUNCTION_ARN, FakeClock, ScriptedFunction, create_stream, put

STREAM = "events"


@pytest.fixture
def kinesis():
    with mock_aws():
        yield boto3.client("kinesis", region_name="us-east-1")


def test_batch_size_caps_records_per_invocation(kinesis):
    """Rule: BatchSize is the largest number of records in one invocation."""
    # Given a stream holding 7 records and a mapping with BatchSize 3
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, f"user-{i}", f"e{i}") for i in range(7)]
    fn = ScriptedFunction()
    poller = EsmPoller(kinesis, EsmConfig(arn, FUNCTION_ARN, batch_size=3), invoke=fn)

    # When the poller drains the shard
    poller.run_until_idle()

    # Then the function saw batches of 3, 3 and 1, in stream order, and the shard is checkpointed
    assert fn.all_sequence_numbers() == [seqs[0:3], seqs[3:6], seqs[6:7]]
    assert poller.checkpoints() == {"shardId-000000000000": seqs[-1]}


def test_event_has_exactly_the_shape_lambda_delivers(kinesis):
    """Rule: the event is Records[] with kinesis{...}, eventSource, eventID "shardId:seq", and so on."""
    # Given one record on the stream
    arn = create_stream(kinesis, STREAM)
    seq = put(kinesis, STREAM, "user-1", b'{"a":1}')
    fn = ScriptedFunction()
    role = "arn:aws:iam::123456789012:role/process-role"
    poller = EsmPoller(kinesis, EsmConfig(arn, FUNCTION_ARN), invoke=fn, invoke_identity_arn=role)

    # When it is delivered
    poller.poll_once()

    # Then the record carries every field of AWS's Kinesis event, with base64 data
    (record,) = fn.calls[0]["Records"]
    assert set(fn.calls[0]) == {"Records"}
    assert set(record) == {
        "kinesis",
        "eventSource",
        "eventVersion",
        "eventID",
        "eventName",
        "invokeIdentityArn",
        "awsRegion",
        "eventSourceARN",
    }
    assert set(record["kinesis"]) == {
        "kinesisSchemaVersion",
        "partitionKey",
        "sequenceNumber",
        "data",
        "approximateArrivalTimestamp",
    }
    assert record["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert record["kinesis"]["partitionKey"] == "user-1"
    assert record["kinesis"]["sequenceNumber"] == str(seq)
    assert base64.b64decode(record["kinesis"]["data"]) == b'{"a":1}'
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventVersion"] == "1.0"
    assert record["eventID"] == f"shardId-000000000000:{seq}"
    assert record["eventName"] == "aws:kinesis:record"
    assert record["invokeIdentityArn"] == role
    assert record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == arn


def test_batching_window_holds_a_partial_batch_until_the_window_elapses(kinesis):
    """Rule: with MaximumBatchingWindowInSeconds, a batch waits until full or until the window ends."""
    # Given a 10-record batch size, a 5 s window and 2 records on the stream
    arn = create_stream(kinesis, STREAM)
    clock = FakeClock()
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(2)]
    fn = ScriptedFunction()
    config = EsmConfig(arn, FUNCTION_ARN, batch_size=10, maximum_batching_window_s=5)
    poller = EsmPoller(kinesis, config, invoke=fn, clock=clock)

    # When polled before the window has elapsed
    poller.poll_once()
    clock.advance(4.9)
    seqs.append(put(kinesis, STREAM, "u", "late"))
    poller.poll_once()

    # Then nothing was invoked yet
    assert fn.calls == []

    # When the window elapses
    clock.advance(0.1)
    poller.poll_once()

    # Then all records gathered so far go in one batch
    assert fn.all_sequence_numbers() == [seqs]


def test_batching_window_does_not_delay_a_full_batch(kinesis):
    """Rule: a batch that reaches BatchSize is invoked at once, whatever the window."""
    # Given a batch size of 3, a 300 s window and 4 records
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(4)]
    fn = ScriptedFunction()
    config = EsmConfig(arn, FUNCTION_ARN, batch_size=3, maximum_batching_window_s=300)
    poller = EsmPoller(kinesis, config, invoke=fn, clock=FakeClock())

    # When polled without the clock moving
    poller.run_until_idle()

    # Then the full batch went out and the lone remainder waits for its window
    assert fn.all_sequence_numbers() == [seqs[:3]]
    assert poller.buffered_records() == 1


def test_batch_is_cut_before_the_six_megabyte_invoke_limit(kinesis):
    """Rule: a batch never exceeds Lambda's 6 MB synchronous payload limit."""
    # Given five records of 1 MB each (base64 makes each ~1.33 MB in the event)
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", b"x" * 1_000_000) for _ in range(5)]
    fn = ScriptedFunction()
    poller = EsmPoller(kinesis, EsmConfig(arn, FUNCTION_ARN, batch_size=100), invoke=fn)

    # When drained
    poller.run_until_idle()

    # Then no batch carried more than 4 of them (4 x 1.33 MB < 6 MB < 5 x 1.33 MB)
    assert fn.all_sequence_numbers() == [seqs[:4], seqs[4:]]


def test_latest_starting_position_skips_records_already_in_the_stream(kinesis):
    """Rule: StartingPosition LATEST delivers only records written after the mapping started."""
    # Given a record written before the mapping starts
    arn = create_stream(kinesis, STREAM)
    put(kinesis, STREAM, "u", "old")
    fn = ScriptedFunction()
    poller = EsmPoller(kinesis, EsmConfig(arn, FUNCTION_ARN, starting_position="LATEST"), invoke=fn)
    poller.poll_once()

    # When a new record arrives
    new = put(kinesis, STREAM, "u", "new")
    poller.run_until_idle()

    # Then only the new one is delivered
    assert fn.all_sequence_numbers() == [[new]]


def test_disabled_mapping_never_invokes(kinesis):
    """Rule: a mapping in state Disabled does not poll."""
    arn = create_stream(kinesis, STREAM)
    put(kinesis, STREAM, "u", "e")
    fn = ScriptedFunction()
    config = EsmConfig.from_api(
        {"EventSourceArn": arn, "FunctionArn": FUNCTION_ARN, "State": "Disabled", "BatchSize": 5}
    )
    poller = EsmPoller(kinesis, config, invoke=fn)

    poller.run_until_idle()

    assert fn.calls == []


def test_config_from_api_reads_every_setting():
    """EsmConfig.from_api keeps each ListEventSourceMappings setting under its own name."""
    mapping = {
        "UUID": "u-1",
        "EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/events",
        "FunctionArn": FUNCTION_ARN,
        "BatchSize": 250,
        "MaximumBatchingWindowInSeconds": 2,
        "StartingPosition": "TRIM_HORIZON",
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": 4,
        "MaximumRecordAgeInSeconds": 600,
        "ParallelizationFactor": 3,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:q"}},
        "State": "Enabled",
    }

    config = EsmConfig.from_api(mapping)

    assert config.batch_size == 250
    assert config.maximum_batching_window_s == 2
    assert config.bisect_batch_on_function_error is True
    assert config.maximum_retry_attempts == 4
    assert config.maximum_record_age_s == 600
    assert config.parallelization_factor == 3
    assert config.report_batch_item_failures is True
    assert config.on_failure_destination == "arn:aws:sqs:us-east-1:123456789012:q"
    assert config.stream_name == "events"
    assert config.enabled is True


def test_filter_criteria_drop_records_whose_data_matches_no_pattern(kinesis):
    """Rule: with FilterCriteria (on the data key), records matching no pattern are discarded without
    an invocation and checkpointed; patterns are ORed."""
    # Given clicks with and without attribution, and a non-JSON record, on the stream
    import json

    arn = create_stream(kinesis, STREAM)
    attributed = put(
        kinesis, STREAM, "u", json.dumps({"event_type": "click", "attribution": {"variant": "a"}})
    )
    put(kinesis, STREAM, "u", json.dumps({"event_type": "click"}))
    put(kinesis, STREAM, "u", b"not json")
    purchase = put(kinesis, STREAM, "u", json.dumps({"event_type": "purchase", "price": 30}))
    put(kinesis, STREAM, "u", json.dumps({"event_type": "purchase", "price": 5}))
    patterns = [
        {"data": {"attribution": {"variant": [{"exists": True}]}}},
        {"data": {"event_type": ["purchase"], "price": [{"numeric": [">=", 10]}]}},
    ]
    mapping = {
        "EventSourceArn": arn,
        "FunctionArn": FUNCTION_ARN,
        "BatchSize": 10,
        "FilterCriteria": {"Filters": [{"Pattern": json.dumps(p)} for p in patterns]},
    }
    fn = ScriptedFunction()
    poller = EsmPoller(kinesis, EsmConfig.from_api(mapping), invoke=fn)

    # When drained
    poller.run_until_idle()

    # Then only the matching records were delivered, and the shard is checkpointed past all five
    assert fn.all_sequence_numbers() == [[attributed, purchase]]
    assert poller.checkpoints() == {"shardId-000000000000": purchase + 1}
