"""Redrive end to end (moto in-process): a batch exhausts its retries, lands on the on-failure queue, and
tools/redrive.py re-reads it from the stream and restores the exact features."""

from __future__ import annotations

import io
import json
import math
import zipfile
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from process import handler as process_handler
from process.config import ProcessConfig
from streamrec_core import constants as c
from streamrec_core.feature_store import from_item, to_item
from streamrec_core.features import FeatureConfig, MemoryFeatures, event_from_record

from local_emulator import moto_patches
from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import FakeClock, create_stream
from tests.feature_kit import (
    ITEMS_TABLE,
    USERS_TABLE,
    FaultyDynamoDB,
    create_tables,
    readers_view,
    table_state,
)
from tools import redrive

STREAM = "events"
FEATURES = FeatureConfig(
    user_ttl_seconds=86_400, item_ttl_seconds=86_400, allowed_lateness_ms=3_600_000, trending_slots=2
)


@dataclass
class FakeContext:
    function_name: str = "process"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:process"
    aws_request_id: str = "req"


def body(n: int, user: str, item: str, kind: str = "view") -> dict[str, Any]:
    ts = f"2024-05-01T12:{n // 60:02d}:{n % 60:02d}.000Z"
    return {
        "event_id": f"ev-{n}",
        "event_type": kind,
        "user_id": user,
        "item_id": item,
        "category": f"c{item[-1]}",
        "timestamp": ts,
        "schema_version": 1,
        c.RECORD_RECEIVED_AT: ts,
    }


# Batch A (given up): users u1 and u2. Later records: users u3 and u4, on the same items.
BATCH_A = [
    body(1, "u1", "i1"),
    body(2, "u2", "i2"),
    body(3, "u1", "i4", "add_to_cart"),
    body(4, "u2", "i3"),
    body(5, "u1", "i5", "purchase"),
    body(6, "u2", "i1"),
]
LATER = [
    body(7, "u3", "i1"),
    body(8, "u4", "i2"),
    body(9, "u3", "i2"),
    body(10, "u4", "i1", "favorite"),
    body(11, "u3", "i3"),
    body(12, "u4", "i3"),
]


def create_process_function(lam: Any, iam: Any, env: dict[str, str]) -> str:
    role = iam.create_role(RoleName="process", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return lam.create_function(
        FunctionName="process",
        Runtime="python3.12",
        Role=role,
        Handler="process.handler.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": env},
    )["FunctionArn"]


