"""The moto server's caches (`local_emulator.moto_speed`) change no answer: the same calls give the same
responses with and without them (every DynamoDB attribute type, errors, conditions, projections,
pagination, table descriptions, and other services' responses), and the remembered pieces follow
the request (another expression, another shape, another class is never answered from the cache)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_emulator import moto_patches, moto_speed

REGION = "us-east-1"
ITEM = {
    "pk": {"S": "u1"},
    "sk": {"S": "a"},
    "n": {"N": "12.50"},
    "b": {"B": b"\x00\xffbytes"},
    "ss": {"SS": ["x", "y"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "m": {"M": {"S": {"S": "nested key named like a type"}, "l": {"L": [{"N": "1"}, {"NULL": True}]}}},
    "l": {"L": [{"BOOL": False}, {"M": {}}, {"L": []}]},
    "nul": {"NULL": True},
    "t": {"BOOL": True},
    "empty": {"S": ""},
}


def _scenario() -> list[Any]:
    """Run the calls the pipeline makes (and some it does not) and return every response or error."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    out: list[Any] = []

    def record(call: Callable[[], Any]) -> None:
        try:
            response = call()
            response.pop("ResponseMetadata", None)
            out.append(response)
        except ClientError as error:
            out.append({"error": error.response["Error"], "extra": _extra(error.response)})

    record(
        lambda: ddb.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    )
    record(lambda: ddb.put_item(TableName="t", Item=ITEM, ReturnConsumedCapacity="TOTAL"))
    for i in range(5):
        item = {"pk": {"S": "u1"}, "sk": {"S": f"s{i}"}, "v": {"N": "1"}}
        record(functools.partial(ddb.put_item, TableName="t", Item=item))
    condition = {"ConditionExpression": "attribute_not_exists(pk) OR v = :v"}
    record(
        lambda: ddb.put_item(
            TableName="t",
            Item={"pk": {"S": "u1"}, "sk": {"S": "s1"}, "v": {"N": "2"}},
            ExpressionAttributeValues={":v": {"N": "1"}},
            ReturnValues="ALL_OLD",
            **condition,
        )
    )
    record(  # the same expression again, now failing: the cached tokens must not carry the old value
        lambda: ddb.put_item(
            TableName="t",
            Item={"pk": {"S": "u1"}, "sk": {"S": "s1"}, "v": {"N": "3"}},
            ExpressionAttributeValues={":v": {"N": "1"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **condition,
        )
    )
    record(
        lambda: ddb.get_item(TableName="t", Key={"pk": {"S": "u1"}, "sk": {"S": "a"}}, ConsistentRead=True)
    )
    record(
        lambda: ddb.get_item(
            TableName="t",
            Key={"pk": {"S": "u1"}, "sk": {"S": "a"}},
            ProjectionExpression="#m.#s, ns, l[1]",
            ExpressionAttributeNames={"#m": "m", "#s": "S"},
        )
    )
    keys = [{"pk": {"S": "u1"}, "sk": {"S": s}} for s in ("a", "s0", "s1", "missing")]
    record(lambda: ddb.batch_get_item(RequestItems={"t": {"Keys": keys}}, ReturnConsumedCapacity="INDEXES"))
    record(
        lambda: ddb.query(
            TableName="t",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "u1"}},
            Limit=2,
        )
    )
    record(lambda: ddb.scan(TableName="t", FilterExpression="attribute_exists(ss)"))
    record(
        lambda: ddb.update_item(
            TableName="t",
            Key={"pk": {"S": "u1"}, "sk": {"S": "s2"}},
            UpdateExpression="SET v = v + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )
    )
    record(
        lambda: ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "u2"}, "sk": {"S": "x"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "u1"}, "sk": {"S": "s3"}},
                        "ConditionExpression": "v = :nine",
                        "ExpressionAttributeValues": {":nine": {"N": "9"}},
                    }
                },
            ]
        )
    )
    record(
        lambda: ddb.delete_item(
            TableName="t", Key={"pk": {"S": "u1"}, "sk": {"S": "s4"}}, ReturnValues="ALL_OLD"
        )
    )
    record(lambda: ddb.get_item(TableName="nope", Key={"pk": {"S": "u1"}}))
    out.append(ddb.describe_table(TableName="t")["Table"])
    record(lambda: ddb.list_tables())

    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    record(
        lambda: sqs.send_message(
            QueueUrl=url,
            MessageBody="hello",
            MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}},
        )
    )
    record(
        lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "DelaySeconds"])
    )
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName="s", ShardCount=1)
    record(lambda: kinesis.put_records(StreamName="s", Records=[{"PartitionKey": "p", "Data": b"\x00data"}]))
    shard = kinesis.describe_stream(StreamName="s")["StreamDescription"]["Shards"][0]
    shard.pop("SequenceNumberRange")
    out.append(shard)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    record(lambda: cloudwatch.put_metric_data(Namespace="n", MetricData=[{"MetricName": "m", "Value": 1.0}]))
    record(lambda: cloudwatch.list_metrics(Namespace="n"))
    return out


def _extra(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k not in ("Error", "ResponseMetadata")}


# Differ between two runs by design (ids, sequence numbers, the clock), not by serialization.
_RUN_SPECIFIC = ("MessageId", "SequenceNumber", "CreationDateTime")


def _strip_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_ids(v) for k, v in value.items() if k not in _RUN_SPECIFIC}
    if isinstance(value, list):
        return [_strip_ids(v) for v in value]
    return value


@pytest.fixture
def without_speed() -> Iterator[None]:
    moto_speed.remove()
    yield
    moto_speed.remove()


def _run(speed: bool) -> list[Any]:
    if speed:
        moto_speed.apply()
    try:
        with mock_aws(), moto_patches.patched():
            return _strip_ids(_scenario())
    finally:
        moto_speed.remove()


def test_every_response_is_the_same_with_and_without_the_caches(without_speed: None) -> None:
    # Given the same calls, run by moto as it is and by moto with the caches
    plain = _run(speed=False)
    fast = _run(speed=True)
    # Then every response and every error is identical, item by item
    assert len(fast) == len(plain)
    for index, (a, b) in enumerate(zip(plain, fast, strict=True)):
        assert a == b, index
    # And the scenario did exercise what it claims (typed attributes, a failed condition, pagination)
    assert plain[1]["ConsumedCapacity"]["TableName"] == "t"
    assert plain[8]["error"]["Code"] == "ConditionalCheckFailedException"
    assert plain[8]["extra"]["Item"]["v"] == {"N": "2"}
    assert plain[9]["Item"] == ITEM
    assert "LastEvaluatedKey" in plain[12]


def test_a_cached_condition_expression_is_evaluated_with_each_requests_values(without_speed: None) -> None:
    moto_speed.apply()
    with mock_aws(), moto_patches.patched():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        def put(version: int, expected: int) -> bool:
            try:
                ddb.put_item(
                    TableName="t",
                    Item={"pk": {"S": "u"}, "v": {"N": str(version)}},
                    ConditionExpression="attribute_not_exists(pk) OR v = :v",
                    ExpressionAttributeValues={":v": {"N": str(expected)}},
                )
                return True
            except ClientError:
                return False

        # Each write is conditional on the version the writer read: a stale one must fail every time
        assert put(1, 0)
        assert put(2, 1)
        assert not put(3, 1)
        assert put(3, 2)
        assert not put(9, 2)
