"""Event source mapping rules for failed batches: BisectBatchOnFunctionError, MaximumRetryAttempts,
MaximumRecordAgeInSeconds and the on-failure destination (AWS: "Retain discarded batch records for a
Kinesis Data Streams event source in Lambda")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import (
    FUNCTION_ARN,
    ON_FAILURE_ARN,
    FakeClock,
    ScriptedFunction,
    create_stream,
    fail_from,
    function_error,
    put,
)

STREAM = "events"
SHARD = "shardId-000000000000"


@pytest.fixture
def kinesis():
    with mock_aws():
        yield boto3.client("kinesis", region_name="us-east-1")


def _poller(kinesis, arn, fn, clock=None, **settings):
    config = EsmConfig(arn, FUNCTION_ARN, on_failure_destination=ON_FAILURE_ARN, **settings)
    kwargs = {"clock": clock} if clock else {}
    return EsmPoller(kinesis, config, invoke=fn, send_on_failure=fn.on_failure.append, **kwargs)


def _poison(bad_seq):
    """A function that raises whenever its batch holds `bad_seq`."""

    def respond(event):
        seqs = [int(r["kinesis"]["sequenceNumber"]) for r in event["Records"]]
        return function_error()(event) if bad_seq in seqs else (None, None)

    return respond


def test_bisect_on_function_error_splits_the_batch_in_two_halves(kinesis):
    """Rule: with BisectBatchOnFunctionError, a batch whose invocation fails is split in two halves,
    each retried, so the bad record is isolated and the good ones are processed."""
    # Given 4 records, the third one poison, bisect on and no retries allowed
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(4)]
    fn = ScriptedFunction(default=_poison(seqs[2]))
    poller = _poller(
        kinesis, arn, fn, batch_size=10, bisect_batch_on_function_error=True, maximum_retry_attempts=0
    )

    # When drained
    poller.run_until_idle()

    # Then the batch was halved, then the failing half halved again, down to the poison record
    assert fn.all_sequence_numbers() == [seqs, seqs[:2], seqs[2:], [seqs[2]], [seqs[3]]]
    # And only the poison record was discarded
    (message,) = fn.on_failure
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == str(seqs[2])
    assert message["KinesisBatchInfo"]["endSequenceNumber"] == str(seqs[2])
    assert poller.checkpoints() == {SHARD: seqs[-1]}


def test_bisect_with_batch_item_failures_splits_at_the_returned_sequence_number(kinesis):
    """Rule: with BisectBatchOnFunctionError and ReportBatchItemFailures, a partial failure splits the
    batch at the returned sequence number and only the remaining records are retried."""
    # Given 6 records and a function reporting the 4th as failed once
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(6)]
    fn = ScriptedFunction().respond(fail_from(seqs[3]))
    poller = _poller(
        kinesis,
        arn,
        fn,
        batch_size=10,
        bisect_batch_on_function_error=True,
        report_batch_item_failures=True,
    )

    # When drained
    poller.run_until_idle()

    # Then the second invocation holds exactly the records from the returned one to the batch's end
    assert fn.all_sequence_numbers() == [seqs, seqs[3:]]


def test_bisect_with_batch_item_failures_retries_only_the_original_batch_remainder(kinesis):
    """Rule: after a split at the returned sequence number, the retried part is the rest of the
    original batch, even when newer records arrived meanwhile."""
    # Given 3 records, a partial failure at the 2nd, and a 4th record written after the first invoke
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(3)]
    fn = ScriptedFunction().respond(fail_from(seqs[1]))
    poller = _poller(
        kinesis,
        arn,
        fn,
        batch_size=10,
        bisect_batch_on_function_error=True,
        report_batch_item_failures=True,
    )
    poller.poll_once()
    seqs.append(put(kinesis, STREAM, "u", "newer"))

    # When drained
    poller.run_until_idle()

    # Then the retry held only the remainder; the newer record came in its own batch afterwards
    assert fn.all_sequence_numbers() == [seqs[:3], seqs[1:3], seqs[3:]]


def test_retries_are_bounded_by_maximum_retry_attempts(kinesis):
    """Rule: MaximumRetryAttempts N means 1 + N invocations of a failing batch, then the records are
    discarded, reported to the on-failure destination, and the shard moves on."""
    # Given a failing first record, 2 retries allowed, then a good record behind it
    arn = create_stream(kinesis, STREAM)
    bad = put(kinesis, STREAM, "u", "bad")
    fn = ScriptedFunction(default=_poison(bad))
    poller = _poller(kinesis, arn, fn, batch_size=1, maximum_retry_attempts=2)
    good = put(kinesis, STREAM, "u", "good")

    # When drained
    poller.run_until_idle()

    # Then the bad record was tried 3 times, discarded, and the good one processed after it
    assert fn.all_sequence_numbers() == [[bad], [bad], [bad], [good]]
    (message,) = fn.on_failure
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert poller.checkpoints() == {SHARD: good}


def test_bisects_do_not_count_as_retries(kinesis):
    """Rule: splitting a batch does not consume the retry quota; with MaximumRetryAttempts 0 a poison
    record in a batch of 8 is still isolated by three bisects before being discarded."""
    # Given 8 records, the last poison, no retries allowed
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(8)]
    fn = ScriptedFunction(default=_poison(seqs[7]))
    poller = _poller(
        kinesis, arn, fn, batch_size=8, bisect_batch_on_function_error=True, maximum_retry_attempts=0
    )

    # When drained
    poller.run_until_idle()

    # Then every good record was processed and only the poison one discarded
    processed = {s for call in fn.all_sequence_numbers() if seqs[7] not in call for s in call}
    assert processed == set(seqs[:7])
    (message,) = fn.on_failure
    assert message["KinesisBatchInfo"]["batchSize"] == 1
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == str(seqs[7])
    # 8 -> 4 -> 2 -> 1: four invocations included the poison record, none of them a retry
    assert message["requestContext"]["approximateInvokeCount"] == 4


def test_without_bisect_a_failed_batch_is_retried_whole(kinesis):
    """Rule: without BisectBatchOnFunctionError the same batch is retried, then discarded as a whole."""
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(3)]
    fn = ScriptedFunction(default=function_error())
    poller = _poller(kinesis, arn, fn, batch_size=10, maximum_retry_attempts=1)

    poller.run_until_idle()

    assert fn.all_sequence_numbers() == [seqs, seqs]
    (message,) = fn.on_failure
    assert message["KinesisBatchInfo"]["batchSize"] == 3
    assert message["responseContext"]["functionError"] == "Unhandled"


def test_records_older_than_maximum_record_age_are_discarded_without_invoking(kinesis):
    """Rule: MaximumRecordAgeInSeconds discards records older than that before an invocation and
    reports them with condition RecordAgeExceeded."""
    # Given a record on the stream and a 60 s maximum age, read when already 61 s old
    arn = create_stream(kinesis, STREAM)
    old = put(kinesis, STREAM, "u", "old")
    clock = FakeClock(dt.datetime.now(dt.UTC).timestamp() + 61)
    fn = ScriptedFunction()
    poller = _poller(kinesis, arn, fn, clock=clock, maximum_record_age_s=60)

    # When polled
    poller.run_until_idle()

    # Then the function never saw it and the on-failure destination did
    assert fn.calls == []
    (message,) = fn.on_failure
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["requestContext"]["approximateInvokeCount"] == 0
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == str(old)
    assert poller.checkpoints() == {SHARD: old}


def test_record_age_stops_retrying_a_failing_batch(kinesis):
    """Rule: with infinite retries (-1), MaximumRecordAgeInSeconds is what ends a stuck shard."""
    # Given a failing record, infinite retries and a 60 s maximum age
    arn = create_stream(kinesis, STREAM)
    bad = put(kinesis, STREAM, "u", "bad")
    clock = FakeClock(dt.datetime.now(dt.UTC).timestamp())
    fn = ScriptedFunction(default=function_error())
    poller = _poller(kinesis, arn, fn, clock=clock, maximum_record_age_s=60, maximum_retry_attempts=-1)

    # When it fails three times, then time passes beyond the maximum age
    for _ in range(3):
        poller.poll_once()
    clock.advance(120)
    poller.run_until_idle()

    # Then it was discarded for its age after three invocations
    assert len(fn.calls) == 3
    (message,) = fn.on_failure
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert poller.checkpoints() == {SHARD: bad}


def test_on_failure_message_has_aws_shape(kinesis):
    """Rule: the on-failure destination receives requestContext, responseContext, version, timestamp
    and KinesisBatchInfo with the shard, sequence range, arrival times, size and stream ARN."""
    # Given two records that always fail, no retries
    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", f"e{i}") for i in range(2)]
    fn = ScriptedFunction(default=function_error())
    poller = _poller(kinesis, arn, fn, batch_size=10, maximum_retry_attempts=0)

    # When drained
    poller.run_until_idle()

    # Then the message matches AWS's documented invocation record
    (message,) = fn.on_failure
    assert set(message) == {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"}
    assert message["version"] == "1.0"
    context = message["requestContext"]
    assert set(context) == {"requestId", "functionArn", "condition", "approximateInvokeCount"}
    assert context["functionArn"] == FUNCTION_ARN
    assert context["condition"] == "RetryAttemptsExhausted"
    assert context["approximateInvokeCount"] == 1
    assert message["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    info = message["KinesisBatchInfo"]
    assert set(info) == {
        "shardId",
        "startSequenceNumber",
        "endSequenceNumber",
        "approximateArrivalOfFirstRecord",
        "approximateArrivalOfLastRecord",
        "batchSize",
        "streamArn",
    }
    assert info["shardId"] == SHARD
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (str(seqs[0]), str(seqs[1]))
    assert info["batchSize"] == 2
    assert info["streamArn"] == arn
    for stamp in (message["timestamp"], info["approximateArrivalOfFirstRecord"]):
        assert stamp.endswith("Z")
        dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")


def test_without_on_failure_destination_discarded_records_are_dropped(kinesis):
    """Rule: with no destination configured, exhausted records are skipped and nothing is sent."""
    arn = create_stream(kinesis, STREAM)
    bad = put(kinesis, STREAM, "u", "bad")
    fn = ScriptedFunction(default=function_error())
    config = EsmConfig(arn, FUNCTION_ARN, maximum_retry_attempts=0)
    poller = EsmPoller(kinesis, config, invoke=fn, send_on_failure=fn.on_failure.append)

    poller.run_until_idle()

    assert fn.on_failure == []
    assert poller.checkpoints() == {SHARD: bad}


def test_an_exception_in_invoke_is_a_function_error_not_a_crash(kinesis):
    """Rule: an invocation that cannot complete counts as a function error and is retried."""
    arn = create_stream(kinesis, STREAM)
    seq = put(kinesis, STREAM, "u", "e")
    calls = []

    def invoke(event):
        calls.append(event)
        if len(calls) == 1:
            raise ConnectionError("worker died")
        return None, None

    poller = EsmPoller(kinesis, EsmConfig(arn, FUNCTION_ARN), invoke=invoke)

    poller.run_until_idle()

    assert len(calls) == 2
    assert poller.checkpoints() == {SHARD: seq}


def test_in_process_handler_exception_is_a_function_error_the_poller_bisects(kinesis):
    """Rule: a handler that raises is an Unhandled function error, so bisect isolates its bad record."""
    # Given a real handler (in-process) that raises on one record
    from local_emulator.testing import handler_invoker

    arn = create_stream(kinesis, STREAM)
    seqs = [put(kinesis, STREAM, "u", data) for data in ("ok-1", "bad", "ok-2")]
    seen = []

    def handler(event, context):
        import base64

        payloads = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
        if b"bad" in payloads:
            raise ValueError("bad record")
        seen.extend(payloads)
        return {"batchItemFailures": []}

    sink: list[dict[str, Any]] = []
    config = EsmConfig(
        arn,
        FUNCTION_ARN,
        batch_size=10,
        bisect_batch_on_function_error=True,
        maximum_retry_attempts=0,
        on_failure_destination=ON_FAILURE_ARN,
    )
    poller = EsmPoller(kinesis, config, invoke=handler_invoker(handler), send_on_failure=sink.append)

    # When drained
    poller.run_until_idle()

    # Then the good records were processed and only the bad one was reported as discarded
    assert sorted(seen) == [b"ok-1", b"ok-2"]
    (message,) = sink
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == str(seqs[1])
    assert message["responseContext"]["functionError"] == "Unhandled"
