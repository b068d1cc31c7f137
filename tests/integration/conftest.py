"""Fixtures shared by the integration tests of the emulator's moto fixes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_emulator import moto_patches

# The table `patched_aws` creates: a hash key "pk" (string), on demand.
FEATURES_TABLE = "features"


@pytest.fixture
def patched_aws() -> Iterator[dict[str, Any]]:
    """In-process moto with the emulator's fixes (`moto_patches`) and a FEATURES_TABLE; the DynamoDB and
    Kinesis clients by service name."""
    with mock_aws(), moto_patches.patched():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=FEATURES_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield {"dynamodb": dynamodb, "kinesis": boto3.client("kinesis", region_name="us-east-1")}
