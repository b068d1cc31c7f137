"""Kinesis writer: one PutRecords call, then only failed entries retried with backoff within the budget."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError
from ingest.kinesis_writer import KinesisWriter
from streamrec_core.http import REASON_STREAM_UNAVAILABLE, REASON_THROTTLED

from tests.unit.ingest_fakes import (
    FakeClock,
    FakeKinesis,
    fail_all,
    fail_positions,
    internal_failure_entry,
    raise_error,
    store_all,
)

RECORDS = [(f'{{"n":{i}}}'.encode(), f"user-{i % 3}") for i in range(6)]


def writer(fake: FakeKinesis, clock: FakeClock, *, rand: float = 0.5) -> KinesisWriter:
    return KinesisWriter(fake, "events", sleep=clock.sleep, clock=clock, rand=lambda: rand)


def test_one_call_puts_every_record_when_nothing_fails() -> None:
    fake, clock = FakeKinesis(), FakeClock()
    result = writer(fake, clock).put(RECORDS, budget_seconds=5)
    assert result.failures == {} and result.calls == 1 and result.retried == 0
    assert len(fake.calls) == 1
    assert fake.calls[0]["StreamName"] == "events"
    assert [(r["Data"], r["PartitionKey"]) for r in fake.calls[0]["Records"]] == RECORDS
    assert clock.sleeps == []


def test_only_the_failed_entries_are_retried() -> None:
    # Given PutRecords fails entries 1 and 4 once
    fake, clock = FakeKinesis(script=[fail_positions(1, 4), store_all]), FakeClock()
    # When the writer puts six records
    result = writer(fake, clock).put(RECORDS, budget_seconds=5)
    # Then the second call carries exactly those two, and every record is stored once
    assert [r["Data"] for r in fake.calls[1]["Records"]] == [RECORDS[1][0], RECORDS[4][0]]
    assert result.failures == {} and result.calls == 2 and result.retried == 2
    assert sorted(r["Data"] for r in fake.stored) == sorted(d for d, _ in RECORDS)


def test_retries_narrow_down_to_what_keeps_failing() -> None:
    fake = FakeKinesis(script=[fail_positions(0, 2, 5), fail_positions(1), store_all])
    result = writer(fake, FakeClock()).put(RECORDS, budget_seconds=5)
    assert [len(call["Records"]) for call in fake.calls] == [6, 3, 1]
    assert fake.calls[2]["Records"][0]["Data"] == RECORDS[2][0]
    assert result.failures == {} and result.retried == 4


def test_entries_still_failing_when_the_budget_runs_out_are_reported_with_their_reason() -> None:
    # Given a shard that throttles entry 3 and fails entry 5 internally, forever
    def step(entries):
        return [
            {"ErrorCode": "ProvisionedThroughputExceededException"}
            if e["Data"] == RECORDS[3][0]
            else internal_failure_entry()
            if e["Data"] == RECORDS[5][0]
            else None
            for e in entries
        ]

    fake, clock = FakeKinesis(script=[step] * 100), FakeClock()
    result = writer(fake, clock, rand=1.0).put(RECORDS, budget_seconds=1.0)
    # Then those two are reported, the rest stored, and the writer waited less than its budget
    assert result.failures == {3: REASON_THROTTLED, 5: REASON_STREAM_UNAVAILABLE}
    assert sorted(r["Data"] for r in fake.stored) == sorted(RECORDS[i][0] for i in (0, 1, 2, 4))
    assert sum(clock.sleeps) < 1.0
    assert result.calls == len(clock.sleeps) + 1


def test_sleeps_follow_the_backoff_schedule() -> None:
    fake, clock = FakeKinesis(script=[fail_all()] * 4), FakeClock()
    writer(fake, clock, rand=1.0).put(RECORDS, budget_seconds=10)
    assert clock.sleeps == [0.05, 0.1, 0.2, 0.4]


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "KMSThrottlingException"])
def test_whole_call_throttling_is_retried(code: str) -> None:
    fake = FakeKinesis(script=[raise_error(code), store_all])
    result = writer(fake, FakeClock()).put(RECORDS, budget_seconds=5)
    assert result.failures == {} and result.calls == 2 and len(fake.stored) == len(RECORDS)


def test_whole_call_throttling_until_the_budget_ends_reports_every_record_throttled() -> None:
    fake = FakeKinesis(script=[raise_error("ProvisionedThroughputExceededException")] * 100)
    result = writer(fake, FakeClock()).put(RECORDS, budget_seconds=0.5)
    assert result.failures == dict.fromkeys(range(len(RECORDS)), REASON_THROTTLED)
    assert fake.stored == []


@pytest.mark.parametrize(
    "code", ["ResourceNotFoundException", "AccessDeniedException", "KMSDisabledException"]
)
def test_errors_that_cannot_heal_are_not_retried(code: str) -> None:
    fake, clock = FakeKinesis(script=[raise_error(code), store_all]), FakeClock()
    result = writer(fake, clock).put(RECORDS, budget_seconds=5)
    assert result.calls == 1 and clock.sleeps == []
    assert result.failures == dict.fromkeys(range(len(RECORDS)), REASON_STREAM_UNAVAILABLE)


def test_connection_errors_are_retried() -> None:
    calls = []

    def unreachable(entries):
        calls.append(1)
        raise EndpointConnectionError(endpoint_url="https://kinesis.us-east-1.amazonaws.com")

    fake = FakeKinesis(script=[unreachable, store_all])
    result = writer(fake, FakeClock()).put(RECORDS, budget_seconds=5)
    assert result.failures == {} and len(calls) == 1 and len(fake.stored) == len(RECORDS)


def test_zero_budget_means_one_call_and_no_retry() -> None:
    fake, clock = FakeKinesis(script=[fail_positions(0), store_all]), FakeClock()
    result = writer(fake, clock).put(RECORDS, budget_seconds=0)
    assert result.calls == 1 and result.failures == {0: REASON_THROTTLED} and clock.sleeps == []


def test_no_records_means_no_call() -> None:
    fake = FakeKinesis()
    assert writer(fake, FakeClock()).put([], budget_seconds=5).calls == 0
    assert fake.calls == []


def test_more_than_500_records_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        writer(FakeKinesis(), FakeClock()).put([(b"{}", "u")] * 501, budget_seconds=1)
