"""Redrive of the on-failure queue (moto in-process): a batch exhausts its retries, lands on the on-failure
queue, and `python -m tools.redrive --source on-failure` re-reads it from the stream and restores the
exact features. Dead-letter replay and the local pipeline: test_redrive_replay.py."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from process import handler as process_handler
from process.config import ProcessConfig
from streamrec_core import constants as c
from streamrec_core.features import FeatureConfig

from local_emulator import moto_patches
from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import FakeClock, create_stream
from tests import feature_kit
from tests.feature_kit import (
    USERS_TABLE,
    FaultyDynamoDB,
    create_process_function,
    create_tables,
    process_env,
    reference_state,
    table_state,
)
from tools import redrive
from tools.redrive.messages import CorruptMessage, parse_failed_batch

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
        env = process_env(FEATURES, dlq)
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
    return reference_state(FEATURES, [(event, str(n)) for n, event in enumerate(BATCH_A + LATER, start=1)])


def comparable(state: dict) -> dict:
    return feature_kit.comparable(state, FEATURES)


def run_cli(*args: str) -> tuple[int, dict, str]:
    """Redrive the outage's on-failure queue: (exit code, that queue's summary, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = redrive.main(["--source", "on-failure", "--region", "us-east-1", *args])
    return code, json.loads(out.getvalue())["on-failure"], err.getvalue()


def visible_now(sqs, queue: str) -> list[dict]:
    """The messages a consumer gets right now: hidden ones are not among them (and these stay visible)."""
    return sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
    ).get("Messages", [])


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
    code, summary, _ = run_cli("--on-failure-url", outage["queue"])
    assert code == 0 and summary["handled"] == 1 and summary["records"] == 7 - start
    assert summary["applied"] == 7 - start and summary["already_applied"] == 0
    assert comparable(table_state(outage["dynamodb"])) == comparable(reference())
    assert outage["sqs"].receive_message(QueueUrl=outage["queue"]).get("Messages") is None
    # a second run finds nothing to do
    assert run_cli("--on-failure-url", outage["queue"])[1]["messages"] == 0


def test_redriving_the_same_range_twice_counts_nothing_twice(outage):
    (message,) = outage["sent"]
    outage["sqs"].send_message(
        QueueUrl=outage["queue"], MessageBody=json.dumps(message)
    )  # a duplicate message
    code, summary, _ = run_cli("--on-failure-url", outage["queue"])
    assert code == 0 and summary["handled"] == 2 and summary["already_applied"] == summary["records"] // 2
    assert comparable(table_state(outage["dynamodb"])) == comparable(reference())


def test_dry_run_says_what_it_would_apply_changes_nothing_and_keeps_the_message(outage):
    start = int(outage["sent"][0]["KinesisBatchInfo"]["startSequenceNumber"])
    before = table_state(outage["dynamodb"])
    code, summary, _ = run_cli("--on-failure-url", outage["queue"], "--dry-run")
    assert code == 0 and summary["messages"] == 1 and summary["handled"] == 1
    assert summary["applied"] == 7 - start  # what a run would apply, from the real rows
    assert table_state(outage["dynamodb"]) == before
    assert len(visible_now(outage["sqs"], outage["queue"])) == 1


def test_a_corrupt_message_is_reported_by_field_kept_visible_and_the_others_are_redriven(outage):
    outage["sqs"].send_message(QueueUrl=outage["queue"], MessageBody="hello")
    code, summary, err = run_cli("--on-failure-url", outage["queue"])
    assert code == 1 and summary["kept"] == 1 and summary["handled"] == 1
    assert "body: must be JSON" in err and "Traceback" not in err
    assert [m["Body"] for m in visible_now(outage["sqs"], outage["queue"])] == ["hello"]
    assert comparable(table_state(outage["dynamodb"])) == comparable(reference())


def test_a_corrupt_feature_row_fails_that_message_only_and_it_is_visible_again_at_once(outage):
    """Given a user row of the given-up batch that cannot be read (corrupt JSON), when redrive runs,
    it names the message and the error (no traceback), exits 1, leaves the message visible at once, and
    a second run finds it again instead of reporting an empty queue."""
    outage["dynamodb"].put_item(
        TableName=USERS_TABLE,
        Item={c.USERS_PK: {"S": "u2"}, c.USER_HISTORY: {"S": "{not json"}, c.ATTR_VERSION: {"N": "1"}},
    )
    code, summary, err = run_cli("--on-failure-url", outage["queue"])
    assert code == 1 and summary["kept"] == 1 and summary["handled"] == 0
    (problem,) = summary["problems"]
    assert "processing failed" in problem and "Traceback" not in err and problem in err
    assert len(visible_now(outage["sqs"], outage["queue"])) == 1
    code, summary, _ = run_cli("--on-failure-url", outage["queue"])
    assert code == 1 and summary["messages"] == 1 and summary["kept"] == 1


def test_parse_failed_batch_reads_aws_batch_info():
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
    batch = parse_failed_batch(message)
    assert batch.stream_name == "events" and batch.condition == "RecordAgeExceeded"
    assert int(batch.end) > int(batch.start) and not math.isnan(batch.batch_size)


@pytest.mark.parametrize(
    ("info", "field"),
    [
        (None, "KinesisBatchInfo"),
        ({"startSequenceNumber": "x1"}, "KinesisBatchInfo.startSequenceNumber"),
        ({"endSequenceNumber": "1"}, "KinesisBatchInfo.endSequenceNumber"),
        ({"streamArn": "events"}, "KinesisBatchInfo.streamArn"),
        ({"shardId": ""}, "KinesisBatchInfo.shardId"),
        ({"batchSize": "3"}, "KinesisBatchInfo.batchSize"),
    ],
)
def test_parse_failed_batch_names_the_broken_field(info, field):
    good = {
        "shardId": "shardId-1",
        "startSequenceNumber": "5",
        "endSequenceNumber": "9",
        "streamArn": "arn:aws:kinesis:us-east-1:1:stream/events",
        "batchSize": 3,
    }
    body = {"KinesisBatchInfo": None if info is None else {**good, **info}}
    with pytest.raises(CorruptMessage, match=f"^{field}: "):
        parse_failed_batch({"Body": json.dumps(body)})
