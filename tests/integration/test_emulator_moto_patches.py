"""The emulator's moto fixes keep AWS semantics: TransactWriteItems is still all-or-nothing with
per-item rollback, and after a reshard writes go to the open children while the parent keeps its records."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_emulator import moto_patches

TABLE = "features"


@pytest.fixture
def aws():
    with mock_aws(), moto_patches.patched():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield {"dynamodb": dynamodb, "kinesis": boto3.client("kinesis", region_name="us-east-1")}


def _put(pk, version):
    return {"Put": {"TableName": TABLE, "Item": {"pk": {"S": pk}, "v": {"N": str(version)}}}}


def _value(dynamodb, pk):
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")
    return None if item is None else int(item["v"]["N"])


def test_failed_transaction_rolls_back_every_item_it_touched(aws):
    """All or nothing: when one condition fails, the actions before it are undone."""
    dynamodb = aws["dynamodb"]
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


def test_successful_transaction_applies_every_action(aws):
    dynamodb = aws["dynamodb"]
    dynamodb.transact_write_items(TransactItems=[_put("a", 1), _put("b", 2)])
    assert (_value(dynamodb, "a"), _value(dynamodb, "b")) == (1, 2)


def test_after_a_split_writes_go_to_the_children_and_the_parent_keeps_its_records(aws):
    """As in AWS: the closed parent keeps its records; new records land in the open child shards."""
    kinesis = aws["kinesis"]
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