@pytest.fixture
def outage():
    """A pipeline where DynamoDB throttles every write after the first until a batch is given up."""
    with mock_aws(), moto_patches.patched():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        create_tables(dynamodb)
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        on_failure_url = sqs.create_queue(QueueName="on-failure")["QueueUrl"]
        env = {
            c.ENV_USERS_TABLE: USERS_TABLE,
            c.ENV_ITEMS_TABLE: ITEMS_TABLE,
            c.ENV_DLQ_URL: dlq,
            c.ENV_USER_TTL_SECONDS: str(FEATURES.user_ttl_seconds),
            c.ENV_ITEM_TTL_SECONDS: str(FEATURES.item_ttl_seconds),
            c.ENV_ALLOWED_LATENESS_SECONDS: str(FEATURES.allowed_lateness_ms // 1000),
            c.ENV_TRENDING_SLOTS: str(FEATURES.trending_slots),
            c.ENV_EXPERIMENTS: "[]",
        }
        function_arn = create_process_function(
            boto3.client("lambda", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1"), env
        )
        arn = create_stream(kinesis, STREAM)
        for event in BATCH_A + LATER:
            kinesis.put_record(
                StreamName=STREAM, PartitionKey=event["user_id"], Data=json.dumps(event).encode()
            )

        sent: list[dict[str, Any]] = []
        faulty = FaultyDynamoDB(dynamodb, plan=lambda n: "throttle" if n > 1 and not sent else None)
        process_handler.configure(
            ProcessConfig.from_env(env), faulty, sqs, sleep=lambda s: None, transact_max_items=10
        )

        def send_on_failure(message: dict[str, Any]) -> None:
            sent.append(message)
            sqs.send_message(QueueUrl=on_failure_url, MessageBody=json.dumps(message))

        def invoke(event: dict[str, Any]) -> tuple[Any, str | None]:
            return process_handler.handler(event, FakeContext(invoked_function_arn=function_arn)), None

        config = EsmConfig(
            arn,
            function_arn,
            batch_size=6,
            report_batch_item_failures=True,
            maximum_retry_attempts=1,
            on_failure_destination="arn:aws:sqs:us-east-1:123456789012:on-failure",
        )
        EsmPoller(
            kinesis, config, invoke=invoke, send_on_failure=send_on_failure, clock=FakeClock()
        ).run_until_idle()
        yield {"dynamodb": dynamodb, "sqs": sqs, "kinesis": kinesis, "queue": on_failure_url, "sent": sent}
        process_handler.reset()


def reference() -> dict:
    memory = MemoryFeatures(FEATURES)
    for n, event in enumerate(BATCH_A + LATER, start=1):
        memory.apply_event(
            event_from_record(event, shard_id="shardId-000000000000", sequence_number=str(n), arrival_ms=0)
        )
    state = {}
    for (table, pk, sk), row in memory.rows.items():
        stored = from_item(to_item(row))
        stored.pop(c.ATTR_VERSION, None)
        state[("users", pk) if table == "users" else ("items", pk, sk)] = stored
    return state


def comparable(state: dict) -> dict:
    """Without watermark arrival times (the stream's clock) and with floats rounded (sum order differs)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, float):
            return round(value, 9)
        return value

    out = {}
    for key, row in readers_view(state, FEATURES.trending_half_life_hours).items():
        row = dict(row)
        if c.USER_WATERMARKS in row:
            row[c.USER_WATERMARKS] = {shard: mark[0] for shard, mark in row[c.USER_WATERMARKS].items()}
        out[key] = clean(row)
    return out


def run_cli(*args: str) -> tuple[int, dict]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = redrive.main(list(args))
    return code, json.loads(out.getvalue())


def test_a_given_up_batch_is_on_the_queue_and_its_users_features_are_missing(outage):
    (message,) = outage["sent"]
    info = message["KinesisBatchInfo"]
    # the first transaction of batch A landed; the mapping gave up on the rest of it
    assert int(info["startSequenceNumber"]) > 1 and info["endSequenceNumber"] == "6"
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    state = table_state(outage["dynamodb"])
    assert ("users", "u1") in state and ("users", "u3") in state and ("users", "u4") in state
    assert comparable(state) != comparable(reference())


def test_redrive_restores_the_exact_features_and_deletes_the_message(outage):
    start = int(outage["sent"][0]["KinesisBatchInfo"]["startSequenceNumber"])
    code, summary = run_cli("--queue-url", outage["queue"], "--region", "us-east-1")
    assert code == 0 and summary["redriven"] == 1 and summary["records"] == 7 - start
    assert summary["applied"] == 7 - start and summary["already_applied"] == 0
    assert comparable(table_state(outage["dynamodb"])) == comparable(reference())
    assert outage["sqs"].receive_message(QueueUrl=outage["queue"]).get("Messages") is None
    # a second run finds nothing to do
    assert run_cli("--queue-url", outage["queue"], "--region", "us-east-1")[1]["messages"] == 0


def test_redriving_the_same_range_twice_counts_nothing_twice(outage):
    (message,) = outage["sent"]
    outage["sqs"].send_message(
        QueueUrl=outage["queue"], MessageBody=json.dumps(message)
    )  # a duplicate message
    code, summary = run_cli("--queue-url", outage["queue"], "--region", "us-east-1")
    assert code == 0 and summary["redriven"] == 2 and summary["already_applied"] == summary["records"] // 2
    assert comparable(table_state(outage["dynamodb"])) == comparable(reference())


def test_dry_run_changes_nothing_and_keeps_the_message(outage):
    before = table_state(outage["dynamodb"])
    code, summary = run_cli("--queue-url", outage["queue"], "--region", "us-east-1", "--dry-run")
    assert code == 0 and summary["dry_run"] and summary["messages"] == 1 and summary["records"] > 0
    assert table_state(outage["dynamodb"]) == before
    assert len(outage["sqs"].receive_message(QueueUrl=outage["queue"])["Messages"]) == 1


def test_unrecognised_messages_are_kept_and_reported(outage):
    outage["sqs"].send_message(QueueUrl=outage["queue"], MessageBody="hello")
    code, summary = run_cli("--queue-url", outage["queue"], "--region", "us-east-1")
    assert code == 1 and summary["unrecognised"] == 1 and summary["redriven"] == 1


def test_parse_message_reads_aws_batch_info():
    message = {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Body": json.dumps(
            {
                "requestContext": {"functionArn": "arn:f", "condition": "RecordAgeExceeded"},
                "KinesisBatchInfo": {
                    "shardId": "shardId-1",
                    "startSequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "endSequenceNumber": "49590338271490256608559692540925702759324208523137515618",
                    "streamArn": "arn:aws:kinesis:us-east-1:1:stream/events",
                    "batchSize": 3,
                },
            }
        ),
    }
    batch = redrive.parse_message(message)
    assert batch is not None and batch.stream_name == "events" and batch.condition == "RecordAgeExceeded"
    assert int(batch.end) > int(batch.start) and not math.isnan(batch.batch_size)
    assert redrive.parse_message({"ReceiptHandle": "r", "Body": "{}"}) is None
