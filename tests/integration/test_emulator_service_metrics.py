"""The emulator meters what Kinesis and DynamoDB publish to CloudWatch, by their rules: records and bytes
per stream, capacity units per table (writes per started KB of the larger item, reads per started 4 KB,
half when eventually consistent), throttles an observed zero; a refused request meters nothing."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from local_emulator import service_metrics
from tests.integration.conftest import FEATURES_TABLE

TABLE = FEATURES_TABLE
KB = 1024


@pytest.fixture
def metered_aws(patched_aws):
    with service_metrics.metered() as meter:
        dynamodb, kinesis = patched_aws["dynamodb"], patched_aws["kinesis"]
        kinesis.create_stream(StreamName="events", ShardCount=1)
        meter.drain()
        yield dynamodb, kinesis, meter


def _sums(meter: service_metrics.Meter) -> dict[tuple[str, str], float]:
    sums: dict[tuple[str, str], float] = {}
    for point in meter.drain():
        assert point["unit"] in ("Count", "Bytes")
        key = (point["name"], next(iter(point["dimensions"].values())))
        sums[key] = sums.get(key, 0.0) + point["value"]
    return sums


def _item(pk: str, payload_bytes: int) -> dict[str, dict[str, object]]:
    # "pk" (2) + key + "data" (4) + the payload: sized so the item ends where the test says
    return {"pk": {"S": pk}, "data": {"B": b"x" * payload_bytes}}


def test_writes_cost_a_unit_per_started_kb_of_the_larger_item_even_when_the_condition_fails(metered_aws):
    dynamodb, _, meter = metered_aws
    dynamodb.put_item(TableName=TABLE, Item=_item("a", KB - 7))  # 2 + 1 + 4 + 1017 = 1,024 bytes: 1 unit
    dynamodb.put_item(TableName=TABLE, Item=_item("b", KB - 6))  # 1,025 bytes: 2 units
    dynamodb.put_item(TableName=TABLE, Item=_item("b", 10))  # replaces 1,025 bytes: still 2 units
    with pytest.raises(ClientError):
        dynamodb.put_item(
            TableName=TABLE, Item=_item("b", 10), ConditionExpression="attribute_not_exists(pk)"
        )
    assert _sums(meter) == {
        ("ConsumedWriteCapacityUnits", TABLE): 1 + 2 + 2 + 1,
        ("WriteThrottleEvents", TABLE): 0,
    }


def test_reads_cost_per_started_4_kb_half_when_eventually_consistent_and_a_missing_item_the_minimum(
    metered_aws,
):
    dynamodb, _, meter = metered_aws
    dynamodb.put_item(TableName=TABLE, Item=_item("a", 4 * KB))  # just over 4 KB
    dynamodb.put_item(TableName=TABLE, Item=_item("b", 100))
    meter.drain()
    keys = [{"pk": {"S": pk}} for pk in ("a", "b", "missing")]
    dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": keys, "ConsistentRead": True}})
    assert _sums(meter)[("ConsumedReadCapacityUnits", TABLE)] == 2 + 1 + 1
    dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": keys}})
    assert _sums(meter)[("ConsumedReadCapacityUnits", TABLE)] == (2 + 1 + 1) / 2
    # A Query rounds its items' summed size once: 4.1 KB + 0.1 KB -> 2 units, eventually consistent 1
    dynamodb.query(
        TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}}
    )
    assert _sums(meter) == {("ConsumedReadCapacityUnits", TABLE): 1.0, ("ReadThrottleEvents", TABLE): 0}


def test_a_refused_request_meters_nothing_and_the_answer_is_motos(metered_aws):
    dynamodb, _, meter = metered_aws
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName="no-such-table", Item=_item("a", 1))
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError):
        dynamodb.get_item(TableName=TABLE, Key={"wrong": {"S": "a"}})
    assert meter.drain() == []


def test_kinesis_counts_accepted_records_and_their_bytes_and_no_failures(metered_aws):
    _, kinesis, meter = metered_aws
    kinesis.put_records(StreamName="events", Records=[{"Data": b"hello", "PartitionKey": "user-1"}] * 3)
    kinesis.put_record(StreamName="events", Data=b"x" * 10, PartitionKey="p")
    assert _sums(meter) == {
        ("IncomingRecords", "events"): 4,
        # data and partition key, as moto counts a record against the stream
        ("IncomingBytes", "events"): 3 * (5 + 6) + (10 + 1),
        ("PutRecords.FailedRecords", "events"): 0,
        ("WriteProvisionedThroughputExceeded", "events"): 0,
    }
    assert meter.drain() == []  # drained once
