"""Event source mapping rules for ReportBatchItemFailures (AWS: "Configuring partial batch response
with Kinesis Data Streams and Lambda", success and failure conditions)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import (
    FUNCTION_ARN,
    ON_FAILURE_ARN,
    ScriptedFunction,
    create_stream,
    fail_from,
    put,
)

STREAM = "events"


@pytest.fixture
def kinesis():
    with mock_aws():
        yield boto3.client("kinesis", region_name="us-east-1")


def _poller(kinesis, arn, fn, **settings):
    config = EsmConfig(
        arn,
        FUNCTION_ARN,
        report_batch_item_failures=True,
        on_failure_destination=ON_FAILURE_ARN,
        **settings,
    )
    return EsmPoller(kinesis, config, invoke=fn, send_on_failure=fn.on_failure.append)


def test_checkpoint_at_lowest_reported_failed_sequence_number(kinesis):
    """Rule: with several batchItemFailures, Lambda checkpoints at the lowest sequence number and
    retries every record from there."""
    # Given 5 records, and a function that reports records 4 and 2 (out of order) as failed once
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(5)]
    report = {"batchItemFailures": [{"itemIdentifier": str(seqs[3])}, {"itemIdentifier": str(seqs[1])}]}
    fn = ScriptedFunction().respond(lambda event: (report, None))
    poller = _poller(kinesis, arn, fn, batch_size=10)

    # When the first invocation returns the partial failure
    poller.poll_once()

    # Then records before the lowest failure are checkpointed
    assert poller.checkpoints() == {"shardId-000000000000": seqs[0]}

    # When the poller goes on
    poller.run_until_idle()

    # Then the retry starts exactly at the lowest failed record and the shard completes
    assert fn.all_sequence_numbers() == [seqs, seqs[1:]]
    assert poller.checkpoints() == {"shardId-000000000000": seqs[-1]}
    assert fn.on_failure == []


def test_sequence_numbers_are_compared_as_integers_not_strings(kinesis):
    """Rule: the lowest failed sequence number is the numerically lowest ("9" < "10", unlike strings)."""
    # Given 12 records (moto numbers them 1..12) and failures reported at 10 and 9
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(12)]
    assert seqs[8:10] == [9, 10]
    report = {"batchItemFailures": [{"itemIdentifier": "10"}, {"itemIdentifier": "9"}]}
    fn = ScriptedFunction().respond(lambda event: (report, None))
    poller = _poller(kinesis, arn, fn, batch_size=100)

    # When drained
    poller.run_until_idle()

    # Then the retry starts at 9, not at 10
    assert fn.sequence_numbers(1)[0] == 9


@pytest.mark.parametrize(
    "response",
    [
        None,
        "",
        {},
        {"batchItemFailures": []},
        {"batchItemFailures": None},
        b"null",
        '{"batchItemFailures": []}',
    ],
    ids=["null-response", "empty-response", "empty-object", "empty-list", "null-list", "null-json", "json"],
)
def test_empty_or_null_batch_item_failures_means_success(kinesis, response):
    """Rule: an empty or null batchItemFailures list, or an empty or null response, is complete success."""
    # Given 3 records and a function returning the response under test
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(3)]
    fn = ScriptedFunction(default=lambda event: (response, None))
    poller = _poller(kinesis, arn, fn, batch_size=10, maximum_retry_attempts=1)

    # When drained
    poller.run_until_idle()

    # Then one invocation checkpointed the whole batch: nothing was retried or discarded
    assert fn.all_sequence_numbers() == [seqs]
    assert poller.checkpoints() == {"shardId-000000000000": seqs[-1]}
    assert fn.on_failure == []


@pytest.mark.parametrize(
    "failures",
    [
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"itemId": "1"}],
        [{"itemIdentifier": "999"}],
        [{"itemIdentifier": "not-a-number"}],
        ["1"],
    ],
    ids=["empty-string", "null", "bad-key-name", "not-in-batch", "not-a-sequence-number", "not-an-object"],
)
def test_malformed_item_identifier_fails_the_whole_batch(kinesis, failures):
    """Rule: an empty, null, badly named or unknown itemIdentifier makes the whole batch a failure."""
    # Given 3 records, no retries, and a function whose first answer holds a malformed identifier
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(3)]
    fn = ScriptedFunction().respond(lambda event: ({"batchItemFailures": failures}, None))
    poller = _poller(kinesis, arn, fn, batch_size=10, maximum_retry_attempts=0)

    # When drained
    poller.run_until_idle()

    # Then no record of the batch was checkpointed as processed: the whole batch went to on-failure
    assert fn.all_sequence_numbers() == [seqs]
    (message,) = fn.on_failure
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == str(seqs[0])
    assert message["KinesisBatchInfo"]["batchSize"] == 3


def test_invalid_json_response_fails_the_whole_batch(kinesis):
    """Rule: an invalid JSON response is a complete failure, retried from the start of the batch."""
    # Given 2 records and a function that first returns invalid JSON, then succeeds
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(2)]
    fn = ScriptedFunction().respond(lambda event: (b"{not json", None))
    poller = _poller(kinesis, arn, fn, batch_size=10)

    # When drained
    poller.run_until_idle()

    # Then the same batch was retried in full
    assert fn.all_sequence_numbers() == [seqs, seqs]


def test_batch_item_failures_are_ignored_without_report_batch_item_failures(kinesis):
    """Rule: without ReportBatchItemFailures in FunctionResponseTypes, a normal return is success."""
    # Given a mapping without the response type and a function that reports a failure
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(3)]
    fn = ScriptedFunction(default=fail_from(1))
    poller = EsmPoller(kinesis, EsmConfig(arn, FUNCTION_ARN, batch_size=10), invoke=fn)

    # When drained
    poller.run_until_idle()

    # Then the batch was checkpointed after one invocation
    assert fn.all_sequence_numbers() == [seqs]
    assert poller.checkpoints() == {"shardId-000000000000": seqs[-1]}
