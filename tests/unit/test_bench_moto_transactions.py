"""bench.moto_transactions: moto's TransactWriteItems with per-item backups keeps moto's semantics."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bench.moto_transactions import fast_transactions


def put(key: str, value: str, condition: str | None = None) -> dict:
    body: dict = {"TableName": "t", "Item": {"pk": {"S": key}, "v": {"S": value}}}
    if condition:
        body["ConditionExpression"] = condition
    return {"Put": body}


@pytest.fixture
def dynamodb():
    with mock_aws(), fast_transactions():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def items(client) -> dict:
    return {i["pk"]["S"]: i["v"]["S"] for i in client.scan(TableName="t")["Items"]}


def test_a_transaction_writes_all_its_items(dynamodb):
    dynamodb.transact_write_items(TransactItems=[put("a", "1"), put("b", "1")])
    assert items(dynamodb) == {"a": "1", "b": "1"}


def test_a_failed_condition_cancels_the_whole_transaction_and_restores_the_items(dynamodb):
    # GIVEN a stored item
    dynamodb.transact_write_items(TransactItems=[put("a", "1")])
    # WHEN a transaction overwrites it and then fails a condition on another item
    with pytest.raises(ClientError) as error:
        dynamodb.transact_write_items(
            TransactItems=[put("a", "2"), put("c", "2"), put("b", "2", "attribute_exists(pk)")]
        )
    # THEN it is cancelled with moto's reasons and nothing it wrote remains
    assert error.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert items(dynamodb) == {"a": "1"}


def test_the_patch_is_removed_after_the_block():
    from moto.dynamodb.models import DynamoDBBackend

    before = DynamoDBBackend.transact_write_items
    with fast_transactions():
        assert DynamoDBBackend.transact_write_items is not before
    assert DynamoDBBackend.transact_write_items is before
